#!/usr/bin/env bash
# Regenerate requirements/constraints.txt from .venv. Message and metadata-only distributions
# that the ROS wheels install (std_msgs, rclpy, ...) are not on any index and are left out.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
{
  echo "# Exact versions of every Python package in .venv (generated with pip freeze, then checked in)."
  echo "# Regenerate with: make lock"
  .venv/bin/python -m pip freeze --exclude-editable \
    | grep -v -E '^(action_msgs|builtin_interfaces|diagnostic_msgs|geometry_msgs|lifecycle_msgs|rcl_interfaces|rclpy|rcutils|rmw_dds_common|rosgraph_msgs|rosidl_[a-z_]+|sensor_msgs|service_msgs|std_msgs|type_description_interfaces|unique_identifier_msgs|ament_cmake_test|audio_common_msgs|vision_msgs)==' \
    | sed -E 's/^torch==([0-9.]+)\+cpu$/torch==\1/'
} > requirements/constraints.txt
echo "wrote requirements/constraints.txt"
