"""Load a corpus by name: the one place that maps corpus names to loaders."""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from pathlib import Path

from ser_ros.data.corpus import Corpus
from ser_ros.data.iemocap import load_iemocap
from ser_ros.data.ravdess import load_ravdess

LOADERS: dict[str, Callable[..., Corpus]] = {
    'ravdess': load_ravdess,
    'iemocap': load_iemocap,
}


def load_corpus(name: str, root: str | PathLike[str], classes: int | None = None) -> Corpus:
    """Load corpus ``name`` from ``root`` with ``classes`` classes (None: the corpus default)."""
    if name not in LOADERS:
        raise ValueError(f'unknown corpus {name!r}; known corpora are {sorted(LOADERS)}')
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f'{name} data folder {root} does not exist (resolved from '
                         f'{Path.cwd()}); pass the corpus location, e.g. data.root=/path')
    return LOADERS[name](root) if classes is None else LOADERS[name](root, classes)
