#!/usr/bin/env bash
# Per-utterance cost of the shipped model on a lent GPU (issue 6): bench/inference.py with the
# network on CUDA (features on the CPU, as in emotion_node), fp32 and bf16, eager and the
# TorchScript export, then the same on the machine's CPU for scale. JSON files in $OUT.
#   carry: [".whl", ".devdata"]   command: bash scripts/device_bench.sh
set -u
out=${OUT:-/tmp/bench_out}; mkdir -p "$out"
source scripts/device_env.sh
model=${MODEL:-models/ser_ravdess_7class.pt}
for device in cuda cpu; do
  timeout 240 python3 bench/inference.py --device "$device" --model "$model" \
    --data .devdata/ravdess-16k --iterations 100 --threads 1 > "$out/inference_$device.json"
done
ls -la "$out"
