#!/usr/bin/env bash
# Create or update .venv from nothing: ROS 2 Jazzy wheels, the message packages no registry has
# here, torch (CPU), audio and ML libraries, test tools, and ser_ros itself (editable).
# Idempotent: when nothing it depends on has changed, it returns in about a second.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.bootstrap-stamp"
python=${PYTHON:-python3}
cd "$root"

say() { printf 'bootstrap: %s\n' "$*"; }

inputs_hash() {
  { "$python" --version 2>&1
    cat requirements/*.in requirements/constraints.txt setup.py setup.cfg package.xml \
        scripts/bootstrap.sh scripts/build_interfaces.sh
    find interfaces -type f | LC_ALL=C sort | xargs cat
  } | sha256sum | cut -d' ' -f1
}

pip_install() {
  # pip with the pinned versions; the machine's extra package indexes that do not exist here
  # make pip warn once per package, which says nothing about this project.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -c requirements/constraints.txt "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

ensure_portaudio() {
  # sounddevice loads PortAudio at import; Debian ships it as libportaudio2.
  if ldconfig -p 2>/dev/null | grep 'libportaudio\.so\.2' >/dev/null; then
    return
  fi
  say "installing libportaudio2 (apt)"
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { say "libportaudio2 is missing and I am not root: run 'sudo apt-get install -y libportaudio2'"; exit 1; }
    sudo=sudo
  fi
  $sudo apt-get install -y -q libportaudio2 >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q libportaudio2 >/dev/null; }
}

register_share_directory() {
  # An editable install does not copy data_files. Register ser_ros in the venv's ament index
  # with links into the source tree (as colcon --symlink-install does), so
  # get_package_share_directory('ser_ros') finds launch/, config/ and models/ here as on the robot.
  local share="$venv/share/ser_ros"
  mkdir -p "$share" "$venv/share/ament_index/resource_index/packages"
  touch "$venv/share/ament_index/resource_index/packages/ser_ros"
  for item in package.xml launch config models; do
    ln -sfn "$root/$item" "$share/$item"
  done
}

ensure_portaudio
wanted=$(inputs_hash)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  say ".venv is up to date"
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$python" -m venv "$venv"
fi
rm -f "$stamp"

say "installing pinned packages (requirements/constraints.txt)"
pip_install -r requirements/base.in -r requirements/build.in -r requirements/test.in

say "installing the peer-benchmark packages (requirements/bench.in)"
# silero-vad's declared extras would replace the CPU torch: it goes in without dependencies
# (it needs only torch and packaging, installed above).
grep -v '^silero-vad' requirements/bench.in > "$venv/.bench-no-silero.in"
pip_install -r "$venv/.bench-no-silero.in"
pip_install --no-deps "$(grep '^silero-vad' requirements/bench.in)"

say "building message packages that are not importable yet"
scripts/build_interfaces.sh "$venv"

say "installing ser_ros (editable)"
pip_install --no-deps --no-build-isolation -e .

register_share_directory

echo "$wanted" > "$stamp"
say "done"
