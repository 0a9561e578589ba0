"""Figures of the paper: row-normalised confusion matrices (Fig. 2/3) and t-SNE maps (Fig. 4).

Figures are built on :class:`matplotlib.figure.Figure` with an explicit Agg canvas instead of
``pyplot``: no GUI backend is chosen, no global backend switch happens and no figure is kept
alive in a global registry, so plotting works headless (robot, CI) and never leaks memory.
The ``draw_*`` functions return the figure (for inspection); the ``plot_*`` functions write PNGs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from ser_ros.training.metrics import EvaluationReport, row_normalised_percent

DPI = 150
CONFUSION_CELL_INCHES = 0.8
CONFUSION_MIN_INCHES = 4.0
CONFUSION_COLORMAP = 'Blues'
# Cell text switches to white above this fraction of the colour scale, to stay readable.
DARK_CELL_FRACTION = 0.5
TSNE_FIGURE_INCHES = (6.0, 5.0)
TSNE_MARKER_SIZE = 18
TSNE_ALPHA = 0.8
TSNE_PERPLEXITY = 30.0
# t-SNE on raw spectrograms (128 x 626 values) is slow and noisy; the usual practice (van der
# Maaten & Hinton) is a PCA to ~50 dimensions first.
TSNE_PCA_COMPONENTS = 50
MIN_TSNE_POINTS = 3
# One colour and one marker per emotion, as in the paper's Fig. 4.
TSNE_COLORMAP = 'tab10'
MARKERS = ('o', 's', '^', 'D', 'v', 'P', 'X', '*', '<', '>', 'h', 'p')
MAX_TSNE_CLASSES = len(MARKERS)


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Write a figure as PNG (creating the folder) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    canvas.print_png(str(target))
    return target


def draw_confusion(report: EvaluationReport, title: str | None = None) -> Figure:
    """Row-normalised confusion matrix in percent, every cell annotated (paper Fig. 2/3)."""
    percent = row_normalised_percent(report.confusion)
    size = max(CONFUSION_MIN_INCHES, CONFUSION_CELL_INCHES * len(report.labels) + 2.0)
    figure = Figure(figsize=(size + 1.0, size), dpi=DPI, layout='constrained')
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(percent, cmap=CONFUSION_COLORMAP, vmin=0.0, vmax=100.0)
    figure.colorbar(image, ax=axes, label='% of true class')
    ticks = np.arange(len(report.labels))
    axes.set_xticks(ticks, report.labels, rotation=45, ha='right')
    axes.set_yticks(ticks, report.labels)
    axes.set_xlabel('Predicted label')
    axes.set_ylabel('True label')
    for row, column in np.ndindex(percent.shape):
        value = percent[row, column]
        colour = 'white' if value > DARK_CELL_FRACTION * 100.0 else 'black'
        axes.text(column, row, f'{value:.1f}', ha='center', va='center', color=colour,
                  fontsize='small')
    axes.set_title(title if title is not None else report.summary())
    return figure


def plot_confusion(report: EvaluationReport, path: str | os.PathLike[str],
                   title: str | None = None) -> Path:
    """Write the row-normalised confusion matrix of ``report`` as a PNG."""
    return save_figure(draw_confusion(report, title), path)


def tsne_coordinates(points: np.ndarray, seed: int = 0) -> np.ndarray:
    """Map (N, D) points to 2-D with t-SNE (PCA to at most 50 dimensions first).

    Perplexity must stay below N; it is clamped to N - 1 for small sets, so a few utterances
    still give a (less meaningful) map instead of an error.
    """
    data = np.asarray(points, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f't-SNE points must be a 2-D array (N, D), got shape {data.shape}')
    count = data.shape[0]
    if count < MIN_TSNE_POINTS:
        raise ValueError(f't-SNE needs at least {MIN_TSNE_POINTS} points, got {count}')
    if not np.isfinite(data).all():
        raise ValueError('t-SNE points hold NaN or infinite values')
    components = min(TSNE_PCA_COMPONENTS, count, data.shape[1])
    if data.shape[1] > components:
        data = PCA(n_components=components, random_state=seed).fit_transform(data)
    perplexity = min(TSNE_PERPLEXITY, float(count - 1))
    tsne = TSNE(n_components=2, perplexity=perplexity, init='pca', learning_rate='auto',
                random_state=seed)
    return tsne.fit_transform(data)


def draw_tsne(coordinates: np.ndarray, label_ids: Sequence[int], labels: Sequence[str],
              title: str) -> Figure:
    """Scatter 2-D points with one colour and one marker per label, and a legend."""
    coords = np.asarray(coordinates)
    ids = np.asarray(label_ids)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f't-SNE coordinates must have shape (N, 2), got {coords.shape}')
    if ids.shape != (coords.shape[0],):
        raise ValueError(
            f'label_ids must have one id per point ({coords.shape[0]}), got shape {ids.shape}'
        )
    if len(labels) > MAX_TSNE_CLASSES:
        raise ValueError(
            f'at most {MAX_TSNE_CLASSES} classes can get distinct markers, got {len(labels)}'
        )
    if ids.size and (ids.min() < 0 or ids.max() >= len(labels)):
        raise ValueError(f'label_ids must be in 0..{len(labels) - 1}, got {sorted(set(ids))}')
    figure = Figure(figsize=TSNE_FIGURE_INCHES, dpi=DPI, layout='constrained')
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    palette = _palette(len(labels))
    for index, label in enumerate(labels):
        chosen = ids == index
        if not chosen.any():
            continue
        axes.scatter(coords[chosen, 0], coords[chosen, 1], s=TSNE_MARKER_SIZE,
                     marker=MARKERS[index], color=palette[index], alpha=TSNE_ALPHA, label=label)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title)
    axes.legend(loc='best', fontsize='small', markerscale=1.5)
    return figure


def _palette(count: int) -> list[tuple[float, float, float, float]]:
    cmap = colormaps[TSNE_COLORMAP]
    return [cmap(index % cmap.N) for index in range(count)]


def plot_tsne(points: np.ndarray, label_ids: Sequence[int], labels: Sequence[str],
              path: str | os.PathLike[str], title: str, seed: int = 0) -> Path:
    """Write a 2-D t-SNE map of (N, D) points, coloured and marked by label (paper Fig. 4)."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[0] != len(label_ids):
        raise ValueError(
            f'points must have shape (N, D) with N = {len(label_ids)} label ids, '
            f'got {points.shape}'
        )
    coordinates = tsne_coordinates(points, seed)
    return save_figure(draw_tsne(coordinates, label_ids, labels, title), path)


def plot_tsne_pair(features: np.ndarray, embeddings: np.ndarray, label_ids: Sequence[int],
                   labels: Sequence[str], path_features: str | os.PathLike[str],
                   path_embeddings: str | os.PathLike[str], seed: int = 0) -> tuple[Path, Path]:
    """Write the paper's pair of t-SNE maps: input features vs network output (Fig. 4).

    ``features`` may be (N, F, T) matrices; each is flattened to one vector per utterance.
    """
    features = np.asarray(features)
    embeddings = np.asarray(embeddings)
    flat_features = features.reshape(features.shape[0], -1)
    flat_embeddings = embeddings.reshape(embeddings.shape[0], -1)
    return (
        plot_tsne(flat_features, label_ids, labels, path_features, 't-SNE: input features',
                  seed),
        plot_tsne(flat_embeddings, label_ids, labels, path_embeddings,
                  't-SNE: network output', seed),
    )
