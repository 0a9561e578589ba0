#!/usr/bin/env bash
# The base of the babble2 rule: scripts/train_six.sh's two checks (bench/noise_robustness.py on
# the validation files at 10 dB, whole and as vad_node cuts them) rerun with the current babble
# generator on the six runs of a recipe already trained, into OUT_DIR/<run>/ (model.pt and
# split.json copied beside them, so verdict.py reads OUT_DIR like a recipe folder).
#   docs/runs/2026-12-01_babble2/rescore_base.sh RECIPE_DIR OUT_DIR
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
recipe=$1 out=$2
for run in ravdess_paper ravdess_speaker_fold0 ravdess_speaker_fold1 ravdess_speaker_fold2 \
    ravdess_speaker_fold3 ravdess_speaker_fold4; do
  mkdir -p "$out/$run"
  cp "$recipe/$run/model.pt" "$recipe/$run/split.json" "$out/$run/"
  for check in noise_validation vad_cut_validation; do
    option=()
    [ "$check" = vad_cut_validation ] && option=(--vad-cut)
    "$repo/.venv/bin/python" "$repo/bench/noise_robustness.py" --model "$out/$run/model.pt" \
      --split "$out/$run/split.json" --part validation --snr 10 "${option[@]}" \
      > "$out/$run/$check.json" 2> "$out/$run/$check.log"
  done
done
