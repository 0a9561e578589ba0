#!/usr/bin/env bash
# After a rule's verdict: ship a recipe's paper-split run as the default model (its card from
# the six runs; the card's Notes are the top section of docs/model_notes.md), then score the
# shipped model's test files under noise, whole and as vad_node cuts them, and the five fold
# models on their held-out actors' cuts (bench/noise_robustness.py; reports in OUT_DIR).
#   docs/runs/2026-12-01_whisper_lr/ship.sh RECIPE_DIR OUT_DIR
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$repo"
recipe=$1 out=$2
python=.venv/bin/python
notes=$(mktemp)
trap 'rm -f "$notes"' EXIT
awk '/^## /{exit} {print}' docs/model_notes.md > "$notes"
printf '\nEvery recipe tried, with its rule and numbers: docs/model_notes.md.\n' >> "$notes"
speaker_runs=()
for fold in 0 1 2 3 4; do speaker_runs+=(--speaker-run "$recipe/ravdess_speaker_fold$fold"); done
"$python" -m ser_ros.training.model_card --run "$recipe/ravdess_paper" "${speaker_runs[@]}" \
  --notes "$notes"
mkdir -p "$out"
score() {   # NAME MODEL SPLIT [OPTION ...]
  local name=$1 model=$2 split=$3
  shift 3
  "$python" bench/noise_robustness.py --model "$model" --split "$split" --part test "$@" \
    > "$out/$name.json" 2> "$out/$name.log"
}
score noise_test models/ser_ravdess_7class.pt models/ser_ravdess_7class_split.json &
score vad_cut_test models/ser_ravdess_7class.pt models/ser_ravdess_7class_split.json --vad-cut
wait
for fold in 0 1 2 3 4; do
  score "vad_cut_test_fold$fold" "$recipe/ravdess_speaker_fold$fold/model.pt" \
    "$recipe/ravdess_speaker_fold$fold/split.json" --vad-cut --snr 10 &
  [ $((fold % 2)) = 1 ] && wait
done
wait
