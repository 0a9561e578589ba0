"""Writing files so that readers never see half of one (models, training state, feature caches)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

# Permissions of a new file before the umask, as open() gives them: a model saved by one user
# stays readable by the robot's ROS user.
NEW_FILE_MODE = 0o666
NAME_ATTEMPTS = 16


def _create_temporary(target: Path) -> tuple[int, Path]:
    """Create a new hidden file next to ``target``, with the umask's permissions."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0)
    for _ in range(NAME_ATTEMPTS):
        candidate = target.with_name(f'.{target.name}.{secrets.token_hex(6)}.tmp')
        try:
            return os.open(candidate, flags, NEW_FILE_MODE), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f'{target.parent}: no free temporary name for {target.name}')


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary stream whose bytes replace ``path`` in one rename once the block ends.

    The bytes go to a temporary file in the same folder, are flushed to disk, then renamed over
    ``path``; if the block raises (an error, Ctrl-C), ``path`` keeps its old content and the
    temporary file is removed. Parent folders are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = _create_temporary(target)
    try:
        with os.fdopen(handle, 'wb') as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
