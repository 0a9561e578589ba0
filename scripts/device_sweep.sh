#!/usr/bin/env bash
# Compare the training recipes of config/recipe_sweep.yaml on a lent GPU (the workplace's
# `device` tool): every recipe trains on the paper split and on the five speaker-independent
# folds, all runs at once on the one GPU, with this package's own ser_train. Carried inputs as
# for scripts/device_train.sh (.whl wheels, .devdata/ravdess-16k corpus). Back in $OUT: the
# summary table (sweep.md), one tarball per recipe (the paper run's checkpoint and plots; the
# folds' reports), and, if time is left, the network's CUDA latency (inference_cuda.json).
#   carry: [".whl", ".devdata"]   command: bash scripts/device_sweep.sh BUDGET_S [COMMIT]
set -u
budget=${1:-380}
export SER_ROS_GIT_COMMIT=${2:-}
out=${OUT:-/tmp/sweep_out}; runs=${RUNS:-/tmp/sweep}
mkdir -p "$out" "$runs"
source scripts/device_env.sh

# EXTRA: more overrides for every run, space-separated (a smoke test's tiny network, say).
export NOISE_DATA=.devdata/ravdess-16k   # train_six.sh checks each run under noise on it
common=(--set data.root=.devdata/ravdess-16k --set output.cache_dir=/tmp/cache
        --set training.time_budget_s="$budget" --set training.threads=1 --jobs 16 --quiet)
for item in ${EXTRA:-}; do common+=(--set "$item"); done
# Sixteen cores for six runs and their checks: one thread each (training.threads does it for
# training, this for the checks' inference).
export OMP_NUM_THREADS=1
recipe_sets() {   # RECIPE: its --set overrides, one word each
  while read -r item; do printf -- '--set\n%s\n' "$item"; done \
    < <(python3 scripts/sweep.py args "$1")
}
recipes=$(python3 scripts/sweep.py names) || exit 1
warm=$(mktemp -d -u /tmp/sweep_warm.XXXXXX)
# Extract the features (and a recipe's VAD cuts) once; every run then reads the same cache.
for recipe in $recipes; do
  mapfile -t sets < <(recipe_sets "$recipe")
  python3 -m ser_ros.cli.train --config config/train_ravdess.yaml "${common[@]}" "${sets[@]}" \
    --set training.max_epochs=1 --set training.time_budget_s=1 --set output.run_dir="$warm" \
    --no-plots >> "$out/warm.log" 2>&1 || { tail -30 "$out/warm.log"; exit 1; }
  rm -rf "$warm"
done

for recipe in $recipes; do
  mapfile -t sets < <(recipe_sets "$recipe")
  PARALLEL=6 bash scripts/train_six.sh config/train_ravdess.yaml "$runs/$recipe" "${common[@]}" \
    "${sets[@]}" > "$runs/$recipe.summary" 2>&1 &
done
wait
python3 scripts/sweep.py summary "${runs}"/*/ | tee "$out/sweep.md"
for recipe in $recipes; do
  for log in "$runs/$recipe"/*.log; do
    name=$(basename "$log" .log)
    run=$runs/$recipe/ravdess_paper; [ "$name" = paper ] || run=$runs/$recipe/ravdess_speaker_$name
    cp "$log" "$run/train.log" 2>/dev/null
    grep -E 'Error|error' "$log" | tail -2 | sed "s|^|$recipe $name: |"
  done
  tar -czf "$out/$recipe.tar.gz" -C "$runs" --exclude=train_state.pt \
    --exclude="ravdess_speaker_fold*/model.pt" "$recipe"
done
best=$(python3 scripts/sweep.py summary "${runs}"/*/ | sed -n 3p | cut -d'|' -f2 | tr -d ' ')
if [ -n "$best" ] && [ -f "$runs/$best/ravdess_paper/model.pt" ]; then
  timeout 60 python3 bench/inference.py --device cuda --model "$runs/$best/ravdess_paper/model.pt" \
    --data .devdata/ravdess-16k --iterations 100 > "$out/inference_cuda.json"
fi
ls -la "$out"
