"""Training-epoch time of the paper configuration on this machine (issue target: <= 45 s).

Times optimiser steps (batch 16, Adam, cross-entropy) of the network in
``config/train_ravdess.yaml`` on real RAVDESS features and scales the median step to one epoch
of 960 utterances (the paper's 80% of 1,200 files here). fp32 and bf16 autocast side by side,
and the reference per-window convolution (``shared_blocks=0``) next to the shipped setting.

Like ``ser_train`` on CPU it first asks glibc to keep freed memory mapped
(``ser_ros.core.heap``); ``--heap default`` shows the cost of the page faults without that.

    .venv/bin/python bench/train_epoch.py [--steps 8] [--heap default] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ser_ros.core.heap import retain_freed_memory
from ser_ros.core.inference import bf16_supported
from ser_ros.core.model import ModelConfig, SerNet
from ser_ros.data.registry import load_corpus
from ser_ros.training.augment import AugmentConfig, augment_batch
from ser_ros.training.experiment import load_experiment
from ser_ros.training.fit import autocast_context
from ser_ros.training.run import build_front_end

REPO = Path(__file__).resolve().parents[1]
EPOCH_UTTERANCES = 960


def _batch_features(experiment, count: int) -> torch.Tensor:
    corpus = load_corpus(experiment.data.corpus, REPO / experiment.data.root,
                         experiment.data.classes)
    front_end = build_front_end(experiment)
    rows = [front_end.extract_file(corpus[i].path, normalize=False) for i in range(count)]
    array = np.stack(rows)
    return torch.from_numpy((array - array.mean()) / array.std())


def time_steps(config: ModelConfig, features: torch.Tensor, bf16: bool, steps: int,
               batch_size: int, augment: AugmentConfig) -> list[float]:
    """Seconds per optimiser step (after one warm-up step)."""
    torch.manual_seed(0)
    model = SerNet(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    targets = torch.randint(0, config.num_classes, (batch_size,))
    generator = torch.Generator().manual_seed(0)
    device = torch.device('cpu')
    times = []
    for step in range(steps + 1):
        started = time.perf_counter()
        batch = augment_batch(features[:batch_size], augment, generator)
        with autocast_context(device, bf16):
            logits = model(batch)
        loss = torch.nn.functional.cross_entropy(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    """Print one JSON object and a short table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=str(REPO / 'config' / 'train_ravdess.yaml'))
    parser.add_argument('--steps', type=int, default=6)
    parser.add_argument('--heap', choices=('retain', 'default'), default='retain',
                        help="retain: keep freed memory mapped, as ser_train does on CPU; "
                             "default: glibc's own thresholds")
    parser.add_argument('--quick', action='store_true', help='2 steps: checks it runs')
    args = parser.parse_args()
    steps = 2 if args.quick else args.steps
    heap_retained = args.heap == 'retain' and retain_freed_memory()
    experiment = load_experiment(args.config)
    batch_size = experiment.training.batch_size
    features = _batch_features(experiment, batch_size)
    num_features, num_frames = features.shape[1:]
    shipped = ModelConfig(num_classes=experiment.data.classes, num_features=num_features,
                          num_frames=num_frames, **experiment.model)
    augment = AugmentConfig.from_dict(experiment.training.augment)
    variants = {'shipped': shipped, 'per-window (shared_blocks=0)': replace(shipped,
                                                                            shared_blocks=0)}
    precisions = [False, True] if bf16_supported(torch.device('cpu')) else [False]
    results = []
    for name, config in variants.items():
        for bf16 in precisions:
            times = time_steps(config, features, bf16, steps, batch_size, augment)
            step = statistics.median(times)
            results.append({'model': name, 'precision': 'bf16' if bf16 else 'fp32',
                            'step_s': round(step, 3),
                            'epoch_s': round(step * EPOCH_UTTERANCES / batch_size, 1)})
    print(json.dumps({'benchmark': 'train_epoch', 'epoch_utterances': EPOCH_UTTERANCES,
                      'batch_size': batch_size, 'steps': steps,
                      'threads': torch.get_num_threads(), 'torch': torch.__version__,
                      'heap_retained': heap_retained,
                      'results': results}))
    print(f'\n{"model":32} {"precision":9} {"step s":>7} {"epoch s":>8}')
    for row in results:
        print(f'{row["model"]:32} {row["precision"]:9} {row["step_s"]:7.3f} {row["epoch_s"]:8.1f}')


if __name__ == '__main__':
    main()
