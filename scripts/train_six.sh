#!/usr/bin/env bash
# Train one recipe the way scripts/sweep.py scores it: the paper split and the five
# speaker-independent folds with ser_train, PARALLEL runs at a time (default 1: one after the
# other; 2 with --set training.threads=1 is the fastest on a 2-core CPU; 6 on a GPU, as
# scripts/device_sweep.sh runs them); then check each run under noise on its
# validation files, whole and as vad_node cuts them (bench/noise_robustness.py [--vad-cut];
# NOISE_DATA: the corpus folder, if not the default) and print the summary row.
#   scripts/train_six.sh CONFIG RECIPE_DIR [--set key=value ...]
# Runs go to RECIPE_DIR/ravdess_paper and RECIPE_DIR/ravdess_speaker_fold0..4, logs to
# RECIPE_DIR/paper.log and foldN.log (a line per epoch); a rerun of the same command resumes
# them. Uses .venv's interpreter when there is one.
set -uo pipefail
config=$1 recipe_dir=$2
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
python=$repo/.venv/bin/python
[ -x "$python" ] || python=python3
parallel=${PARALLEL:-1}
mkdir -p "$recipe_dir"

free_slot() {   # wait until fewer than PARALLEL background jobs run
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n; done
}

train() {   # LOG_NAME ARGS...: one ser_train run, in the background when PARALLEL > 1
  local log=$recipe_dir/$1.log
  shift
  if [ "$parallel" -gt 1 ]; then
    free_slot
    "$python" -m ser_ros.cli.train --config "$config" "$@" > "$log" 2>&1 &
  else
    "$python" -m ser_ros.cli.train --config "$config" "$@" > "$log" 2>&1 \
      || { echo "train_six: $log" >&2; tail -5 "$log" >&2; exit 1; }
  fi
}

train paper "$@" --set output.run_dir="$recipe_dir/ravdess_paper"
for fold in 0 1 2 3 4; do
  train "fold$fold" --no-plots "$@" --set protocol.name=speaker --set protocol.fold="$fold" \
    --set output.run_dir="$recipe_dir/ravdess_speaker_fold$fold"
done
wait
# Accuracy under noise on each run's validation files (the sweep's second criterion), and on
# what vad_node cuts from them (what the robot hears).
check() {   # RUN_DIR NAME [OPTION ...]: bench/noise_robustness.py into RUN_DIR/NAME.json
  local run=$1 name=$2
  shift 2
  "$python" "$repo/bench/noise_robustness.py" --model "$run/model.pt" --split "$run/split.json" \
    --part validation --snr 10 ${NOISE_DATA:+--data "$NOISE_DATA"} "$@" \
    > "$run/$name.json" 2> "$run/$name.log" \
    || echo "train_six: $name check of $run failed, see $run/$name.log" >&2
}
noise_check() {   # RUN_DIR
  check "$1" noise_validation
  check "$1" vad_cut_validation --vad-cut
}
for run in "$recipe_dir"/ravdess_paper "$recipe_dir"/ravdess_speaker_fold?; do
  [ -f "$run/model.pt" ] || continue
  if [ "$parallel" -gt 1 ]; then free_slot; noise_check "$run" & else noise_check "$run"; fi
done
wait
"$python" "$repo/scripts/sweep.py" summary "$recipe_dir"
