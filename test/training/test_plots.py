"""Confusion-matrix and t-SNE figures: real PNG files, one colour and marker per class."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from ser_ros.training.metrics import evaluate_predictions
from ser_ros.training.plots import (
    MARKERS,
    draw_confusion,
    draw_tsne,
    plot_confusion,
    plot_tsne,
    plot_tsne_pair,
    tsne_coordinates,
)
from ser_ros.training.report import markdown_table, write_report

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
MIN_PIXELS, MAX_PIXELS = 300, 3000
MIN_PNG_BYTES = 5_000
LABELS = ['neutral', 'happy', 'sad', 'angry']


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f'{path} is not a PNG'
    assert data[12:16] == b'IHDR'
    return struct.unpack('>II', data[16:24])


def assert_reasonable_png(path: Path) -> None:
    assert path.is_file()
    assert path.stat().st_size > MIN_PNG_BYTES
    width, height = png_size(path)
    assert MIN_PIXELS <= width <= MAX_PIXELS
    assert MIN_PIXELS <= height <= MAX_PIXELS


def clustered_points(per_class: int, num_classes: int, dims: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(num_classes), per_class)
    centres = rng.normal(scale=10.0, size=(num_classes, dims))
    return centres[ids] + rng.normal(size=(ids.size, dims)), ids


@pytest.fixture
def report():
    return evaluate_predictions([0, 0, 1, 1, 2, 2, 3, 3, 3], [0, 1, 1, 1, 2, 0, 3, 3, 2], LABELS)


def test_confusion_png(tmp_path: Path, report) -> None:
    path = plot_confusion(report, tmp_path / 'sub' / 'confusion.png', title='RAVDESS')
    assert path == tmp_path / 'sub' / 'confusion.png'
    assert_reasonable_png(path)


def test_confusion_figure_shows_row_percent_on_labelled_axes(report) -> None:
    figure = draw_confusion(report)
    axes = figure.axes[0]
    texts = [text.get_text() for text in axes.texts]
    assert len(texts) == len(LABELS) ** 2
    # Row 'neutral': 1 of 2 right, 1 predicted 'happy'; row 'angry': 2 of 3 right.
    assert texts[0:2] == ['50.0', '50.0']
    assert texts[-1] == '66.7'
    assert [tick.get_text() for tick in axes.get_xticklabels()] == LABELS
    assert [tick.get_text() for tick in axes.get_yticklabels()] == LABELS
    assert axes.get_ylabel() == 'True label'
    assert 'WA' in axes.get_title() and 'UA' in axes.get_title()


def test_tsne_with_few_points_clamps_perplexity(tmp_path: Path) -> None:
    points, ids = clustered_points(per_class=2, num_classes=2, dims=20)
    coordinates = tsne_coordinates(points, seed=0)
    assert coordinates.shape == (4, 2)
    assert np.isfinite(coordinates).all()
    path = plot_tsne(points, ids, ['a', 'b'], tmp_path / 'tsne.png', 'few points')
    assert_reasonable_png(path)


def test_tsne_is_reproducible_with_a_seed() -> None:
    points, _ = clustered_points(per_class=6, num_classes=3, dims=80)
    np.testing.assert_allclose(tsne_coordinates(points, seed=3), tsne_coordinates(points, seed=3))


def test_tsne_figure_has_one_marker_and_colour_per_class() -> None:
    labels = ['neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised']
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(len(labels)), 3)
    figure = draw_tsne(rng.normal(size=(ids.size, 2)), ids, labels, 'eight classes')
    axes = figure.axes[0]
    collections = axes.collections
    assert len(collections) == len(labels)
    legend = axes.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == labels
    assert len(legend.legend_handles) == len(labels)
    for first, second in combinations(collections, 2):
        first_path, second_path = first.get_paths()[0], second.get_paths()[0]
        same_marker = (first_path.vertices.shape == second_path.vertices.shape
                       and np.allclose(first_path.vertices, second_path.vertices))
        assert not same_marker
        assert not np.allclose(first.get_facecolor()[0], second.get_facecolor()[0])
    assert all(len(c.get_offsets()) == 3 for c in collections)


def test_tsne_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='at least 3 points'):
        tsne_coordinates(np.zeros((2, 5)))
    with pytest.raises(ValueError, match='N = 3'):
        plot_tsne(np.zeros((4, 5)), [0, 1, 0], ['a', 'b'], tmp_path / 'x.png', 'x')
    with pytest.raises(ValueError, match='distinct markers'):
        draw_tsne(np.zeros((1, 2)), [0], [f'c{i}' for i in range(len(MARKERS) + 1)], 'x')
    with pytest.raises(ValueError, match='NaN'):
        tsne_coordinates(np.full((4, 3), np.nan))


def test_tsne_pair_flattens_feature_matrices(tmp_path: Path) -> None:
    features, ids = clustered_points(per_class=4, num_classes=3, dims=8 * 10)
    embeddings, _ = clustered_points(per_class=4, num_classes=3, dims=16, seed=1)
    paths = plot_tsne_pair(features.reshape(-1, 8, 10), embeddings, ids, ['a', 'b', 'c'],
                           tmp_path / 'features.png', tmp_path / 'embeddings.png')
    assert paths == (tmp_path / 'features.png', tmp_path / 'embeddings.png')
    for path in paths:
        assert_reasonable_png(path)


def test_write_report_writes_json_and_png(tmp_path: Path, report) -> None:
    json_path, png_path = write_report(report, tmp_path / 'out', stem='val',
                                       extra={'model': 'm.pt'})
    assert json_path.name == 'val_report.json' and png_path.name == 'val_confusion.png'
    data = json.loads(json_path.read_text())
    assert data['model'] == 'm.pt'
    assert data['n'] == report.n == sum(map(sum, data['confusion']))
    assert data['wa'] == pytest.approx(report.wa)
    assert_reasonable_png(png_path)
    with pytest.raises(ValueError, match='overwrite'):
        write_report(report, tmp_path, extra={'wa': 1.0})


def test_markdown_table() -> None:
    table = markdown_table(
        [{'model': 'full', 'WA ours': 78.26, 'WA paper': 80.0},
         ['blstm', 61.0, None],
         {'model': 'a|b', 'WA ours': 50.0}],
        ['model', 'WA ours', 'WA paper'],
    )
    assert table.splitlines() == [
        '| model | WA ours | WA paper |',
        '|---|---:|---:|',
        '| full | 78.3 | 80.0 |',
        '| blstm | 61.0 | - |',
        r'| a\|b | 50.0 | - |',
    ]
    with pytest.raises(ValueError, match='not columns'):
        markdown_table([{'other': 1}], ['model'])
    with pytest.raises(ValueError, match='2 values for 3 columns'):
        markdown_table([[1, 2]], ['a', 'b', 'c'])


def test_plotting_leaves_pyplot_and_the_backend_alone(tmp_path: Path) -> None:
    script = (
        'import sys, matplotlib\n'
        # Raw rcParams value: matplotlib.get_backend() itself may import pyplot.
        'before = dict.__getitem__(matplotlib.rcParams, "backend")\n'
        'from ser_ros.training.metrics import evaluate_predictions\n'
        'from ser_ros.training.plots import plot_confusion\n'
        f'plot_confusion(evaluate_predictions([0, 1], [0, 0], ["a", "b"]), {str(tmp_path)!r}'
        ' + "/c.png")\n'
        'assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"\n'
        'assert dict.__getitem__(matplotlib.rcParams, "backend") == before, "changed"\n'
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, '-c', script], cwd=root, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
