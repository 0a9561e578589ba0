"""Load a corpus by name: the one place that maps corpus names to loaders."""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from pathlib import Path

from ser_ros.data.corpus import Corpus
from ser_ros.data.folders import load_folders
from ser_ros.data.iemocap import load_iemocap
from ser_ros.data.ravdess import load_ravdess

LOADERS: dict[str, Callable[..., Corpus]] = {
    'ravdess': load_ravdess,
    'iemocap': load_iemocap,
    'folders': load_folders,
}
CORPORA = tuple(LOADERS)


def load_corpus(name: str, root: str | PathLike[str], classes: int | None = None,
                strict: bool = True) -> Corpus:
    """Load corpus ``name`` from ``root`` with ``classes`` classes (None: the corpus default).

    ``strict=False`` (RAVDESS only) skips malformed file names with a warning.
    """
    if name not in LOADERS:
        raise ValueError(f'unknown corpus {name!r}; known corpora are {sorted(LOADERS)}')
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f'{name} data folder {root} does not exist (relative paths start at '
                         f'{Path.cwd()}); pass where the corpus is (ser_train: data.root=PATH)')
    options: dict[str, object] = {} if classes is None else {'classes': classes}
    if not strict:
        if name != 'ravdess':
            raise ValueError('skipping malformed files applies to ravdess only')
        options['strict'] = False
    return LOADERS[name](root, **options)
