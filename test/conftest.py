"""Session-wide test settings: isolated ROS 2 environment and the speech corpus location.

The ROS variables are set here, before any test imports rclpy, so that no DDS packet leaves
the machine (LOCALHOST discovery), parallel runs do not cross-talk (own domain id), and rcl's
log files land in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest
from egress_watch import DdsEgressWatch

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT_VARIABLE = 'SER_DATA_ROOT'
DEFAULT_DATA_ROOT = REPO_ROOT.parent / 'shared' / 'data'
RAVDESS_FOLDER = 'ravdess-16k'

_ROS_LOG_DIR = tempfile.mkdtemp(prefix='ser_ros_test_log_')
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ['ROS_LOG_DIR'] = _ROS_LOG_DIR
# Domain ids 0..101 are valid for any participant count; spread runs by process id.
os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
os.environ.pop('ROS_LOCALHOST_ONLY', None)
os.environ.pop('ROS_STATIC_PEERS', None)
# ament_index_python finds the package share directories installed into the venv.
os.environ.setdefault('AMENT_PREFIX_PATH', sys.prefix)
# Child processes should take Ctrl-C as from a terminal. A shell that starts pytest in the
# background hands it SIGINT ignored, and every child would inherit that across exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _fastdds_shm_files() -> set[str]:
    return {name for name in os.listdir('/dev/shm') if name.startswith(('fastrtps_', 'fastdds_',
                                                                         'sem.fastrtps_'))}


_SHM_BEFORE = _fastdds_shm_files() if os.path.isdir('/dev/shm') else set()
_EGRESS_WATCH = DdsEgressWatch()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start counting DDS packets that leave the machine (needs root; said when it cannot)."""
    _EGRESS_WATCH.start()


def pytest_report_header(config: pytest.Config) -> str:
    """Say whether DDS egress is being watched during this run."""
    if _EGRESS_WATCH.available:
        return 'DDS egress watch: on (the run fails if any RTPS packet leaves the machine)'
    return 'DDS egress watch: off (needs root and AF_PACKET); LOCALHOST discovery still set'


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run on DDS egress; remove rcl logs and Fast DDS shared-memory files."""
    leaked = _EGRESS_WATCH.stop()
    if leaked:
        reporter = session.config.pluginmanager.get_plugin('terminalreporter')
        message = (f'{len(leaked)} DDS packets left the machine during the tests: '
                   + '; '.join(leaked[:5]))
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        else:
            print(message, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    shutil.rmtree(_ROS_LOG_DIR, ignore_errors=True)
    if os.path.isdir('/dev/shm'):
        for name in _fastdds_shm_files() - _SHM_BEFORE:
            try:
                os.remove(os.path.join('/dev/shm', name))
            except OSError:
                pass


def data_root() -> Path:
    """Folder holding the corpora: $SER_DATA_ROOT, or ../shared/data beside the repository."""
    return Path(os.environ.get(DATA_ROOT_VARIABLE, DEFAULT_DATA_ROOT))


@pytest.fixture(scope='session')
def ravdess_dir() -> Path:
    """RAVDESS (16 kHz, actors 01-20) in its official layout; fails clearly when absent."""
    folder = data_root() / RAVDESS_FOLDER
    if not (folder / 'Actor_01').is_dir():
        pytest.fail(
            f'RAVDESS not found at {folder}. Set {DATA_ROOT_VARIABLE} to the folder that holds '
            f'{RAVDESS_FOLDER}/Actor_XX (default: {DEFAULT_DATA_ROOT}).'
        )
    return folder


@pytest.fixture(scope='session')
def ravdess_files(ravdess_dir: Path) -> list[Path]:
    """Every RAVDESS speech file, sorted."""
    return sorted(ravdess_dir.glob('Actor_*/03-01-*.flac'))
