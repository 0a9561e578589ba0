"""Probe (validation only): heads on Whisper tiny.en frames, trained by the package's fit().

Clean and vad_node-cut validation files of one split; the test part is never scored.
    .venv/bin/python docs/runs/2026-12-01_whisper_ensemble/heads.py HEAD [LR] [paper|FOLD]
Ran (2026-12-01, 12:10-12:23 UTC, two at a time): pooled, att, attmlp; mlp was stopped before
its end; bn, bnmlp, attbn and other learning rates were never run. Rows: heads.jsonl.
"""
import json
import sys
from dataclasses import replace

import torch
from torch import nn

from ser_ros.core.features import Normalizer
from ser_ros.core.model import MaskBitsDropout, StatisticsPooling
from ser_ros.core.threads import limit_cpu_threads
from ser_ros.data.registry import load_corpus
from ser_ros.training.augment import AugmentConfig, CopyNoise
from ser_ros.training.experiment import load_experiment
from ser_ros.training.feature_cache import cached_features
from ser_ros.training.fit import FitSettings, fit, predict_logits
from ser_ros.training.metrics import evaluate_predictions
from ser_ros.training.noisy_copies import noisy_copies
from ser_ros.training.run import build_front_end, split_corpus
from ser_ros.training.vad_cuts import VadCutter, emotion_node_trailing_silence, vad_node_config

head, lr = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 1e-3
protocol = sys.argv[3] if len(sys.argv) > 3 else 'paper'
limit_cpu_threads(1)
overrides = ['training.augment.noise_probability=0.5', 'training.augment.vad_cut_probability=0.5']
if protocol != 'paper':
    overrides += ['protocol.name=speaker', f'protocol.fold={protocol}']
exp = load_experiment('config/train_ravdess_whisper.yaml', overrides)
corpus = load_corpus(exp.data.corpus, '../shared/data/ravdess-16k', exp.data.classes)
split = split_corpus(corpus, exp)
fe = build_front_end(exp)
cache = '.cache/features'
raw = cached_features(corpus.paths, fe, cache, 0, False)
norm = Normalizer.fit(raw[split.train])
x = torch.from_numpy(norm(raw))
y = torch.from_numpy(corpus.targets)
aug = AugmentConfig.from_dict(exp.training.augment)
train_paths = [corpus.paths[i] for i in split.train]
copies = noisy_copies(train_paths, aug.noise_copies, exp.training.seed, aug.noise_snr_min_db,
                      aug.noise_snr_max_db, fe.audio.sample_rate)
noise = CopyNoise(torch.stack([torch.from_numpy(norm(cached_features(
    train_paths, fe, cache, 0, False, transform=c))) for c in copies]))
cutter = VadCutter(vad_node_config(), emotion_node_trailing_silence())
cuts = torch.from_numpy(norm(cached_features(corpus.paths, fe, cache, 0, False, transform=cutter)))


class Attentive(nn.Module):
    """Bahdanau-style scores over frames -> weighted mean and std."""

    def __init__(self, features: int, units: int = 64) -> None:
        super().__init__()
        self.project = nn.Linear(features, units)
        self.score = nn.Linear(units, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, T) -> (B, 2F)."""
        frames = x.transpose(1, 2)
        w = torch.softmax(self.score(torch.tanh(self.project(frames))).squeeze(-1), dim=1)
        mean = torch.bmm(w.unsqueeze(1), frames).squeeze(1)
        var = torch.bmm(w.unsqueeze(1), frames ** 2).squeeze(1) - mean ** 2
        return torch.cat((mean, var.clamp_min(1e-6).sqrt()), dim=1)


F = x.shape[1]
pool = {'pooled': StatisticsPooling, 'mlp': StatisticsPooling, 'bn': StatisticsPooling,
        'bnmlp': StatisticsPooling, 'attbn': lambda: Attentive(F),
        'att': lambda: Attentive(F), 'attmlp': lambda: Attentive(F)}[head]()
if head in ('bn', 'bnmlp', 'attbn'):
    pool = nn.Sequential(pool, nn.BatchNorm1d(2 * F))
if head in ('mlp', 'attmlp', 'bnmlp'):
    classifier = nn.Sequential(MaskBitsDropout(0.2), nn.Linear(2 * F, 256), nn.ReLU(),
                               MaskBitsDropout(0.2), nn.Linear(256, 7))
else:
    classifier = nn.Sequential(MaskBitsDropout(0.2), nn.Linear(2 * F, 7))
torch.manual_seed(42)
model = nn.Sequential(pool, classifier)
settings = FitSettings.from_training(exp.training, device=torch.device('cpu'), bf16=True,
                                     fingerprint='probe')
settings = replace(settings, learning_rate=lr)
res = fit(model, (x[split.train], y[split.train]), (x[split.validation], y[split.validation]),
          settings, progress=False, noise=noise, train_cuts=cuts[split.train])
out = {'head': head, 'lr': lr, 'protocol': protocol, 'best_epoch': res.best_epoch,
       'epochs_run': res.epochs_run, 'params': sum(p.numel() for p in model.parameters())}
for name, data in (('val', x), ('val_cut', cuts)):
    logits = predict_logits(model, data[split.validation], torch.device('cpu'), True)
    r = evaluate_predictions(y[split.validation].numpy(), logits.argmax(1).numpy(), corpus.labels)
    out[name + '_ua'], out[name + '_wa'] = round(r.ua, 4), round(r.wa, 4)
print(json.dumps(out))
