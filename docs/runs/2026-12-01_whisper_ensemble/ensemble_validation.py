"""Validation UA (paper split) of the Whisper default with subsets of the shipped ensemble's members."""
import itertools, json
import numpy as np, torch
from sklearn.metrics import balanced_accuracy_score, accuracy_score
from ser_ros.core.checkpoint import Checkpoint
from ser_ros.core.ensemble import load_model, members_of
from ser_ros.data.registry import load_corpus
from ser_ros.data.splits import split_part_indices
from ser_ros.training.evaluate import label_ids
from ser_ros.training.feature_cache import cached_features
from ser_ros.training.fit import predict_logits
torch.set_num_threads(1)
corpus = load_corpus('ravdess', '/work/shared/data/ravdess-16k', 7)
split = 'models/ser_ravdess_7class_split.json'
chosen = split_part_indices(corpus, split, 'validation')
members = {'whisper': Checkpoint.load('models/ser_ravdess_7class.pt')}
for i, m in enumerate(members_of(load_model('models/ser_ravdess_7class_ensemble.pt'))):
    members[f'm{i}'] = m
probs = {}
for name, ck in members.items():
    fe = ck.front_end()
    raw = cached_features([corpus.paths[i] for i in chosen], fe.with_normalizer(None), '.cache/features', progress=False)
    x = raw if fe.normalizer is None else fe.normalizer(raw)
    probs[name] = torch.softmax(predict_logits(ck.build_model(), torch.from_numpy(x), torch.device('cpu'), False), 1).numpy()
    targets = label_ids(corpus, ck.labels)[chosen]
for size in range(1, 5):
    for sub in itertools.combinations(members, size):
        p = np.mean([probs[n] for n in sub], 0).argmax(1)
        print(sub, round(balanced_accuracy_score(targets, p), 4), round(accuracy_score(targets, p), 4))
