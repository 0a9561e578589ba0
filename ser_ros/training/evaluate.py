"""Evaluate a checkpoint or an ensemble on a corpus: own front ends and labels, any subset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ser_ros.core.ensemble import Model, members_of
from ser_ros.core.features import FrontEnd
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


def evaluate_checkpoint(checkpoint: Model, corpus: Corpus,
                        indices: Sequence[int] | None = None, device: torch.device | None = None,
                        bf16: bool = False, cache_dir: str | None = None, jobs: int = 0,
                        progress: bool = False, model: SerNet | None = None) -> Evaluation:
    """WA, UA, per-class recall and confusion of ``checkpoint`` on ``corpus`` (or a subset).

    An ensemble predicts the label of its members' mean probabilities; its ``features`` are
    its first member's. ``model``: a network already built from a single checkpoint.
    """
    chosen = np.arange(len(corpus)) if indices is None else np.asarray(indices, dtype=np.int64)
    if chosen.size == 0:
        raise ValueError('nothing to evaluate: the selection of utterances is empty')
    members = members_of(checkpoint)
    if model is not None and len(members) > 1:
        raise ValueError('a prebuilt network can only stand for a single checkpoint')
    targets = label_ids(corpus, checkpoint.labels)[chosen]
    device = device or torch.device('cpu')
    probabilities = []
    extracted: list[tuple[FrontEnd, np.ndarray]] = []   # members with equal front ends share
    for member in members:
        front_end = member.front_end().with_encoder_device(str(device))
        features = next((done for earlier, done in extracted if earlier == front_end), None)
        if features is None:
            raw = cached_features([corpus[i].path for i in chosen],
                                  front_end.with_normalizer(None), cache_dir, jobs, progress)
            features = raw if front_end.normalizer is None else front_end.normalizer(raw)
            extracted.append((front_end, features))
        network = member.build_model() if model is None else model
        logits = predict_logits(network.to(device), torch.from_numpy(features), device, bf16)
        probabilities.append(torch.softmax(logits, dim=1))
    predictions = torch.stack(probabilities).mean(dim=0).argmax(dim=1).numpy()
    report = evaluate_predictions(targets, predictions, checkpoint.labels)
    return Evaluation(report, targets, predictions, extracted[0][1])
