"""Compute the front end's raw features for a list of files once, and keep them on disk.

Training reruns (ablations, folds, resumed runs) then skip audio decoding and STFTs. The cache
key covers the audio and feature configuration and each file's path, size and modification
time, so a changed file or setting never reuses stale features; for a pretrained encoder, its
device and precision too (features in float16 on a GPU are not the CPU's int8 ones). A
``transform`` changes the audio before its features are taken (e.g.
:class:`~ser_ros.training.vad_cuts.VadCutter`: what vad_node would cut from each file); its
description is part of the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from joblib import Parallel, delayed
from tqdm import tqdm

from ser_ros.core.audio import load_audio
from ser_ros.core.features import FrontEnd
from ser_ros.core.files import atomic_write


class WaveformTransform(Protocol):
    """Audio in, audio out, before the features: ``(samples, rate) -> (samples, rate)``."""

    name: str

    def __call__(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Return the changed audio and its rate."""

    def describe(self) -> dict[str, Any]:
        """Return what the change depends on (goes into the cache key)."""


def _file_identity(path: Path) -> list:
    status = path.stat()
    return [str(path.resolve()), status.st_size, status.st_mtime_ns]


def cache_key(paths: Sequence[Path], front_end: FrontEnd,
              transform: WaveformTransform | None = None) -> str:
    """Hash of everything the cached array depends on."""
    description = {
        'audio': front_end.audio.to_dict(),
        'features': front_end.features.to_dict(),
        'files': [_file_identity(Path(path)) for path in paths],
    }
    runtime = front_end.runtime()
    if runtime:   # not for other feature sets: their caches keep their keys
        description['runtime'] = runtime
    if transform is not None:
        description['transform'] = {'name': transform.name, **transform.describe()}
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:24]


def raw_file_features(path: Path, front_end: FrontEnd,
                      transform: WaveformTransform | None = None) -> np.ndarray:
    """Unnormalised features of one file, after ``transform`` of its audio if given."""
    if transform is None:
        return front_end.extract_file(path, normalize=False)
    rate = front_end.audio.sample_rate
    return front_end.raw_features(*transform(load_audio(path, rate), rate))


def cached_features(paths: Sequence[Path], front_end: FrontEnd, cache_dir: str | Path | None,
                    jobs: int = 0, progress: bool = True,
                    transform: WaveformTransform | None = None) -> np.ndarray:
    """Unnormalised features of every file as one float32 array (N, F, T), cached on disk."""
    paths = [Path(path) for path in paths]
    name = front_end.features.name
    if transform is not None:
        name = f'{name}-{transform.name}'
    target = None
    if cache_dir is not None:
        target = Path(cache_dir) / f'{name}-{cache_key(paths, front_end, transform)}.npy'
        if target.exists():
            return np.load(target)
    jobs = jobs or os.cpu_count() or 1
    iterator = tqdm(paths, desc=f'features ({name})', unit='file',
                    disable=None if progress else True)
    rows = Parallel(n_jobs=jobs)(
        delayed(raw_file_features)(path, front_end, transform) for path in iterator)
    array = np.stack(rows).astype(np.float32, copy=False)
    if target is not None:
        with atomic_write(target) as stream:
            np.save(stream, array)
    return array
