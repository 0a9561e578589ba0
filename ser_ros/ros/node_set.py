"""The one definition of the pipeline's nodes, launch arguments, parameters file and remappings.

Both ``launch/ser.launch.py`` (``ros2 launch ser_ros ser.launch.py`` on the robot) and
``ser_pipeline`` (one process, here and in tests) build the node set from this module, so the
two cannot drift apart. It imports neither ``launch`` nor ``rclpy``.

Each node's name is also its console script (``ros2 run ser_ros <name>``), its module
``ser_ros.ros.<name>`` (one node class per module) and its section in ``config/ser.yaml``.
Launch arguments reach nodes in two ways only, both declared here: as string parameter
overrides (e.g. ``model_path`` -> emotion_node's ``model_path``) and as topic remappings
(``audio_topic`` -> the ``audio`` topic of microphone_node and vad_node).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ser_ros.ros.topics import AUDIO

PACKAGE = 'ser_ros'
CONFIG_NAME = 'ser.yaml'
SOURCE_CONFIG_DIR = Path(__file__).resolve().parents[2] / 'config'
TRUE_WORDS = ('true', '1', 'yes', 'on')
FALSE_WORDS = ('false', '0', 'no', 'off')


@dataclass(frozen=True)
class LaunchArgument:
    """A launch argument: name, default (as launch gives it: text) and description."""

    name: str
    default: str
    description: str


@dataclass(frozen=True)
class NodeSpec:
    """One node of the pipeline and how launch arguments reach it."""

    name: str
    # Boolean launch argument that decides whether the node starts (None: always).
    enabled_by: str | None = None
    # (parameter, launch argument): string parameters set from launch arguments.
    parameter_arguments: tuple[tuple[str, str], ...] = ()
    # (topic, launch argument): topics remapped to the name a launch argument gives.
    remap_arguments: tuple[tuple[str, str], ...] = ()

    @property
    def executable(self) -> str:
        """Console script (``ros2 run ser_ros <executable>``)."""
        return self.name

    @property
    def module(self) -> str:
        """Python module holding the node class and ``main()``."""
        return f'{PACKAGE}.ros.{self.name}'


def default_config_path() -> Path:
    """``config/ser.yaml``: the installed package's share dir, else the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        pass
    else:
        try:
            share = Path(get_package_share_directory(PACKAGE, print_warning=False))
        except (LookupError, OSError, ValueError):
            pass
        else:
            candidate = share / 'config' / CONFIG_NAME
            if candidate.is_file():
                return candidate
    return SOURCE_CONFIG_DIR / CONFIG_NAME


def node_parameters(node: str, path: Path | None = None) -> dict[str, Any]:
    """One node's ``ros__parameters`` in a parameters file (default: :func:`default_config_path`).

    For code that must act as a node does without running it: benchmarks, and training on
    what vad_node cuts.
    """
    path = path or default_config_path()
    settings = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    try:
        return dict(settings[node]['ros__parameters'])
    except (KeyError, TypeError) as error:
        raise ValueError(f'{path} has no ros__parameters for {node!r}') from error


LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument('model_path', '',
                   'emotion model checkpoint (.pt); empty: the shipped model'),
    LaunchArgument('device', 'auto', 'where the emotion model runs: auto, cpu, cuda or cuda:N'),
    LaunchArgument('audio_topic', AUDIO,
                   'audio stream (audio_common_msgs/AudioDataStamped) the VAD listens to and '
                   'the microphone node publishes, e.g. /audio from a bag or a robot driver'),
    LaunchArgument('use_microphone', 'true',
                   'start microphone_node (false when audio comes from a bag or the robot '
                   'driver)'),
    LaunchArgument('use_policy', 'true',
                   'start dialogue_policy_node (engage/disengage from /emotion)'),
)
# The parameters file is an argument too; its default is found at run time (share dir).
PARAMS_FILE_ARGUMENT = 'params_file'
PARAMS_FILE_DESCRIPTION = 'parameters of every node (ros__parameters YAML)'

NODES: tuple[NodeSpec, ...] = (
    NodeSpec('microphone_node', enabled_by='use_microphone',
             remap_arguments=((AUDIO, 'audio_topic'),)),
    NodeSpec('vad_node', remap_arguments=((AUDIO, 'audio_topic'),)),
    NodeSpec('emotion_node',
             parameter_arguments=(('model_path', 'model_path'), ('device', 'device'))),
    NodeSpec('dialogue_policy_node', enabled_by='use_policy'),
)


def node_spec(name: str) -> NodeSpec:
    """Return the spec of the node called ``name``."""
    for spec in NODES:
        if spec.name == name:
            return spec
    raise ValueError(f'unknown node {name!r}; the pipeline has {[s.name for s in NODES]}')


def argument_values(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every launch argument's value: the defaults with ``overrides`` applied (names checked)."""
    values = {argument.name: argument.default for argument in LAUNCH_ARGUMENTS}
    values[PARAMS_FILE_ARGUMENT] = str(default_config_path())
    for name, value in (overrides or {}).items():
        if name not in values:
            raise ValueError(f'unknown launch argument {name!r}; known: {sorted(values)}')
        values[name] = str(value)
    return values


def is_true(text: str, name: str = 'value') -> bool:
    """Read a boolean launch argument as launch's IfCondition does ('true'/'false', '1'/'0')."""
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f'launch argument {name!r} must be true or false, got {text!r}')


def enabled_nodes(values: Mapping[str, str]) -> list[NodeSpec]:
    """Return the nodes that start for these launch argument values, in start order."""
    return [spec for spec in NODES
            if spec.enabled_by is None or is_true(values[spec.enabled_by], spec.enabled_by)]


def parameter_overrides(spec: NodeSpec, values: Mapping[str, str]) -> dict[str, str]:
    """Parameters of ``spec`` set from launch arguments (on top of the parameters file)."""
    return {parameter: values[argument] for parameter, argument in spec.parameter_arguments}


def remappings(spec: NodeSpec, values: Mapping[str, str]) -> list[tuple[str, str]]:
    """Topic remappings of ``spec`` (from, to) for these launch argument values."""
    return [(topic, values[argument]) for topic, argument in spec.remap_arguments
            if values[argument] and values[argument] != topic]

