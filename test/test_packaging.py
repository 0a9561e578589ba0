"""The package builds the way the robot builds it, and declares what it imports."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

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
    'torch': 'python3-torch-pip',
    'librosa': 'python3-librosa-pip',
    'soxr': 'python3-soxr-pip',
    'soundfile': 'python3-soundfile-pip',
    'sounddevice': 'python3-sounddevice-pip',
    'webrtcvad': 'python3-webrtcvad-wheels-pip',
    'rosbags': 'python3-rosbags-pip',
    'sklearn': 'python3-sklearn',
    'matplotlib': 'python3-matplotlib',
    'tqdm': 'python3-tqdm',
    'joblib': 'python3-joblib',
    'threadpoolctl': 'python3-threadpoolctl-pip',
    'ctranslate2': 'python3-ctranslate2-pip',
}

# Non-ROS keys package.xml may take from the ROS rosdep database, seen defined there for
# ubuntu in ros/rosdistro rosdep/python.yaml (commit 000730dc5f916eb05b15d3f183bd1c17bf1b4722).
UPSTREAM_ROSDEP_KEYS = frozenset({
    'python3-numpy', 'python3-yaml', 'python3-sklearn', 'python3-matplotlib', 'python3-tqdm',
    'python3-joblib', 'python3-sounddevice-pip', 'python3-pytest', 'python3-hypothesis',
})
OWN_ROSDEP_FILE = REPO_ROOT / 'requirements' / 'rosdep.yaml'
ROSDEP_PLATFORMS = ('debian', 'ubuntu')

# Imported only by an optional feature, which says how to install it when it is missing.
OPTIONAL_IMPORTS = {
    'silero_vad': "vad_node's detector:=silero; README: pip install --no-deps silero-vad",
}


def _declared_dependencies(tags: tuple[str, ...] = ('depend', 'exec_depend')) -> set[str]:
    root = ET.parse(REPO_ROOT / 'package.xml').getroot()
    return {element.text.strip() for tag in tags for element in root.iter(tag)}


def _requirement_names() -> set[str]:
    """Project names of requirements/base.in (comment lines match nothing)."""
    lines = (REPO_ROOT / 'requirements' / 'base.in').read_text(encoding='utf-8').splitlines()
    matches = (re.match(r'[A-Za-z0-9_.-]+', line.strip()) for line in lines)
    return {match.group(0).lower() for match in matches if match}


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


def test_every_non_ros_rosdep_key_resolves_upstream_or_in_our_rosdep_file():
    own = yaml.safe_load(OWN_ROSDEP_FILE.read_text(encoding='utf-8'))
    ros_packages = set(IMPORT_TO_ROSDEP.values()) | {'ament_python', 'ament_flake8',
                                                    'ament_pep257'}
    keys = _declared_dependencies(('buildtool_depend', 'depend', 'exec_depend', 'test_depend'))
    unresolved = sorted(keys - ros_packages - UPSTREAM_ROSDEP_KEYS - set(own))
    assert not unresolved, f'no rosdep definition for {unresolved}: add them to {OWN_ROSDEP_FILE}'
    assert not set(own) & UPSTREAM_ROSDEP_KEYS, 'redefines an upstream key'
    assert set(own) <= keys, f'unused keys in {OWN_ROSDEP_FILE}: {sorted(set(own) - keys)}'
    requirements = _requirement_names()
    for key, rules in own.items():
        assert set(rules) == set(ROSDEP_PLATFORMS), (key, rules)
        for platform in ROSDEP_PLATFORMS:
            rule = rules[platform]
            if isinstance(rule, list):   # apt packages
                assert rule and all(isinstance(name, str) for name in rule), (key, rule)
            else:                        # pip packages: the ones the dev machine pins
                assert key.endswith('-pip'), key
                packages = rule['pip']['packages']
                assert packages and set(packages) <= requirements, (key, packages)


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
    script = tmp_path / 'install' / 'ser_ros' / 'lib' / 'ser_ros' / 'ser_predict'
    assert script.is_file()
    # The built script runs from the install tree (through ser_ros.console), as on the robot.
    installed = next((tmp_path / 'install' / 'ser_ros' / 'lib').glob('python3*/site-packages'))
    result = subprocess.run([sys.executable, str(script), '--help'], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path,
                            env=dict(env, PYTHONPATH=str(installed)))
    assert result.returncode == 0 and 'usage: ser_predict' in result.stdout, result.stderr


def test_every_console_script_enters_through_ser_ros_console():
    # ser_ros.console imports the script's module where a Ctrl-C ends it quietly.
    from ser_ros import console

    scripts = {entry.name: entry.value
               for entry in importlib.metadata.entry_points(group='console_scripts')
               if entry.value.startswith('ser_ros.')}
    assert scripts == {name: f'ser_ros.console:{name}' for name in console.SCRIPTS}
    for name, (module, _) in console.SCRIPTS.items():
        assert callable(importlib.import_module(module).main), module
        assert callable(getattr(console, name))
    with pytest.raises(AttributeError, match='no_such_script'):
        console.no_such_script  # noqa: B018 - the attribute access is the test
