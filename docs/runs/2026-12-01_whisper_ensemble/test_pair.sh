#!/usr/bin/env bash
# After the verdict (the rule missed): the pair's clean test numbers, for the record only.
#   docs/runs/2026-12-01_whisper_ensemble/test_pair.sh > docs/runs/2026-12-01_whisper_ensemble/test_pair.jsonl
set -euo pipefail
cd "$(dirname "$0")/../../.."
for run in ravdess_paper ravdess_speaker_fold{0..4}; do
  for who in pair whisper_alone; do
    model=runs/whisper_ens/pair/$run/model.pt
    [ "$who" = whisper_alone ] && model=runs/whisper/noise_vad_cut/$run/model.pt
    .venv/bin/ser_evaluate --model "$model" --data ../shared/data/ravdess-16k \
      --split "runs/whisper_ens/pair/$run/split.json" --jobs 2 --device cpu \
      | .venv/bin/python -c "import json, sys; d = json.load(sys.stdin); print(json.dumps({'run': '$run', 'who': '$who', 'wa': round(100 * d['wa'], 1), 'ua': round(100 * d['ua'], 1), 'n': d['n']}))"
  done
done
