#!/usr/bin/env bash
# Rerun one of the paper's study tables (ser_study, config/study.yaml) on a lent GPU machine:
# every row trains in its own process at the same time on the one GPU, then ser_study runs once
# more, which finds each row finished (a rerun resumes), and writes the Markdown table.
# Same carried inputs as scripts/device_train.sh (.whl wheels, .devdata corpus).
#   command: bash scripts/device_study.sh TABLE BUDGET_S COMMIT [extra ser_study args...]
set -u
table=${1:?table3, table4 or table2}; budget=${2:-400}
export SER_ROS_GIT_COMMIT=${3:-}
shift 3 || shift $#
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
out=${OUT:-/tmp/study_out}; mkdir -p "$out"
args=(--runs /tmp/study_runs --out "$out" --quiet
      --set data.root=.devdata/ravdess-16k --set output.cache_dir=/tmp/cache
      --set training.time_budget_s="$budget" --set training.threads=2 "$@")
rows=$(python3 -c "
from ser_ros.training.study import load_study
print(' '.join(row.id for row in load_study('config/study.yaml').tables['$table'].rows))") || exit 1
for row in $rows; do
  python3 -m ser_ros.cli.study "$table" --rows "$row" "${args[@]}" > "/tmp/study_$row.log" 2>&1 &
done
wait
python3 -m ser_ros.cli.study "$table" "${args[@]}" 2>&1 | tail -30
