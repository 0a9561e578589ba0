"""Probe: per-speaker band mean (and std) matching at test time only, fold models unchanged.

For each of the shipped card's five speaker-independent fold models (runs/noise/), the speech
frames of each held-out test speaker are moved from that speaker's mean (mean_std: and std)
per band to the training speakers' pooled ones, then scored as usual (fp32).

    .venv/bin/python docs/runs/2026-11-30_speaker_norm_probe/probe_test_time.py
"""

import json

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

from ser_ros.core.checkpoint import Checkpoint
from ser_ros.data.registry import load_corpus

ROOT = '../shared/data/ravdess-16k'
SPEECH_ABOVE_FLOOR_DB = 20.0
MODES = ('mean', 'mean_std')

torch.set_num_threads(1)
corpus = load_corpus('ravdess', ROOT, 7)
by_name = {str(u.path.relative_to(corpus.root)): u for u in corpus.utterances}
raw_cache: dict[str, np.ndarray] = {}


def raw(front_end, name: str) -> np.ndarray:
    """Unnormalised features of one file (cached across folds)."""
    if name not in raw_cache:
        raw_cache[name] = front_end.extract_file(by_name[name].path, normalize=False)
    return raw_cache[name]


def speech(matrix: np.ndarray, floor: float) -> np.ndarray:
    """Frames with some band well above the floor."""
    return matrix.max(axis=0) > floor + SPEECH_ABOVE_FLOOR_DB


def band_stats(matrices: list[np.ndarray], floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std over the speech frames of ``matrices``."""
    columns = np.concatenate([m[:, speech(m, floor)] for m in matrices], axis=1)
    return columns.mean(axis=1), columns.std(axis=1)


def predict(model, front_end, matrices: list[np.ndarray]) -> np.ndarray:
    """Predicted class indices."""
    batch = torch.from_numpy(np.stack([front_end.normalizer(m) for m in matrices]))
    with torch.inference_mode():
        return model(batch).argmax(1).numpy()


results = []
for fold in range(5):
    run = f'runs/noise/ravdess_speaker_fold{fold}'
    checkpoint = Checkpoint.load(f'{run}/model.pt')
    front_end, model = checkpoint.front_end(), checkpoint.build_model().eval()
    floor = -front_end.features.top_db
    split = json.loads(open(f'{run}/split.json').read())
    held_out = set(split['test_files']) | set(split['validation_files'])
    pooled_mean, pooled_std = band_stats(
        [raw(front_end, name) for name in by_name if name not in held_out], floor)
    test = split['test_files']
    truth = np.array([corpus.labels.index(by_name[name].label) for name in test])
    base = [raw(front_end, name) for name in test]
    row = {'fold': fold, 'base': balanced_accuracy_score(
        truth, predict(model, front_end, base))}
    per_speaker: dict[str, list[str]] = {}
    for name in test:
        per_speaker.setdefault(by_name[name].speaker, []).append(name)
    stats = {speaker: band_stats([raw(front_end, name) for name in names], floor)
             for speaker, names in per_speaker.items()}
    for mode in MODES:
        adapted = []
        for name in test:
            matrix = raw(front_end, name).copy()
            mean, std = stats[by_name[name].speaker]
            frames = speech(matrix, floor)
            if mode == 'mean':
                matrix[:, frames] += (pooled_mean - mean)[:, None]
            else:
                matrix[:, frames] = ((matrix[:, frames] - mean[:, None])
                                     / np.maximum(std, 1e-3)[:, None] * pooled_std[:, None]
                                     + pooled_mean[:, None])
            adapted.append(np.maximum(matrix, floor).astype(np.float32))
        row[mode] = balanced_accuracy_score(truth, predict(model, front_end, adapted))
    print(json.dumps({key: round(value, 4) if isinstance(value, float) else value
                      for key, value in row.items()}), flush=True)
    results.append(row)
for mode in ('base', *MODES):
    print(mode, round(float(np.mean([row[mode] for row in results])) * 100, 1))
