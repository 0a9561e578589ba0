"""Probe: train one speaker-independent fold with or without per-speaker band normalisation.

With ``speaker``, every speaker's speech frames (some band 20 dB above the floor) are mapped,
band by band, from that speaker's own mean/std over all of its utterances to the pooled
mean/std of the training speakers' speech frames; floor frames stay. Held-out speakers use
their own statistics (transductive: on the robot, the statistics of the conversation so far).
Paper recipe without noise, one torch thread, bf16; no checkpoint is written.

    .venv/bin/python docs/runs/2026-11-30_speaker_norm_probe/probe_train.py FOLD none|speaker OUT
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

from ser_ros.core.features import Normalizer
from ser_ros.core.heap import retain_freed_memory
from ser_ros.core.model import ModelConfig, SerNet
from ser_ros.core.threads import limit_cpu_threads
from ser_ros.data.registry import load_corpus
from ser_ros.training.experiment import load_experiment
from ser_ros.training.feature_cache import cached_features
from ser_ros.training.fit import FitSettings, fit, predict_logits
from ser_ros.training.run import build_front_end, seed_everything, split_corpus

SPEECH_ABOVE_FLOOR_DB = 20.0

fold, mode, out = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
limit_cpu_threads(1)
retain_freed_memory()
experiment = load_experiment('config/train_ravdess_speaker.yaml', [f'protocol.fold={fold}'])
corpus = load_corpus(experiment.data.corpus, experiment.data.root, experiment.data.classes)
split = split_corpus(corpus, experiment)
front_end = build_front_end(experiment)
raw = cached_features(corpus.paths, front_end, experiment.output.cache_dir, 1, False).copy()
floor = -front_end.features.top_db
speakers = np.array([utterance.speaker for utterance in corpus.utterances])


def speech(matrix: np.ndarray) -> np.ndarray:
    """Frames with some band well above the floor."""
    return matrix.max(axis=0) > floor + SPEECH_ABOVE_FLOOR_DB


if mode == 'speaker':
    pool = np.concatenate([raw[i][:, speech(raw[i])] for i in split.train], axis=1)
    pool_mean, pool_std = pool.mean(1), pool.std(1)
    masks = [speech(matrix) for matrix in raw]
    for speaker in np.unique(speakers):
        members = np.flatnonzero(speakers == speaker)
        columns = np.concatenate([raw[i][:, masks[i]] for i in members], axis=1)
        mean, std = columns.mean(1), np.maximum(columns.std(1), 1e-3)
        for i in members:
            mapped = ((raw[i][:, masks[i]] - mean[:, None]) / std[:, None] * pool_std[:, None]
                      + pool_mean[:, None])
            raw[i][:, masks[i]] = np.maximum(mapped, floor)

normalizer = Normalizer.fit(raw[split.train])
features = torch.from_numpy(normalizer(raw))
targets = torch.from_numpy(corpus.targets)
seed_everything(experiment.training.seed)
num_features, num_frames = front_end.feature_shape
model = SerNet(ModelConfig(num_classes=len(corpus.labels), num_features=num_features,
                           num_frames=num_frames, **experiment.model))
training = experiment.training
settings = FitSettings.from_training(training, device=torch.device('cpu'), bf16=True,
                                     fingerprint=f'probe-{mode}-{fold}')
started = time.time()
result = fit(model, (features[split.train], targets[split.train]),
             (features[split.validation], targets[split.validation]), settings,
             state_path=out / 'state.pt', progress=True)


def unweighted_accuracy(part: np.ndarray) -> float:
    """UA of the restored best model on one part of the split."""
    logits = predict_logits(model, features[part], torch.device('cpu'), True)
    return balanced_accuracy_score(targets[part].numpy(), logits.argmax(1).numpy())


record = {'fold': fold, 'mode': mode, 'best_epoch': result.best_epoch,
          'epochs': result.epochs_run, 'val_ua': unweighted_accuracy(split.validation),
          'test_ua': unweighted_accuracy(split.test), 'seconds': time.time() - started}
print(json.dumps(record))
(out / 'result.json').write_text(json.dumps(record))
