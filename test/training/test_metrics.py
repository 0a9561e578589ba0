"""WA / UA, per-class recall and confusion matrices of ser_ros.training.metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ser_ros.training.metrics import (
    EvaluationReport,
    evaluate_predictions,
    row_normalised_percent,
)

LABELS = ['neutral', 'happy', 'sad']


def predictions_from_counts(counts: list[list[int]]) -> tuple[list[int], list[int]]:
    """Expand a count matrix (rows = truth, columns = prediction) into label-id lists."""
    y_true, y_pred = [], []
    for truth, row in enumerate(counts):
        for predicted, count in enumerate(row):
            y_true += [truth] * count
            y_pred += [predicted] * count
    return y_true, y_pred


def test_wa_and_ua_differ_on_imbalanced_data() -> None:
    # 'neutral' is big and well recognised, the two small classes are mostly missed.
    counts = [[18, 1, 1],
              [3, 1, 0],
              [2, 0, 2]]
    y_true, y_pred = predictions_from_counts(counts)
    totals = [sum(row) for row in counts]
    correct = [counts[k][k] for k in range(3)]
    expected_wa = sum(correct) / sum(totals)
    expected_recalls = [c / t for c, t in zip(correct, totals, strict=True)]
    expected_ua = sum(expected_recalls) / len(expected_recalls)

    report = evaluate_predictions(y_true, y_pred, LABELS)

    assert report.wa == pytest.approx(expected_wa)
    assert report.ua == pytest.approx(expected_ua)
    assert abs(report.wa - report.ua) > 0.1
    assert report.per_class_recall == pytest.approx(dict(zip(LABELS, expected_recalls,
                                                             strict=True)))
    assert report.confusion == counts
    assert report.n == sum(totals)
    assert report.support == dict(zip(LABELS, totals, strict=True))


def test_wa_is_frequency_weighted_recall_as_the_paper_defines_it() -> None:
    counts = [[5, 2, 0], [1, 9, 3], [0, 4, 1]]
    report = evaluate_predictions(*predictions_from_counts(counts), LABELS)
    total = sum(map(sum, counts))
    weighted = sum(report.per_class_recall[label] * sum(counts[k]) / total
                   for k, label in enumerate(LABELS))
    assert report.wa == pytest.approx(weighted)


def test_paper_confusion_reproduces_reported_wa_and_ua() -> None:
    # Per-class support and recall read from the authors' RAVDESS confusion matrix (see
    # /work/shared/docs/paper-reference-notes.md): 79.9 % WA, 80.4 % mean recall.
    support = [53, 34, 49, 41, 46, 33, 32]
    recall_percent = [83.0, 73.5, 67.3, 85.4, 78.3, 84.8, 90.6]
    labels = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised']
    y_true, y_pred = [], []
    for k, (count, recall) in enumerate(zip(support, recall_percent, strict=True)):
        hits = round(count * recall / 100)
        y_true += [k] * count
        # Misses go to the next class; where they go does not change WA or UA.
        y_pred += [k] * hits + [(k + 1) % len(labels)] * (count - hits)
    report = evaluate_predictions(y_true, y_pred, labels)
    assert report.n == 288
    assert 100 * report.wa == pytest.approx(79.9, abs=0.05)
    assert 100 * report.ua == pytest.approx(80.4, abs=0.05)


def test_confusion_rows_are_truth_columns_are_prediction() -> None:
    report = evaluate_predictions([0, 0, 0, 2], [1, 1, 1, 2], LABELS)
    assert report.confusion[0] == [0, 3, 0]
    assert [row[0] for row in report.confusion] == [0, 0, 0]
    assert report.confusion[2] == [0, 0, 1]
    assert report.per_class_recall['neutral'] == 0.0


def test_class_absent_from_truth_is_left_out_of_ua() -> None:
    # 'sad' never occurs in y_true but is predicted once.
    y_true = [0, 0, 1, 1]
    y_pred = [0, 2, 1, 1]
    report = evaluate_predictions(y_true, y_pred, LABELS)
    assert set(report.per_class_recall) == {'neutral', 'happy'}
    assert report.ua == pytest.approx((0.5 + 1.0) / 2)
    assert report.wa == pytest.approx(3 / 4)
    assert report.confusion[2] == [0, 0, 0]
    assert [row[2] for row in report.confusion] == [1, 0, 0]
    assert report.support['sad'] == 0
    percent = row_normalised_percent(report.confusion)
    assert np.isfinite(percent).all()
    np.testing.assert_allclose(percent[2], 0.0)


@pytest.mark.parametrize(('y_true', 'y_pred', 'labels', 'message'), [
    ([0, 1], [0], LABELS, 'differ in length'),
    ([0, 3], [0, 1], LABELS, 'outside 0..2'),
    ([0, 1], [0, -1], LABELS, 'outside 0..2'),
    ([0, 2], [0, 2], ['neutral', 'happy'], 'outside 0..1'),
    ([], [], LABELS, 'empty'),
    ([0, 1], [0, 1], ['a', 'a'], 'unique'),
    ([0.0, 1.0], [0, 1], LABELS, 'integer'),
])
def test_bad_input_is_refused(y_true: list, y_pred: list, labels: list[str],
                              message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_predictions(y_true, y_pred, labels)


def test_to_dict_is_json_and_round_trips() -> None:
    report = evaluate_predictions([0, 1, 2, 2, 1], [0, 2, 2, 1, 1], LABELS)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert {'wa', 'ua', 'per_class_recall', 'confusion', 'labels', 'n'} <= set(data)
    assert sum(map(sum, data['confusion'])) == data['n']
    assert EvaluationReport.from_dict(data) == report


def test_row_normalised_percent() -> None:
    percent = row_normalised_percent([[3, 1], [0, 4]])
    np.testing.assert_allclose(percent, [[75.0, 25.0], [0.0, 100.0]])
    with pytest.raises(ValueError, match='square'):
        row_normalised_percent([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match='non-negative'):
        row_normalised_percent([[1, -1], [0, 1]])


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=2, max_value=6).flatmap(
    lambda k: st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)),
                       min_size=1, max_size=60).map(lambda pairs: (k, pairs))))
def test_properties_hold_for_any_predictions(case: tuple[int, list[tuple[int, int]]]) -> None:
    num_labels, pairs = case
    labels = [f'c{k}' for k in range(num_labels)]
    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    report = evaluate_predictions(y_true, y_pred, labels)
    matrix = np.array(report.confusion)
    assert matrix.sum() == report.n == len(pairs)
    assert report.wa == pytest.approx(np.trace(matrix) / len(pairs))
    assert min(report.per_class_recall.values()) - 1e-12 <= report.ua
    assert report.ua <= max(report.per_class_recall.values()) + 1e-12
    assert set(report.per_class_recall) == {labels[t] for t in set(y_true)}
    np.testing.assert_allclose(row_normalised_percent(matrix)[matrix.sum(axis=1) > 0].sum(1),
                               100.0)
