"""Probe: whether ensembles of models already trained on one split beat one model.

Members are runs of different recipes (and front ends) on the same split. An ensemble averages
the members' softmax outputs. Rule fixed before running: for each protocol, the subset of
members with the highest mean validation UA is the chosen ensemble; test numbers are reported
for every subset, the chosen one marked, and never used to choose.

    .venv/bin/python docs/runs/2026-12-01_ensemble_probe/probe_ensemble.py > OUT.json
"""

import itertools
import json
import sys

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from ser_ros.core.checkpoint import Checkpoint
from ser_ros.data.registry import load_corpus
from ser_ros.data.splits import split_part_indices
from ser_ros.training.evaluate import label_ids
from ser_ros.training.feature_cache import cached_features
from ser_ros.training.fit import predict_logits

ROOT = '../shared/data/ravdess-16k'
CACHE = '.cache/features'
SPEAKER_MEMBERS = {
    'noise (shipped)': 'runs/noise/ravdess_speaker_fold{fold}',
    'vad_cut': 'runs/cpu_sweep/vad_cut/ravdess_speaker_fold{fold}',
    'iemocap_features': 'runs/cpu_iemocap/A/ravdess_speaker_fold{fold}',
    'iemocap_features_cosine_all': 'runs/cpu_iemocap/B/ravdess_speaker_fold{fold}',
}
PAPER_MEMBERS = {
    'noise (shipped)': 'runs/noise/ravdess_paper',
    'vad_cut': 'runs/cpu_sweep/vad_cut/ravdess_paper',
    'iemocap_features': 'runs/cpu_iemocap/A/ravdess_paper',
    'iemocap_features_cosine_all': 'runs/cpu_iemocap/B/ravdess_paper',
    'mel128_cosine_ema_60': 'runs/cpu_mel128_cosine_ema_paper',
    'cosine_ema_warp_noise_vad_cut_120':
        'runs/cpu_sweep/cosine_ema_warp_noise_vad_cut/ravdess_paper',
}

torch.set_num_threads(1)
corpus = load_corpus('ravdess', ROOT, 7)
all_features: dict[str, np.ndarray] = {}


def probabilities(run: str, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Softmax outputs of the run's model on its split's ``part``, and the targets."""
    checkpoint = Checkpoint.load(f'{run}/model.pt')
    front_end = checkpoint.front_end()
    key = front_end.features.name + str(front_end.features)
    if key not in all_features:
        all_features[key] = cached_features([item.path for item in corpus],
                                            front_end.with_normalizer(None), CACHE, progress=False)
    chosen = split_part_indices(corpus, f'{run}/split.json', part)
    raw = all_features[key][chosen]
    features = raw if front_end.normalizer is None else front_end.normalizer(raw)
    logits = predict_logits(checkpoint.build_model(), torch.from_numpy(features),
                            torch.device('cpu'), bf16=False)
    return torch.softmax(logits, dim=1).numpy(), label_ids(corpus, checkpoint.labels)[chosen]


def study(members: dict[str, str], folds: list[int | None]) -> dict:
    """Score every subset of members: validation and test UA and WA, per fold and mean."""
    outputs = {}   # (member, fold, part) -> (probabilities, targets)
    for name, pattern in members.items():
        for fold in folds:
            run = pattern.format(fold=fold)
            for part in ('validation', 'test'):
                outputs[name, fold, part] = probabilities(run, part)
            print(f'{name} fold {fold}: done', file=sys.stderr)
    rows = []
    names = list(members)
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(names, size):
            row = {'members': list(subset)}
            for part in ('validation', 'test'):
                uas, was = [], []
                for fold in folds:
                    targets = outputs[subset[0], fold, part][1]
                    for name in subset:
                        assert np.array_equal(outputs[name, fold, part][1], targets)
                    mean = np.mean([outputs[name, fold, part][0] for name in subset], axis=0)
                    predictions = mean.argmax(axis=1)
                    uas.append(balanced_accuracy_score(targets, predictions))
                    was.append(accuracy_score(targets, predictions))
                row[f'{part}_ua'] = [round(float(v), 4) for v in uas]
                row[f'{part}_wa'] = [round(float(v), 4) for v in was]
                row[f'mean_{part}_ua'] = round(float(np.mean(uas)), 4)
                row[f'mean_{part}_wa'] = round(float(np.mean(was)), 4)
            rows.append(row)
    chosen = max(rows, key=lambda row: row['mean_validation_ua'])
    chosen['chosen'] = True
    return {'rows': sorted(rows, key=lambda row: -row['mean_validation_ua'])}


result = {'speaker_independent': study(SPEAKER_MEMBERS, [0, 1, 2, 3, 4]),
          'paper': study(PAPER_MEMBERS, [None])}
print(json.dumps(result, indent=1))
