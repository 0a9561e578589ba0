"""Tests of the ROS-free core: audio, features, network, checkpoint, inference."""
