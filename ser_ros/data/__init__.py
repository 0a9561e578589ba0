"""ROS-free corpus loaders, splits and summaries."""
