"""ser_pipeline end to end on a real bag, and the launch file / config / node set agreement."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from ser_ros.bags import write_audio_bag
from ser_ros.data.labels import RAVDESS_7
from ser_ros.ros import node_set
from ser_ros.ros.pipeline import (
    EXIT_USAGE,
    audio_files_feed,
    bag_feed,
    launch_values,
    parse_arguments,
)

from .harness import wait_for
from .test_emotion_node import build_tiny_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO_ROOT / 'launch' / 'ser.launch.py'
NS_PER_S = 1_000_000_000
SAMPLE_RATE = 16000
GAP_S = 1.0
# Far from 0: a zero stamp means 'no stamp' to the VAD.
BAG_START_NS = 1_700_000_000 * NS_PER_S
# VAD pre-roll and hangover keep a little audio around the speech; well under the gap.
EDGE_S = 0.5
PIPELINE_TIMEOUT_S = 90.0
# A stopped pipeline exits within this (it takes well under a second).
STOP_TIMEOUT_S = 10.0
# The console script installed beside this interpreter (the venv's bin/).
SER_PIPELINE = str(Path(sys.executable).parent / 'ser_pipeline')


@pytest.fixture(scope='module')
def pipeline_model(tmp_path_factory: pytest.TempPathFactory, ravdess_files: list[Path]) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.pt', ravdess_files[:2])


def speech_bag(path: Path, files: list[Path]) -> list[tuple[float, float]]:
    """Write files separated by silence; return each file's (start, end) in bag time (s)."""
    gap = np.zeros(round(GAP_S * SAMPLE_RATE), dtype=np.int16)
    parts, spans, position = [gap], [], len(gap)
    for file in files:
        samples, rate = soundfile.read(file, dtype='int16')
        assert rate == SAMPLE_RATE
        parts += [samples, gap]
        spans.append((position, position + len(samples)))
        position += len(samples) + len(gap)
    write_audio_bag(path, np.concatenate(parts).tobytes(), start_ns=BAG_START_NS)
    start_s = BAG_START_NS / NS_PER_S
    return [(start_s + a / SAMPLE_RATE, start_s + b / SAMPLE_RATE) for a, b in spans]


def deserialize_audio(data: bytes) -> object:
    """Return the AudioDataStamped in a bag record's CDR bytes."""
    from audio_common_msgs.msg import AudioDataStamped
    from rclpy.serialization import deserialize_message

    return deserialize_message(data, AudioDataStamped)


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{')]


@pytest.mark.timeout(PIPELINE_TIMEOUT_S + 30)
def test_bag_gives_one_emotion_per_utterance_and_exits_by_itself(
        ros_process: object, tmp_path: Path, ravdess_files: list[Path],
        pipeline_model: Path) -> None:
    # Three different actors and emotions (angry, sad, happy), short sentences.
    wanted = ['Actor_03/03-01-05-02-01-01-03', 'Actor_08/03-01-04-01-02-01-08',
              'Actor_13/03-01-03-02-01-02-13']
    files = [next(f for f in ravdess_files if str(f).endswith(name + '.flac'))
             for name in wanted]
    spans = speech_bag(tmp_path / 'bag', files)
    process = ros_process([SER_PIPELINE, '--bag', str(tmp_path / 'bag'), '--rate', '5',
                           '--model', str(pipeline_model), '--timeout', '30'],
                          timeout=PIPELINE_TIMEOUT_S)
    assert process.wait(PIPELINE_TIMEOUT_S) == 0, process.describe()
    lines = json_lines(process.output())
    emotions = [line for line in lines if line['type'] == 'emotion']
    engages = [line for line in lines if line['type'] == 'engage']
    assert len(emotions) == len(files), process.describe()
    assert len(engages) == len(files)
    for emotion, (start, end) in zip(emotions, spans, strict=True):
        assert list(emotion['scores']) == list(RAVDESS_7)
        assert sum(emotion['scores'].values()) == pytest.approx(1.0, abs=1e-3)
        assert emotion['label'] == max(emotion['scores'], key=emotion['scores'].get)
        assert start - EDGE_S <= emotion['start_s'] < emotion['end_s'] <= end + EDGE_S
        assert emotion['frame_id'] == 'microphone'
        assert emotion['latency_s'] is not None and emotion['latency_s'] >= 0
    assert engages[0]['engage'] is True and engages[0]['reason'].startswith('engage:')
    assert 'Traceback' not in process.output()


@pytest.mark.timeout(PIPELINE_TIMEOUT_S + 30)
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['sigint', 'sigterm'])
def test_stopping_it_mid_replay_ends_cleanly(ros_process: object, tmp_path: Path,
                                             ravdess_files: list[Path], pipeline_model: Path,
                                             signum: int) -> None:
    """Ctrl-C, or SIGTERM (a service manager's stop), mid-replay: exit 0, no traceback.

    rclpy's handler shuts the context down on both; only SIGINT also raises KeyboardInterrupt.
    """
    spans = speech_bag(tmp_path / 'bag', ravdess_files[:4])
    process = ros_process([SER_PIPELINE, '--bag', str(tmp_path / 'bag'), '--rate', '1',
                           '--model', str(pipeline_model)], timeout=PIPELINE_TIMEOUT_S)
    assert wait_for(lambda: json_lines(process.output()) or process.returncode is not None,
                    PIPELINE_TIMEOUT_S), process.describe()
    assert process.returncode is None, f'it ended before the last of {len(spans)} utterances'
    os.killpg(process.pid, signum)
    assert process.wait(STOP_TIMEOUT_S) == 0, process.describe()
    assert 'Traceback' not in process.output() and 'Exception' not in process.output(), \
        process.describe()


@pytest.mark.timeout(2 * PIPELINE_TIMEOUT_S + 30)
def test_joined_messages_give_the_same_emotions(ros_process: object, tmp_path: Path,
                                                ravdess_files: list[Path],
                                                pipeline_model: Path) -> None:
    """--chunk-ms 500 plays the bag's 20 ms chunks as 25x fewer messages: same utterances."""
    speech_bag(tmp_path / 'bag', ravdess_files[10:14])
    results = []
    for extra in ([], ['--chunk-ms', '500']):
        process = ros_process([SER_PIPELINE, '--bag', str(tmp_path / 'bag'), '--rate', '20',
                               '--model', str(pipeline_model), '--no-policy', '--timeout', '30',
                               *extra], timeout=PIPELINE_TIMEOUT_S)
        assert process.wait(PIPELINE_TIMEOUT_S) == 0, process.describe()
        results.append([(line['start_s'], line['end_s'], line['label'], line['scores'])
                        for line in json_lines(process.output()) if line['type'] == 'emotion'])
    as_recorded, joined = results
    assert len(as_recorded) == 4
    assert joined == as_recorded


def test_unusable_model_stops_the_pipeline_clearly(ros_process: object, tmp_path: Path,
                                                   ravdess_files: list[Path]) -> None:
    speech_bag(tmp_path / 'bag', ravdess_files[:1])
    missing = tmp_path / 'missing.pt'
    process = ros_process([SER_PIPELINE, '--bag', str(tmp_path / 'bag'), '--model',
                           str(missing)], timeout=60.0)
    assert process.wait(50.0) == 1, process.describe()
    assert str(missing) in process.output() and 'Traceback' not in process.output()


def test_bad_input_is_refused_before_anything_starts(tmp_path: Path) -> None:
    from ser_ros.ros.pipeline import main

    assert main(['--bag', str(tmp_path / 'none')]) == EXIT_USAGE
    with pytest.raises(SystemExit):
        parse_arguments(['--bag', 'x', '--rate', '0'])
    with pytest.raises(SystemExit):
        parse_arguments(['--bag', 'x', '--audio', 'y.wav'])


def test_feeds_cover_the_audio_in_order(tmp_path: Path, ravdess_files: list[Path]) -> None:
    spans = speech_bag(tmp_path / 'bag', ravdess_files[:2])
    feed = bag_feed(tmp_path / 'bag')
    assert feed.items[0].topic == 'audio_info'
    audio = [item for item in feed.items if item.topic == 'audio']
    assert [item.offset_s for item in audio] == sorted(item.offset_s for item in audio)
    # 20 ms chunks from the bag start, the last one ending with the trailing silence.
    assert audio[1].end_ns - audio[0].end_ns == 20_000_000
    assert audio[-1].end_ns == pytest.approx((spans[-1][1] + GAP_S) * NS_PER_S, abs=20e6)
    with pytest.raises(ValueError, match='no AudioDataStamped messages on /other'):
        bag_feed(tmp_path / 'bag', '/other')

    # Joined: the same bytes and stamps in messages of up to 100 ms, each played when its
    # last 20 ms part was.
    joined = [item for item in bag_feed(tmp_path / 'bag', join_ms=100).items
              if item.topic == 'audio']
    assert len(joined) == pytest.approx(len(audio) / 5, abs=1)
    assert b''.join(bytes(item.payload.audio.data) for item in joined) == b''.join(
        bytes(deserialize_audio(item.payload).audio.data) for item in audio)
    by_end = {item.end_ns: item for item in audio}
    previous_end = audio[0].end_ns - 20_000_000
    for item in joined:
        stamp = item.payload.header.stamp
        start = stamp.sec * NS_PER_S + stamp.nanosec
        assert start == previous_end and 0 < item.end_ns - start <= 100_000_000
        assert item.offset_s == by_end[item.end_ns].offset_s
        previous_end = item.end_ns
    with pytest.raises(ValueError, match='join_ms must be positive'):
        bag_feed(tmp_path / 'bag', join_ms=0)

    files_feed = audio_files_feed(ravdess_files[:2], gap_s=0.5, start_ns=5 * NS_PER_S)
    total = sum(soundfile.info(f).frames for f in ravdess_files[:2]) / SAMPLE_RATE + 1.5
    chunks = [item for item in files_feed.items if item.topic == 'audio']
    assert files_feed.chunks == len(chunks) == pytest.approx(total / 0.02, abs=1)
    assert chunks[0].payload.header.stamp.sec == 5
    assert chunks[-1].end_ns == pytest.approx(5 * NS_PER_S + total * NS_PER_S, abs=20e6)


def test_options_map_onto_the_launch_arguments(tmp_path: Path) -> None:
    values = launch_values(parse_arguments(['--bag', 'b', '--model', 'm.pt', '--device', 'cpu',
                                            '--audio-topic', '/robot/audio', '--no-policy']))
    assert values['use_microphone'] == 'false' and values['use_policy'] == 'false'
    assert values['model_path'] == str(Path('m.pt').resolve())
    assert [spec.name for spec in node_set.enabled_nodes(values)] == ['vad_node', 'emotion_node']
    assert node_set.remappings(node_set.node_spec('vad_node'), values) == [
        ('audio', '/robot/audio')]
    assert node_set.parameter_overrides(node_set.node_spec('emotion_node'), values) == {
        'model_path': str(Path('m.pt').resolve()), 'device': 'cpu'}
    with pytest.raises(ValueError, match='must be true or false'):
        node_set.enabled_nodes({**values, 'use_policy': 'maybe'})
    with pytest.raises(ValueError, match='unknown launch argument'):
        node_set.argument_values({'modle_path': 'x'})


def test_every_node_has_a_console_script_a_module_and_a_config_section() -> None:
    scripts = {entry.name: entry.value
               for entry in importlib.metadata.entry_points(group='console_scripts')}
    config = yaml.safe_load(node_set.default_config_path().read_text(encoding='utf-8'))
    names = {spec.name for spec in node_set.NODES}
    assert set(config) <= names, f'config sections for unknown nodes: {set(config) - names}'
    for spec in node_set.NODES:
        assert scripts.get(spec.executable) == f'ser_ros.console:{spec.executable}'
        module = importlib.import_module(spec.module)
        declared = {parameter.name for parameter in module.PARAMETERS}
        values = config.get(spec.name, {}).get('ros__parameters', {})
        given = set(values)
        assert given <= declared, f'{spec.name}: undeclared parameters {given - declared}'
        # `ros2 run` without the file behaves as the launch file with it.
        differing = {parameter.name: (values[parameter.name], parameter.default)
                     for parameter in module.PARAMETERS
                     if parameter.name in values and values[parameter.name] != parameter.default}
        assert not differing, f'{spec.name}: file value != declared default: {differing}'


def test_launch_file_builds_its_nodes_from_the_node_set() -> None:
    tree = ast.parse(LAUNCH_FILE.read_text(encoding='utf-8'), filename=str(LAUNCH_FILE))
    imports = {(node.module, alias.name) for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert ('ser_ros.ros', 'node_set') in imports
    assert ('launch_ros.actions', 'Node') in imports
    literals = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    names = {spec.name for spec in node_set.NODES} | {a.name for a in node_set.LAUNCH_ARGUMENTS}
    # Names come from node_set only: a literal here would be a second definition.
    assert not literals & names, literals & names


def test_launch_description_matches_the_node_set() -> None:
    if importlib.util.find_spec('launch') is None or \
            importlib.util.find_spec('launch_ros') is None:
        pytest.skip('launch/launch_ros are not installable here (no PyPI wheels); the launch '
                    'file is checked statically above')
    from launch.actions import DeclareLaunchArgument
    from launch_ros.actions import Node

    spec = importlib.util.spec_from_file_location('ser_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    arguments = [e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    assert arguments == [a.name for a in node_set.LAUNCH_ARGUMENTS] + [
        node_set.PARAMS_FILE_ARGUMENT]
    nodes = [e for e in description.entities if isinstance(e, Node)]
    assert [n.node_executable for n in nodes] == [s.executable for s in node_set.NODES]
