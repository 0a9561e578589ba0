#!/usr/bin/env bash
# Build the message packages in interfaces/ into a virtual environment, each only when it is
# not importable already (on the robot, apt's ROS provides them and nothing is built).
set -euo pipefail
venv=$(realpath "${1:?usage: build_interfaces.sh VENV}")
root=$(cd "$(dirname "$0")/.." && pwd)
build_root="$root/build/interfaces"
mkdir -p "$build_root"

for pkg_dir in "$root"/interfaces/*/; do
  [ -f "$pkg_dir/package.xml" ] || continue
  pkg=$(basename "$pkg_dir")
  if "$venv/bin/python" -c "import ${pkg}.msg" 2>/dev/null; then
    echo "interfaces: $pkg already importable, not built"
    continue
  fi
  echo "interfaces: building $pkg into $venv"
  rm -rf "$build_root/$pkg"
  cmake -S "$pkg_dir" -B "$build_root/$pkg" -G Ninja -Wno-dev \
    -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" \
    -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF >"$build_root.$pkg.log" 2>&1 \
    || { cat "$build_root.$pkg.log"; exit 1; }
  cmake --build "$build_root/$pkg" >>"$build_root.$pkg.log" 2>&1 || { tail -50 "$build_root.$pkg.log"; exit 1; }
  cmake --install "$build_root/$pkg" >>"$build_root.$pkg.log" 2>&1 || { tail -50 "$build_root.$pkg.log"; exit 1; }
  "$venv/bin/python" -c "import ${pkg}.msg" || { echo "interfaces: $pkg built but not importable" >&2; exit 1; }
done
