#!/usr/bin/env bash
# The six-run check of the silence emotion_node appends after vad_node's cuts
# (docs/model_notes.md, "silence after the VAD's cut"): each run of the shipped recipe
# (scripts/train_six.sh config/train_ravdess.yaml runs/noise --set
# training.augment.noise_probability=0.5) scored on its validation files, as vad_node cuts them
# and whole, with each candidate silence; clean rows only. TEST=1: the test files as well.
#   docs/runs/2026-11-30_trailing_silence/commands.sh [RUNS_DIR]
set -eu
runs=${1:-runs/noise}
out=$(dirname "$0")
silences=(0 0.25 0.5 0.75 1.0 1.5 2.0)
for run in "$runs"/ravdess_paper "$runs"/ravdess_speaker_fold?; do
  [ "${TEST:-0}" = 1 ] && break
  name=$(basename "$run")
  for cut in vad_cut whole; do
    flag=(); [ "$cut" = vad_cut ] && flag=(--vad-cut)
    OMP_NUM_THREADS=1 .venv/bin/python bench/noise_robustness.py --model "$run/model.pt" \
      --split "$run/split.json" --part validation "${flag[@]}" --noise \
      --trailing-silence "${silences[@]}" > "$out/$name.$cut.json"
  done
done
# After the choice (0.5 s), the test files: the shipped model on its own split with noise, and
# each speaker fold's run on its held-out actors (clean).
if [ "${TEST:-0}" = 1 ]; then
  OMP_NUM_THREADS=1 .venv/bin/python bench/noise_robustness.py --vad-cut --snr 20 10 \
    --trailing-silence 0 0.5 > "$out/test_shipped.vad_cut.json"
  for run in "$runs"/ravdess_speaker_fold?; do
    OMP_NUM_THREADS=1 .venv/bin/python bench/noise_robustness.py --model "$run/model.pt" \
      --split "$run/split.json" --part test --vad-cut --noise --trailing-silence 0 0.5 \
      > "$out/test_$(basename "$run").vad_cut.json"
  done
fi
