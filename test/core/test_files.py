"""Atomic file writes: all or nothing, no leftovers, and the permissions of any new file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ser_ros.core.files import atomic_write

from .test_checkpoint import tiny_checkpoint

UMASK = 0o022


@pytest.fixture
def umask() -> Iterator[int]:
    """Run the test under a known umask (the usual 022), restoring the caller's."""
    previous = os.umask(UMASK)
    try:
        yield UMASK
    finally:
        os.umask(previous)


def permissions(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_file_holds_the_bytes_and_nothing_else_is_left(tmp_path: Path) -> None:
    target = tmp_path / 'deep' / 'folder' / 'file.bin'
    with atomic_write(target) as stream:
        stream.write(b'first')
    with atomic_write(target) as stream:
        stream.write(b'second')
    assert target.read_bytes() == b'second'
    assert [entry.name for entry in target.parent.iterdir()] == ['file.bin']


@pytest.mark.parametrize('failure', [RuntimeError('disk on fire'), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
        tmp_path: Path, failure: BaseException) -> None:
    target = tmp_path / 'file.bin'
    target.write_bytes(b'old')
    with pytest.raises(type(failure)):
        with atomic_write(target) as stream:
            stream.write(b'half of the new')
            raise failure
    assert target.read_bytes() == b'old'
    assert [entry.name for entry in tmp_path.iterdir()] == ['file.bin']


def test_new_files_get_the_umask_permissions_not_private_ones(tmp_path: Path,
                                                              umask: int) -> None:
    target = tmp_path / 'file.bin'
    with atomic_write(target) as stream:
        stream.write(b'x')
    assert permissions(target) == 0o666 & ~umask


def test_a_saved_model_is_readable_by_other_users(tmp_path: Path, umask: int) -> None:
    path = tiny_checkpoint().save(tmp_path / 'model.pt')
    assert permissions(path) & stat.S_IROTH
    assert permissions(path) == 0o666 & ~umask
