"""Probe: validation UA of the Whisper default with subsets of the optional ensemble's members.

Paper split, validation files only (the test part is never scored); members averaged by their
softmax outputs. Output: ensemble_validation.txt (run on the float32 Whisper caches of the
shipped runs; a rerun since caches are keyed on the encoder's precision uses int8 features).

    .venv/bin/python docs/runs/2026-12-01_whisper_ensemble/ensemble_validation.py
"""

import itertools

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from ser_ros.core.checkpoint import Checkpoint
from ser_ros.core.ensemble import load_model, members_of
from ser_ros.data.registry import load_corpus
from ser_ros.data.splits import split_part_indices
from ser_ros.training.evaluate import label_ids
from ser_ros.training.feature_cache import cached_features
from ser_ros.training.fit import predict_logits

torch.set_num_threads(1)
corpus = load_corpus('ravdess', '../shared/data/ravdess-16k', 7)
chosen = split_part_indices(corpus, 'models/ser_ravdess_7class_split.json', 'validation')
members = {'whisper': Checkpoint.load('models/ser_ravdess_7class.pt')}
ensemble = members_of(load_model('models/ser_ravdess_7class_ensemble.pt'))
members.update({f'm{index}': member for index, member in enumerate(ensemble)})
probabilities = {}
for name, checkpoint in members.items():
    front_end = checkpoint.front_end()
    raw = cached_features([corpus.paths[i] for i in chosen], front_end.with_normalizer(None),
                          '.cache/features', progress=False)
    features = raw if front_end.normalizer is None else front_end.normalizer(raw)
    logits = predict_logits(checkpoint.build_model(), torch.from_numpy(features),
                            torch.device('cpu'), False)
    probabilities[name] = torch.softmax(logits, 1).numpy()
    targets = label_ids(corpus, checkpoint.labels)[chosen]
for size in range(1, len(members) + 1):
    for subset in itertools.combinations(members, size):
        predicted = np.mean([probabilities[name] for name in subset], 0).argmax(1)
        print(subset, round(balanced_accuracy_score(targets, predicted), 4),
              round(accuracy_score(targets, predicted), 4))
