"""Fixtures of the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

SMALL_CORPUS_ACTORS = ('Actor_01', 'Actor_02')


@pytest.fixture(scope='module')
def small_corpus(ravdess_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two actors of RAVDESS in the official layout (links), for short end-to-end runs."""
    root = tmp_path_factory.mktemp('ravdess-small')
    for actor in SMALL_CORPUS_ACTORS:
        (root / actor).symlink_to(ravdess_dir / actor, target_is_directory=True)
    return root
