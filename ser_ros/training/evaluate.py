"""Evaluate a checkpoint on a corpus: its own front end, its own labels, any subset of files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ser_ros.core.checkpoint import Checkpoint
from ser_ros.core.model import SerNet
from ser_ros.data.corpus import Corpus
from ser_ros.training.feature_cache import cached_features
from ser_ros.training.fit import predict_logits
from ser_ros.training.metrics import EvaluationReport, evaluate_predictions


@dataclass(frozen=True)
class Evaluation:
    """Metrics plus what they were computed from (for t-SNE or error analysis)."""

    report: EvaluationReport
    targets: np.ndarray
    predictions: np.ndarray
    features: np.ndarray


def label_ids(corpus: Corpus, labels: Sequence[str]) -> np.ndarray:
    """Class index of each utterance in the checkpoint's label order; refuses unknown labels."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({item.label for item in corpus} - set(index))
    if unknown:
        raise ValueError(f'{corpus.name} labels {unknown} are not among the model labels '
                         f'{list(labels)}')
    return np.asarray([index[item.label] for item in corpus], dtype=np.int64)


def evaluate_checkpoint(checkpoint: Checkpoint, corpus: Corpus,
                        indices: Sequence[int] | None = None, device: torch.device | None = None,
                        bf16: bool = False, cache_dir: str | None = None, jobs: int = 0,
                        progress: bool = False, model: SerNet | None = None) -> Evaluation:
    """WA, UA, per-class recall and confusion of ``checkpoint`` on ``corpus`` (or a subset)."""
    chosen = np.arange(len(corpus)) if indices is None else np.asarray(indices, dtype=np.int64)
    if chosen.size == 0:
        raise ValueError('nothing to evaluate: the selection of utterances is empty')
    targets = label_ids(corpus, checkpoint.labels)[chosen]
    front_end = checkpoint.front_end()
    raw = cached_features([corpus[i].path for i in chosen], front_end.with_normalizer(None),
                          cache_dir, jobs, progress)
    features = raw if front_end.normalizer is None else front_end.normalizer(raw)
    network = checkpoint.build_model() if model is None else model
    device = device or torch.device('cpu')
    logits = predict_logits(network.to(device), torch.from_numpy(features), device, bf16)
    predictions = logits.argmax(dim=1).numpy()
    report = evaluate_predictions(targets, predictions, checkpoint.labels)
    return Evaluation(report, targets, predictions, features)
