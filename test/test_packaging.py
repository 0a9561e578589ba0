"""The package builds the way the robot builds it, and declares what it imports."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

# Top-level import name -> the rosdep key package.xml must declare for it.
IMPORT_TO_ROSDEP = {
    'rclpy': 'rclpy',
    'std_msgs': 'std_msgs',
    'rcl_interfaces': 'rcl_interfaces',
    'diagnostic_msgs': 'diagnostic_msgs',
    'builtin_interfaces': 'rclpy',
    'audio_common_msgs': 'audio_common_msgs',
    'vision_msgs': 'vision_msgs',
    'ament_index_python': 'ament_index_python',
    'launch': 'launch',
    'launch_ros': 'launch_ros',
    'numpy': 'python3-numpy',
    'yaml': 'python3-yaml',
    'torch': 'python3-torch',
    'librosa': 'python3-librosa-pip',
    'soxr': 'python3-soxr-pip',
    'soundfile': 'python3-soundfile',
    'sounddevice': 'python3-sounddevice',
    'webrtcvad': 'python3-webrtcvad-pip',
    'rosbags': 'python3-rosbags-pip',
    'sklearn': 'python3-sklearn',
    'matplotlib': 'python3-matplotlib',
    'tqdm': 'python3-tqdm',
    'joblib': 'python3-joblib',
    'threadpoolctl': 'python3-threadpoolctl',
}


# Imported only by an optional feature, which says how to install it when it is missing.
OPTIONAL_IMPORTS = {
    'silero_vad': "vad_node's detector:=silero; README: pip install --no-deps silero-vad",
}


def _declared_dependencies() -> set[str]:
    root = ET.parse(REPO_ROOT / 'package.xml').getroot()
    tags = ('depend', 'exec_depend')
    return {element.text.strip() for tag in tags for element in root.iter(tag)}


def _third_party_imports() -> dict[str, set[Path]]:
    sources = [*REPO_ROOT.glob('ser_ros/**/*.py'), *REPO_ROOT.glob('launch/*.py')]
    found: dict[str, set[Path]] = {}
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split('.')[0]
                if top not in sys.stdlib_module_names and top != 'ser_ros':
                    found.setdefault(top, set()).add(source.relative_to(REPO_ROOT))
    return found


def test_package_xml_declares_every_import():
    declared = _declared_dependencies()
    problems = []
    for module, files in sorted(_third_party_imports().items()):
        if module in OPTIONAL_IMPORTS:
            continue
        key = IMPORT_TO_ROSDEP.get(module)
        where = ', '.join(sorted(map(str, files)))
        if key is None:
            problems.append(f'{module} (imported in {where}) has no rosdep key in this test')
        elif key not in declared:
            problems.append(f'{module} (imported in {where}) needs <exec_depend>{key}</...>')
    assert not problems, 'package.xml is missing dependencies:\n' + '\n'.join(problems)


def test_package_xml_is_format_3_ament_python():
    root = ET.parse(REPO_ROOT / 'package.xml').getroot()
    assert root.get('format') == '3'
    assert root.findtext('name') == 'ser_ros'
    assert root.findtext('export/build_type') == 'ament_python'


def test_colcon_builds_the_tracked_files(tmp_path: Path):
    colcon = VENV_BIN / 'colcon'
    if not colcon.exists():
        pytest.fail(f'colcon is not installed in {VENV_BIN}: run the set-up (make setup)')
    tracked = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO_ROOT, check=True,
                             capture_output=True).stdout.decode().split('\0')
    source = tmp_path / 'src' / 'ser_ros'
    for name in filter(None, tracked):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO_ROOT / name).is_file():
            shutil.copy2(REPO_ROOT / name, target)
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix)
    result = subprocess.run([str(colcon), 'build', '--event-handlers', 'console_direct-'],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'Summary: 1 package finished' in result.stdout, 'interfaces/ must stay COLCON_IGNOREd'
    share = tmp_path / 'install' / 'ser_ros' / 'share' / 'ser_ros'
    assert (share / 'package.xml').is_file()
    marker = tmp_path / 'install' / 'ser_ros' / 'share' / 'ament_index' / 'resource_index'
    assert (marker / 'packages' / 'ser_ros').is_file()
    assert (tmp_path / 'install' / 'ser_ros' / 'lib' / 'ser_ros' / 'ser_predict').is_file()
