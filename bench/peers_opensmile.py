"""Peer baseline on our data: openSMILE eGeMAPSv02 functionals + a linear classifier.

The classic speech-emotion baseline a user would pick instead of our network: 88 eGeMAPS
functionals per utterance (openSMILE), standardised, and a multinomial logistic regression
whose C is chosen on the validation part of the split only (the test part is never looked at
until the end). The classifier is trained on the training part only, as our model is (its
validation part only stops training). Splits are exactly ours (``ser_ros.data.splits.make_split``
with the seed and fractions of ``config/train_ravdess.yaml``): the paper's random split and all
speaker-independent folds.

Time per utterance: openSMILE on the decoded 16 kHz waveform, plus scaling and prediction of
one row; file decoding is not counted (it is the same for every model).

    .venv/bin/python bench/peers_opensmile.py [--data DIR] [--quick]

Prints one JSON object on stdout and a table on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import opensmile
import sklearn
import yaml
from common import emit, machine, percentiles, table
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ser_ros.core.audio import load_audio
from ser_ros.data.corpus import Corpus
from ser_ros.data.registry import load_corpus
from ser_ros.data.splits import Split, make_split
from ser_ros.training.metrics import evaluate_predictions

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'config' / 'train_ravdess.yaml'
DEFAULT_DATA = Path('/work/shared/data/ravdess-16k')
SAMPLE_RATE = 16000
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
MAX_ITER = 5000
# --quick: a few utterances per class and part, speaker fold 0 only: checks that it runs.
QUICK_PER_CLASS = {'train': 2, 'validation': 1, 'test': 1}


def protocol_settings(path: Path = CONFIG) -> dict[str, Any]:
    """Read the split settings (seed, fractions, folds) and class count our training uses."""
    with open(path, encoding='utf-8') as handle:
        config = yaml.safe_load(handle)
    protocol = config['protocol']
    return {'seed': int(protocol['seed']), 'test_fraction': float(protocol['test_fraction']),
            'validation_fraction': float(protocol['validation_fraction']),
            'folds': int(protocol['folds']), 'classes': int(config['data']['classes'])}


def subsample(indices: np.ndarray, targets: np.ndarray, per_class: int) -> np.ndarray:
    """Keep the first ``per_class`` indices of each class (deterministic, sorted)."""
    kept = [index for label in np.unique(targets[indices])
            for index in indices[targets[indices] == label][:per_class]]
    return np.sort(np.asarray(kept, dtype=np.int64))


class FeatureCache:
    """eGeMAPS functionals per corpus index, extracted once, with the time each one took."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                     feature_level=opensmile.FeatureLevel.Functionals)
        self.features: dict[int, np.ndarray] = {}
        self.seconds: dict[int, float] = {}
        self.audio_seconds: dict[int, float] = {}

    @property
    def names(self) -> list[str]:
        """The feature names (88 for eGeMAPSv02 functionals)."""
        return list(self.smile.feature_names)

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Feature matrix (rows in ``indices`` order), extracting what is not cached yet."""
        for index in indices.tolist():
            if index not in self.features:
                waveform = load_audio(self.corpus[index].path, SAMPLE_RATE)
                started = time.perf_counter()
                row = self.smile.process_signal(waveform, SAMPLE_RATE).to_numpy()[0]
                self.seconds[index] = time.perf_counter() - started
                self.features[index] = row.astype(np.float64)
                self.audio_seconds[index] = len(waveform) / SAMPLE_RATE
        return np.stack([self.features[index] for index in indices.tolist()])


def fit_classifier(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                   y_val: np.ndarray, labels: list[str]) -> tuple[Pipeline, float, float]:
    """Fit scaler + logistic regression for each C; keep the best validation UA (ties: smaller C).

    Returns the fitted pipeline, its C and its validation UA.
    """
    best: tuple[Pipeline, float, float] | None = None
    for c_value in C_GRID:
        model = make_pipeline(StandardScaler(),
                              LogisticRegression(C=c_value, max_iter=MAX_ITER))
        model.fit(x_train, y_train)
        val_ua = evaluate_predictions(y_val, model.predict(x_val), labels).ua
        if best is None or val_ua > best[2]:
            best = (model, c_value, val_ua)
    assert best is not None
    return best


def run_split(cache: FeatureCache, split: Split, quick: bool, fold: int | None
              ) -> tuple[dict[str, Any], dict[int, float]]:
    """Train and test on one split; return its record and classify ms per test utterance."""
    corpus = cache.corpus
    labels = list(corpus.labels)
    targets = corpus.targets
    parts = {'train': split.train, 'validation': split.validation, 'test': split.test}
    if quick:
        parts = {name: subsample(indices, targets, QUICK_PER_CLASS[name])
                 for name, indices in parts.items()}
    x = {name: cache.get(indices) for name, indices in parts.items()}
    y = {name: targets[indices] for name, indices in parts.items()}
    model, c_value, val_ua = fit_classifier(x['train'], y['train'], x['validation'],
                                            y['validation'], labels)
    predicted = model.predict(x['test'])
    report = evaluate_predictions(y['test'], predicted, labels)
    classify_ms = {}
    for index, row in zip(parts['test'].tolist(), x['test'], strict=True):
        started = time.perf_counter()
        model.predict(row[None, :])
        classify_ms[index] = (time.perf_counter() - started) * 1000.0
    record = {
        'protocol': split.protocol, 'fold': fold,
        'sizes': {name: len(indices) for name, indices in parts.items()},
        'test_units': list(split.test_units),
        'C': c_value, 'val_ua': round(val_ua, 4),
        'wa': round(report.wa, 4), 'ua': round(report.ua, 4),
        'per_class_recall': {k: round(v, 4) for k, v in report.per_class_recall.items()},
    }
    return record, classify_ms


def main(argv: list[str] | None = None) -> int:
    """Run the baseline on the paper split and every speaker fold; print JSON and a table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', type=Path, default=DEFAULT_DATA,
                        help=f'RAVDESS folder (Actor_XX/...); default {DEFAULT_DATA}')
    parser.add_argument('--quick', action='store_true',
                        help='a few files per class, speaker fold 0 only: checks that it runs')
    args = parser.parse_args(argv)
    settings = protocol_settings()
    try:
        corpus = load_corpus('ravdess', args.data, settings['classes'])
    except ValueError as error:
        print(f'peers_opensmile: {error}', file=sys.stderr)
        return 2
    cache = FeatureCache(corpus)
    common = {'seed': settings['seed'], 'test_fraction': settings['test_fraction'],
              'validation_fraction': settings['validation_fraction'],
              'folds': settings['folds']}
    runs: list[dict[str, Any]] = []
    classify_ms: dict[int, float] = {}
    started = time.perf_counter()
    if not args.quick:
        record, times = run_split(cache, make_split(corpus, 'paper', **common), False, None)
        runs.append(record)
        classify_ms.update(times)
    folds = [0] if args.quick else list(range(settings['folds']))
    for fold in folds:
        split = make_split(corpus, 'speaker', fold=fold, **common)
        record, times = run_split(cache, split, args.quick, fold)
        runs.append(record)
        classify_ms.update(times)
    speaker = [run for run in runs if run['protocol'] == 'speaker']
    feature_ms = {index: 1000.0 * s for index, s in cache.seconds.items()}
    result = {
        'bench': 'peers_opensmile',
        'quick': args.quick,
        'machine': machine() | {'opensmile': opensmile.__version__,
                                'scikit_learn': sklearn.__version__},
        'method': {'features': 'openSMILE eGeMAPSv02 functionals',
                   'num_features': len(cache.names),
                   'classifier': 'StandardScaler + LogisticRegression (lbfgs, multinomial)',
                   'C_grid': list(C_GRID), 'C_choice': 'best validation UA, fit on train only'},
        'corpus': {'name': corpus.name, 'root': str(args.data), 'labels': list(corpus.labels),
                   'utterances': len(corpus)},
        'protocol': common,
        'runs': runs,
        'paper': next((run for run in runs if run['protocol'] == 'paper'), None),
        'speaker_mean': {
            'folds': len(speaker),
            'wa': round(float(np.mean([run['wa'] for run in speaker])), 4),
            'ua': round(float(np.mean([run['ua'] for run in speaker])), 4),
            'wa_std': round(float(np.std([run['wa'] for run in speaker])), 4),
            'ua_std': round(float(np.std([run['ua'] for run in speaker])), 4),
        },
        'time_ms': {
            'features': percentiles(list(feature_ms.values())),
            'classify': percentiles(list(classify_ms.values()), digits=3),
            'per_utterance': percentiles([feature_ms[index] + ms
                                          for index, ms in classify_ms.items()]),
            'utterances_featurised': len(feature_ms),
            'utterances_classified': len(classify_ms),
            'mean_audio_s': round(float(np.mean(list(cache.audio_seconds.values()))), 3),
        },
        'wall_s': round(time.perf_counter() - started, 1),
    }
    rows = [[run['protocol'], '-' if run['fold'] is None else run['fold'], run['sizes']['test'],
             run['C'], f"{100 * run['wa']:.1f}", f"{100 * run['ua']:.1f}"] for run in runs]
    mean = result['speaker_mean']
    rows.append(['speaker', 'mean', '', '', f"{100 * mean['wa']:.1f}",
                 f"{100 * mean['ua']:.1f}"])
    timing = result['time_ms']
    human = (table(rows, ['protocol', 'fold', 'n_test', 'C', 'WA %', 'UA %'])
             + f"\nper utterance (ms): features p50 {timing['features']['p50']} "
               f"p95 {timing['features']['p95']}, classify p50 {timing['classify']['p50']} "
               f"p95 {timing['classify']['p95']}, total p50 {timing['per_utterance']['p50']} "
               f"p95 {timing['per_utterance']['p95']}")
    emit(result, human)
    return 0


if __name__ == '__main__':
    sys.exit(main())
