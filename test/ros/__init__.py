"""Tests through a real ROS 2 runtime (rclpy + Fast DDS): topics, processes, bags."""
