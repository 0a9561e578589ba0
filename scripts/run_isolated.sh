#!/usr/bin/env bash
# Run a ROS command on this development machine with DDS kept on loopback:
# LOCALHOST discovery, a domain id of its own and a temporary log folder (removed afterwards),
# as every ROS process here must (see README). Usage: scripts/run_isolated.sh COMMAND [ARGS...]
set -euo pipefail
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$((1 + $$ % 100))}
unset ROS_LOCALHOST_ONLY ROS_STATIC_PEERS
log_dir=$(mktemp -d -t ser_ros_log_XXXXXX)
export ROS_LOG_DIR="$log_dir"
root=$(cd "$(dirname "$0")/.." && pwd)
export AMENT_PREFIX_PATH="$root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
trap 'rm -rf "$log_dir"' EXIT
"$@"
