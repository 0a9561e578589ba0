"""Thin rclpy node adapters over the ROS-free core."""
