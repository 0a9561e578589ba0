"""Timing: the shipped ensemble's features, members with equal front ends shared or not.

25 whole RAVDESS files, four alternating rounds of each, one torch thread, bf16 and the node's
0.5 s of silence, in one process; prints p50 / p95 per way.

    .venv/bin/python docs/runs/2026-12-01_ensemble_probe/feature_sharing_timing.py
"""

import time
from pathlib import Path

import numpy as np
import torch

from ser_ros.core.audio import load_audio
from ser_ros.core.inference import load_recognizer

RATE = 16000
ROUNDS = 4
MS = 1000.0

torch.set_num_threads(1)
recognizer = load_recognizer('models/ser_ravdess_7class_ensemble.pt', device='cpu', bf16=True,
                             trailing_silence_s=0.5)
files = sorted(Path('../shared/data/ravdess-16k').glob('Actor_*/*.flac'))[::48][:25]
waves = [load_audio(path, RATE) for path in files]
ways = {'shared': list(recognizer._feature_source),
        'separate': list(range(len(recognizer.members)))}
laps: dict[str, list[float]] = {name: [] for name in ways}
for wave in waves[:3]:
    recognizer.features(wave, RATE)
for _ in range(ROUNDS):
    for name, sources in ways.items():
        recognizer._feature_source = sources
        for wave in waves:
            started = time.perf_counter()
            recognizer.features(wave, RATE)
            laps[name].append(time.perf_counter() - started)
for name, values in laps.items():
    print(f'{name} (sources {ways[name]}): p50 {MS * np.percentile(values, 50):.2f} ms, '
          f'p95 {MS * np.percentile(values, 95):.2f} ms, n={len(values)}')
