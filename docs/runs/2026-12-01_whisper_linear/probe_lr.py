"""Probe (validation only): a logistic regression in place of the Adam-trained pooled head.

The pooled Whisper frames of the shipped recipe's training examples (clean, noisy copies,
vad_node's cuts), C chosen on validation UA, against the pooled head of heads.py.

    .venv/bin/python docs/runs/2026-12-01_whisper_linear/probe_lr.py [paper|FOLD] [WEIGHTING]
WEIGHTING: recipe (each file's clean, cut and noisy versions weighted as the recipe draws them:
1/4, 1/4, 1/2) or equal. The test part is never scored.
"""
import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler

from ser_ros.core.threads import limit_cpu_threads
from ser_ros.data.registry import load_corpus
from ser_ros.training.augment import AugmentConfig
from ser_ros.training.experiment import load_experiment
from ser_ros.training.feature_cache import cached_features
from ser_ros.training.noisy_copies import noisy_copies
from ser_ros.training.run import build_front_end, split_corpus
from ser_ros.training.vad_cuts import VadCutter, emotion_node_trailing_silence, vad_node_config

protocol = sys.argv[1] if len(sys.argv) > 1 else 'paper'
weighting = sys.argv[2] if len(sys.argv) > 2 else 'recipe'
limit_cpu_threads(1)
overrides = []
if protocol != 'paper':
    overrides += ['protocol.name=speaker', f'protocol.fold={protocol}']
exp = load_experiment('config/train_ravdess_whisper.yaml', overrides)
corpus = load_corpus(exp.data.corpus, '../shared/data/ravdess-16k', exp.data.classes)
split = split_corpus(corpus, exp)
fe = build_front_end(exp)
cache = '.cache/features'


def pooled(frames: np.ndarray) -> np.ndarray:
    """(N, F, T) -> (N, 2F): each row's mean and standard deviation over the frames."""
    return np.concatenate((frames.mean(axis=2), frames.std(axis=2)), axis=1)


clean = pooled(cached_features(corpus.paths, fe, cache, 0, False))
cutter = VadCutter(vad_node_config(), emotion_node_trailing_silence())
cuts = pooled(cached_features(corpus.paths, fe, cache, 0, False, transform=cutter))
aug = AugmentConfig.from_dict(exp.training.augment)
train_paths = [corpus.paths[i] for i in split.train]
copies = noisy_copies(train_paths, aug.noise_copies, exp.training.seed, aug.noise_snr_min_db,
                      aug.noise_snr_max_db, fe.audio.sample_rate)
noisy = [pooled(cached_features(train_paths, fe, cache, 0, False, transform=c)) for c in copies]
y = corpus.targets
tr, va = split.train, split.validation
x_train = np.concatenate([clean[tr], cuts[tr], *noisy])
y_train = np.concatenate([y[tr]] * (2 + len(noisy)))
if weighting == 'recipe':
    w = np.concatenate([np.full(len(tr), 0.25), np.full(len(tr), 0.25),
                        np.full(len(tr) * len(noisy), 0.5 / len(noisy))])
else:
    w = np.ones(len(y_train))
scaler = StandardScaler().fit(x_train)
rows = []
for c in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0):
    model = LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(x_train), y_train,
                                                       sample_weight=w * len(w) / w.sum())
    row = {'protocol': protocol, 'weighting': weighting, 'C': c}
    for name, data in (('val', clean), ('val_cut', cuts)):
        pred = model.predict(scaler.transform(data[va]))
        row[name + '_ua'] = round(balanced_accuracy_score(y[va], pred), 4)
    rows.append(row)
    print(json.dumps(row), flush=True)
best = max(rows, key=lambda r: r['val_ua'])
print(json.dumps({'best': best}))
