"""Classification metrics with the paper's names: WA, UA, per-class recall, confusion matrix.

Naming follows the paper (section III, "Performance Evaluation") and most SER literature:

- **WA, weighted accuracy**: per-class recall weighted by the class frequency, summed over
  classes. That sum is exactly correct / total, i.e. plain overall accuracy; the "weighting"
  means that large classes count more.
- **UA, unweighted accuracy**: the plain mean of the per-class recalls (what scikit-learn calls
  balanced accuracy / macro recall), so every class counts the same whatever its size.

UA averages only over classes that occur in ``y_true``: the recall of a class with no test
utterances is undefined, so it is left out of ``per_class_recall`` and of the mean rather than
counted as 0. The confusion matrix always has one row and column per label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

PERCENT = 100.0


@dataclass(frozen=True)
class EvaluationReport:
    """Result of one evaluation: WA, UA, per-class recall and the confusion matrix.

    ``confusion[i][j]`` counts utterances of true label ``labels[i]`` predicted as
    ``labels[j]`` (rows = truth, columns = prediction, both in label order).
    """

    wa: float
    ua: float
    per_class_recall: dict[str, float]
    confusion: list[list[int]]
    labels: list[str]
    n: int

    @property
    def support(self) -> dict[str, int]:
        """Number of true utterances per label (the confusion matrix row sums)."""
        return {label: int(sum(row)) for label, row in zip(self.labels, self.confusion,
                                                            strict=True)}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary (fractions in [0, 1], counts as integers)."""
        return {
            'wa': self.wa,
            'ua': self.ua,
            'per_class_recall': dict(self.per_class_recall),
            'support': self.support,
            'confusion': [list(row) for row in self.confusion],
            'labels': list(self.labels),
            'n': self.n,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationReport:
        """Rebuild from :meth:`to_dict` output (extra keys such as ``support`` are ignored)."""
        missing = [key for key in ('wa', 'ua', 'per_class_recall', 'confusion', 'labels', 'n')
                   if key not in data]
        if missing:
            raise ValueError(f'EvaluationReport: missing keys {missing}')
        return cls(
            wa=float(data['wa']),
            ua=float(data['ua']),
            per_class_recall={str(k): float(v) for k, v in data['per_class_recall'].items()},
            confusion=[[int(value) for value in row] for row in data['confusion']],
            labels=[str(label) for label in data['labels']],
            n=int(data['n']),
        )

    def summary(self) -> str:
        """One line for logs: WA, UA and the number of utterances, in percent."""
        return f'WA {PERCENT * self.wa:.1f}%  UA {PERCENT * self.ua:.1f}%  (n={self.n})'


def _as_label_ids(values: Sequence[int], name: str, num_labels: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f'{name} must be a 1-D sequence of label ids, got shape {array.shape}')
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f'{name} must hold integer label ids, got dtype {array.dtype}')
    if array.size and (array.min() < 0 or array.max() >= num_labels):
        raise ValueError(
            f'{name} holds label ids outside 0..{num_labels - 1} '
            f'(min {array.min()}, max {array.max()}) for {num_labels} labels'
        )
    return array.astype(np.int64)


def evaluate_predictions(y_true: Sequence[int], y_pred: Sequence[int],
                         labels: Sequence[str]) -> EvaluationReport:
    """Compute WA, UA, per-class recall and the confusion matrix from label ids.

    ``y_true`` and ``y_pred`` are indices into ``labels``; both must have the same, non-zero
    length.
    """
    labels = [str(label) for label in labels]
    if len(labels) < 1 or not all(labels):
        raise ValueError(f'labels must be a non-empty list of non-empty names, got {labels}')
    if len(set(labels)) != len(labels):
        raise ValueError(f'labels must be unique, got {labels}')
    truth = _as_label_ids(y_true, 'y_true', len(labels))
    predicted = _as_label_ids(y_pred, 'y_pred', len(labels))
    if truth.size != predicted.size:
        raise ValueError(
            f'y_true and y_pred differ in length ({truth.size} vs {predicted.size})'
        )
    if truth.size == 0:
        raise ValueError('cannot evaluate an empty set of predictions')
    ids = list(range(len(labels)))
    matrix = confusion_matrix(truth, predicted, labels=ids)
    present = [index for index in ids if matrix[index].sum() > 0]
    recalls = recall_score(truth, predicted, labels=present, average=None, zero_division=0)
    per_class = {labels[index]: float(value) for index, value in zip(present, recalls,
                                                                      strict=True)}
    return EvaluationReport(
        wa=float(accuracy_score(truth, predicted)),
        ua=float(np.mean(recalls)),
        per_class_recall=per_class,
        confusion=matrix.astype(int).tolist(),
        labels=labels,
        n=int(truth.size),
    )


def row_normalised_percent(confusion: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    """Confusion matrix with each row scaled to percent of its true class (rows sum to 100).

    Rows of classes absent from the data (all zeros) stay zero instead of becoming NaN.
    """
    matrix = np.asarray(confusion, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f'confusion must be a square matrix, got shape {matrix.shape}')
    if (matrix < 0).any():
        raise ValueError('confusion must hold non-negative counts')
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(PERCENT * matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
