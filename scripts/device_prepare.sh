#!/usr/bin/env bash
# Prepare, on this machine, what a lent GPU machine (the workplace's `device` tool) lacks before
# the first device call: wheels of the audio packages for its Python 3.12 in .whl/ (the versions
# pinned in requirements/constraints.txt; the rest, torch, numpy, scikit-learn, matplotlib, ...,
# is in its image) and a copy of the corpus in .devdata/ravdess-16k. Both stay out of git
# (.git/info/exclude) and travel with `carry: [".whl", ".devdata"]` (~47 MB of the 64 MiB).
# The checkout's commit goes into .devdata/commit (with "-dirty" if tracked files differ from it):
# the copy on the lent machine has no git, and its runs' provenance names that commit. Run this
# again after committing, right before the device call.
#   scripts/device_prepare.sh [RAVDESS_DIR]     (default: $SER_DATA_ROOT/ravdess-16k)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-${SER_DATA_ROOT:-../shared/data}/ravdess-16k}
packages=(librosa soxr soundfile audioread pooch decorator cffi pycparser platformdirs
          webrtcvad-wheels)
python=.venv/bin/python; [ -x "$python" ] || python=python3

mkdir -p .git/info
for ignored in /.whl/ /.devdata/; do
  grep -qxF "$ignored" .git/info/exclude 2>/dev/null || echo "$ignored" >> .git/info/exclude
done
rm -rf .whl && mkdir .whl
for name in "${packages[@]}"; do
  pinned=$(grep -i "^$name==" requirements/constraints.txt) || {
    echo "device_prepare: $name is not pinned in requirements/constraints.txt" >&2; exit 1; }
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 --platform any -d .whl "$pinned"
done
[ -d "$corpus/Actor_01" ] || { echo "device_prepare: no RAVDESS at $corpus" >&2; exit 1; }
rm -rf .devdata && mkdir .devdata && cp -r "$corpus" .devdata/ravdess-16k
commit=$(git rev-parse HEAD)
git diff --quiet HEAD || commit+=-dirty
echo "$commit" > .devdata/commit
echo "device_prepare: commit $commit"
du -sh .whl .devdata
