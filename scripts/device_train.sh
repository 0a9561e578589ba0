#!/usr/bin/env bash
# Train the shipped RAVDESS model and the five speaker-independent folds on a lent GPU machine
# (the workplace's `device` tool), all six runs at once on one GPU, with this package's own
# ser_train. The machine has PyTorch but not our audio packages and cannot download: the
# caller carries their wheels in .whl/ and the corpus in .devdata/ravdess-16k (both ignored by
# git). Results come back as one tarball per run in $OUT.
#   carry: [".whl", ".devdata"]   command: bash scripts/device_train.sh BUDGET_S [COMMIT]
set -u
budget=${1:-380}
export SER_ROS_GIT_COMMIT=${2:-}
source scripts/device_env.sh

common=(--set data.root=.devdata/ravdess-16k --set output.cache_dir=/tmp/cache
        --set training.max_epochs=200 --set training.patience=30
        --set training.time_budget_s="$budget" --set training.threads=2 --jobs 16)
# Extract the features once; the six runs then read the same cache.
python3 -m ser_ros.cli.train --config config/train_ravdess.yaml "${common[@]}" \
  --set training.max_epochs=1 --set training.time_budget_s=1 --set output.run_dir=/tmp/warm \
  --quiet --no-plots > "$OUT/warm.log" 2>&1 || { tail -30 "$OUT/warm.log"; exit 1; }

mkdir -p /tmp/runs
python3 -m ser_ros.cli.train --config config/train_ravdess.yaml "${common[@]}" \
  --set output.run_dir=/tmp/runs/ravdess_paper > /tmp/runs/ravdess_paper.log 2>&1 &
for fold in 0 1 2 3 4; do
  python3 -m ser_ros.cli.train --config config/train_ravdess_speaker.yaml "${common[@]}" \
    --set protocol.fold=$fold --set output.run_dir=/tmp/runs/ravdess_speaker_fold$fold \
    > /tmp/runs/ravdess_speaker_fold$fold.log 2>&1 &
done
wait
for run in /tmp/runs/*/; do
  name=$(basename "$run")
  cp "/tmp/runs/$name.log" "$run/train.log"
  tar -czf "$OUT/$name.tar.gz" -C /tmp/runs --exclude=train_state.pt "$name"
  grep -E '^test:|Error|error' "$run/train.log" | tail -3 | sed "s|^|$name: |"
done
