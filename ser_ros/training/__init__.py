"""ROS-free training and evaluation: trainer, metrics, reports, plots and paper-study tables."""
