#!/usr/bin/env bash
# Train one recipe the way scripts/sweep.py scores it: the paper split and the five
# speaker-independent folds, one after the other, with ser_train; then print the summary row.
#   scripts/train_six.sh CONFIG RECIPE_DIR [--set key=value ...]
# Runs go to RECIPE_DIR/ravdess_paper and RECIPE_DIR/ravdess_speaker_fold0..4; a rerun of the
# same command resumes them. Uses .venv's ser_train when there is one.
set -euo pipefail
config=$1 recipe_dir=$2
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
train=$repo/.venv/bin/ser_train
[ -x "$train" ] || train=ser_train
python=$repo/.venv/bin/python
[ -x "$python" ] || python=python3
mkdir -p "$recipe_dir"
"$train" --config "$config" --quiet "$@" --set output.run_dir="$recipe_dir/ravdess_paper" \
  > "$recipe_dir/paper.log" 2>&1
for fold in 0 1 2 3 4; do
  "$train" --config "$config" --quiet --no-plots "$@" --set protocol.name=speaker \
    --set protocol.fold="$fold" --set output.run_dir="$recipe_dir/ravdess_speaker_fold$fold" \
    > "$recipe_dir/fold$fold.log" 2>&1
done
"$python" "$repo/scripts/sweep.py" summary "$recipe_dir"
