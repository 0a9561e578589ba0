#!/usr/bin/env bash
# Rerun the paper's study tables (ser_study, config/study.yaml) on a lent GPU machine: every row
# of every named table trains in its own process at the same time on the one GPU; the rows'
# records are then merged into one Markdown table per study table in $OUT. BUDGET_S is each row's
# training time; leave room for start-up and feature extraction (about 4 minutes with 18 rows on
# 16 cores in the first run) under the call's limit. Rerunning resumes every row from its last
# epoch (BUDGET_S 1: one more epoch, then the test evaluation).
# Same carried inputs as scripts/device_train.sh (.whl wheels, .devdata corpus).
#   command: bash scripts/device_study.sh "table3 table4 table2" BUDGET_S [COMMIT [ser_study args]]
set -u
tables=${1:?tables, e.g. "table3 table4 table2"}; budget=${2:-400}
export SER_ROS_GIT_COMMIT=${3:-}
shift 3 || shift $#
source scripts/device_env.sh
out=${OUT:-/tmp/study_out}; mkdir -p "$out/rows"
all_rows=0
for table in $tables; do
  all_rows=$((all_rows + $(python3 -c "
from ser_ros.training.study import load_study
print(len(load_study('config/study.yaml').tables['$table'].rows))")))
done
# Each row extracts its features with its share of the cores, not all of them.
jobs=$(( $(nproc) / all_rows )); [ "$jobs" -ge 1 ] || jobs=1
args=(--runs /tmp/study_runs --jobs "$jobs"
      --set data.root=.devdata/ravdess-16k --set output.cache_dir=/tmp/cache
      --set training.time_budget_s="$budget" --set training.threads=1 "$@")
for table in $tables; do
  rows=$(python3 -c "
from ser_ros.training.study import load_study
print(' '.join(row.id for row in load_study('config/study.yaml').tables['$table'].rows))") || exit 1
  for row in $rows; do
    python3 -m ser_ros.cli.study "$table" --rows "$row" --out "$out/rows/${table}_$row" \
      "${args[@]}" > "$out/rows/${table}_$row.log" 2>&1 &
  done
done
wait
for table in $tables; do
  python3 - "$table" "$out" "$tables" "$budget" <<'EOF'
import json, sys
from pathlib import Path
from ser_ros.training.study import load_study, write_table
table, out, tables, budget = sys.argv[1:]
study = load_study('config/study.yaml')
records = []
for row in study.tables[table].rows:
    part = Path(out) / 'rows' / f'{table}_{row.id}' / f'{table}.json'
    if part.exists():
        records.extend(json.loads(part.read_text())['rows'])
    else:
        print(f'{table}: row {row.id} did not finish (see rows/{table}_{row.id}.log)')
command = (f'bash scripts/device_study.sh "{tables}" {budget} <commit> (lent GPU; every row '
           f'its own ser_study --rows process, time budget {budget} s per row)')
print(write_table(study.tables[table], records, command, out).read_text())
EOF
done
