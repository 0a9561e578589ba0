"""Tests of the ROS-free evaluation side: metrics, plots, reports and the evaluate CLI."""
