#!/usr/bin/env bash
# The rule's checks (docs/model_notes.md, "the Whisper model with the IEMOCAP-feature network"):
# for each of the six runs, the pair (the Whisper run and the iemocap-feature run of the same
# split, averaged by ser_ensemble) and the Whisper model alone, both scored now with the same
# encoder precision, on the validation files under white and babble noise at 10 dB and on
# vad_node's cuts (scripts/train_six.sh's checks). PART=test scores the test files instead
# (after the verdict). RUNS: which of the six (default all). Two at a time.
#   [RUNS="ravdess_paper ..."] docs/runs/2026-12-01_whisper_ensemble/check_pair.sh \
#       [WHISPER_DIR IEMOCAP_DIR OUT_DIR]
set -uo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$repo"
python=.venv/bin/python
whisper=${1:-runs/whisper/noise_vad_cut} iemocap=${2:-runs/whisper_ens/iemocap_noise_vad_cut}
out=${3:-runs/whisper_ens} part=${PART:-validation}

check() {   # MODEL SPLIT JSON [OPTION ...]
  local model=$1 split=$2 json=$3
  shift 3
  "$python" bench/noise_robustness.py --model "$model" --split "$split" --part "$part" \
    --snr 10 "$@" > "$json" 2> "${json%.json}.log" || echo "check_pair: $json failed" >&2
}
for run in ${RUNS:-ravdess_paper ravdess_speaker_fold0 ravdess_speaker_fold1 ravdess_speaker_fold2 ravdess_speaker_fold3 ravdess_speaker_fold4}; do
  mkdir -p "$out/pair/$run" "$out/whisper_alone/$run"
  cp "$whisper/$run/split.json" "$out/pair/$run/split.json"
  [ -f "$out/pair/$run/model.pt" ] || "$python" -m ser_ros.cli.ensemble \
      --out "$out/pair/$run/model.pt" "$whisper/$run/model.pt" "$iemocap/$run/model.pt" >&2
  "$python" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
      "$whisper/$run/split.json" "$iemocap/$run/split.json" \
    || { echo "check_pair: the two runs of $run have different splits" >&2; exit 1; }
  for who in pair whisper_alone; do
    model=$out/pair/$run/model.pt
    [ "$who" = whisper_alone ] && model=$whisper/$run/model.pt
    check "$model" "$whisper/$run/split.json" "$out/$who/$run/noise_$part.json" &
    check "$model" "$whisper/$run/split.json" "$out/$who/$run/vad_cut_$part.json" --vad-cut
    wait
  done
done
