"""Compute the front end's raw features for a list of files once, and keep them on disk.

Training reruns (ablations, folds, resumed runs) then skip audio decoding and STFTs. The cache
key covers the audio and feature configuration and each file's path, size and modification
time, so a changed file or setting never reuses stale features.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from tqdm import tqdm

from ser_ros.core.features import FrontEnd


def _file_identity(path: Path) -> list:
    status = path.stat()
    return [str(path.resolve()), status.st_size, status.st_mtime_ns]


def cache_key(paths: Sequence[Path], front_end: FrontEnd) -> str:
    """Hash of everything the cached array depends on."""
    description = {
        'audio': front_end.audio.to_dict(),
        'features': front_end.features.to_dict(),
        'files': [_file_identity(Path(path)) for path in paths],
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:24]


def cached_features(paths: Sequence[Path], front_end: FrontEnd, cache_dir: str | Path | None,
                    jobs: int = 0, progress: bool = True) -> np.ndarray:
    """Unnormalised features of every file as one float32 array (N, F, T), cached on disk."""
    paths = [Path(path) for path in paths]
    name = front_end.features.name
    target = None
    if cache_dir is not None:
        target = Path(cache_dir) / f'{name}-{cache_key(paths, front_end)}.npy'
        if target.exists():
            return np.load(target)
    jobs = jobs or os.cpu_count() or 1
    iterator = tqdm(paths, desc=f'features ({name})', unit='file',
                    disable=None if progress else True)
    rows = Parallel(n_jobs=jobs)(
        delayed(front_end.extract_file)(path, normalize=False) for path in iterator)
    array = np.stack(rows).astype(np.float32, copy=False)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix='.npy', delete=False) as handle:
            np.save(handle, array)
        os.replace(handle.name, target)
    return array
