"""emotion_node through real topics: real RAVDESS utterances in, Classification messages out."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from audio_common_msgs.msg import AudioDataStamped
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.parameter import Parameter
from vision_msgs.msg import Classification

from ser_ros.core.audio import AudioConfig
from ser_ros.core.checkpoint import Checkpoint
from ser_ros.core.ensemble import Ensemble
from ser_ros.core.features import FrontEnd, Normalizer, feature_preset
from ser_ros.core.inference import EmotionRecognizer, load_recognizer
from ser_ros.core.model import ModelConfig, SerNet
from ser_ros.data.labels import RAVDESS_7
from ser_ros.ros.diagnostics import status_values
from ser_ros.ros.emotion_node import (
    EXIT_NO_MODEL,
    PARAMETERS,
    DropOldestQueue,
    EmotionNode,
    StartupError,
)
from ser_ros.ros.params import EXIT_BAD_PARAMETER
from ser_ros.ros.topics import DIAGNOSTICS, EMOTION, UTTERANCE, qos_for

from .harness import python_command, spinning, wait_for, wait_for_subscribers

NS_PER_S = 1_000_000_000
# Well inside the emotion node's imports (~2 s here).
INTERRUPT_WHILE_LOADING_S = 0.3
SAMPLE_RATE = 16000
# Warm-up (numba compiles librosa's kernels in a fresh process) plus a few inferences.
RESULT_TIMEOUT_S = 30.0
# One network call for three utterances against one each: the same up to float rounding.
BATCH_TOLERANCE = 1e-4
NORMALIZER_FILES = 3


def build_tiny_checkpoint(path: Path, files: Sequence[Path], seed: int = 0) -> Path:
    """Save a small random-weight SerNet with the real mel128 front end fitted on `files`."""
    torch.manual_seed(seed)
    audio = AudioConfig()
    features = feature_preset('mel128')
    front_end = FrontEnd(audio, features)
    batch = np.stack([front_end.extract_file(file, normalize=False) for file in files])
    num_features, num_frames = front_end.feature_shape
    config = ModelConfig(num_classes=len(RAVDESS_7), num_features=num_features,
                         num_frames=num_frames, conv_blocks=2, filters=(4, 8), lstm_units=8,
                         attention_units=8)
    checkpoint = Checkpoint.from_model(SerNet(config).eval(), audio, features,
                                       Normalizer.fit(batch), RAVDESS_7,
                                       provenance={'dataset': 'none: random weights for tests'})
    return checkpoint.save(path)


@pytest.fixture(scope='session')
def tiny_model(tmp_path_factory: pytest.TempPathFactory, ravdess_files: list[Path]) -> Path:
    """Path of a small checkpoint (random weights, real front end) shared by the ROS tests."""
    step = len(ravdess_files) // NORMALIZER_FILES
    files = ravdess_files[::step][:NORMALIZER_FILES]
    return build_tiny_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.pt', files)


@pytest.fixture(scope='session')
def tiny_ensemble(tmp_path_factory: pytest.TempPathFactory, ravdess_files: list[Path],
                  tiny_model: Path) -> Path:
    """Path of an ensemble file: tiny_model and a second small checkpoint of another seed."""
    step = len(ravdess_files) // NORMALIZER_FILES
    folder = tmp_path_factory.mktemp('ensemble')
    other = build_tiny_checkpoint(folder / 'other.pt', ravdess_files[::step][:NORMALIZER_FILES],
                                  seed=1)
    return Ensemble((Checkpoint.load(tiny_model), Checkpoint.load(other))).save(
        folder / 'ensemble.pt')


def read_int16(path: Path) -> np.ndarray:
    samples, rate = soundfile.read(path, dtype='int16')
    assert rate == SAMPLE_RATE and samples.ndim == 1
    return samples


def utterance_message(samples: np.ndarray | bytes, start_ns: int,
                      frame_id: str) -> AudioDataStamped:
    message = AudioDataStamped()
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(start_ns, NS_PER_S)
    message.header.frame_id = frame_id
    message.audio.data = samples if isinstance(samples, bytes) else samples.tobytes()
    return message


def stamp_ns(message: Classification) -> int:
    return message.header.stamp.sec * NS_PER_S + message.header.stamp.nanosec


class Probe:
    """Test-side node: publishes utterances, collects emotions and diagnostics."""

    def __init__(self, make_node: object) -> None:
        self.node = make_node('emotion_probe')
        self.publisher = self.node.create_publisher(AudioDataStamped, UTTERANCE,
                                                    qos_for(UTTERANCE).to_rclpy())
        self.emotions: list[Classification] = []
        self.diagnostics: list[dict[str, str]] = []
        self.node.create_subscription(Classification, EMOTION, self.emotions.append,
                                      qos_for(EMOTION).to_rclpy())
        self.node.create_subscription(DiagnosticArray, DIAGNOSTICS, self._on_diagnostics,
                                      qos_for(DIAGNOSTICS).to_rclpy())

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        if message.status and message.status[0].name.startswith('emotion_node'):
            self.diagnostics.append(status_values(message))


def start_node(context: Context, model: Path, **parameters: object) -> EmotionNode:
    overrides = [Parameter('model_path', value=str(model)),
                 Parameter('diagnostics_period_s', value=0.2)]
    overrides += [Parameter(name, value=value) for name, value in parameters.items()]
    return EmotionNode(context=context, parameter_overrides=overrides)


def test_each_utterance_gets_one_classification_in_model_order(
        ros_context: Context, make_node: object, tiny_model: Path,
        ravdess_files: list[Path]) -> None:
    node = start_node(ros_context, tiny_model)
    probe = Probe(make_node)
    files = [ravdess_files[0], ravdess_files[-1]]
    waveforms = [read_int16(path) for path in files]
    starts = [12 * NS_PER_S + 345_678_901, 20 * NS_PER_S]
    frames = ['ari_head_mic', 'respeaker']
    try:
        with spinning(ros_context, node, probe.node):
            assert wait_for_subscribers(probe.publisher)
            # Bad messages before, between and after good ones: warned about, nothing lost.
            probe.publisher.publish(utterance_message(b'', 0, 'bad'))
            probe.publisher.publish(utterance_message(waveforms[0], starts[0], frames[0]))
            probe.publisher.publish(utterance_message(b'\x01\x02\x03', 0, 'bad'))
            probe.publisher.publish(utterance_message(waveforms[1], starts[1], frames[1]))
            probe.publisher.publish(utterance_message(b'\x00', 0, 'bad'))
            assert wait_for(lambda: len(probe.emotions) == 2, RESULT_TIMEOUT_S), node.stats()
            assert wait_for(lambda: any(d.get('malformed') == '3' and d.get('published') == '2'
                                        and d.get('state') == 'ready'
                                        for d in probe.diagnostics), 5.0), probe.diagnostics
            stats = node.stats()
            bf16_used = node._recognizer.bf16
            silence = node._recognizer.trailing_silence_s
    finally:
        node.destroy_node()
    assert stats['received'] == 5 and stats['published'] == 2 and stats['malformed'] == 3
    assert stats['dropped'] == 0 and stats['failed'] == 0 and stats['handled'] == 5
    assert stats['last_latency_s'] is not None and stats['last_latency_s'] > 0
    report = next(d for d in probe.diagnostics if d['published'] == '2' and d['state'] == 'ready')
    assert report['labels'] == ' '.join(RAVDESS_7)
    assert report['model'] == str(tiny_model) and float(report['last_latency_ms']) > 0

    # The same computation offline, with the node's precision (bf16 where the CPU has it) and
    # the silence it appends (its parameter's default).
    assert silence == next(spec.default for spec in PARAMETERS
                           if spec.name == 'trailing_silence_s') > 0
    offline = EmotionRecognizer.from_checkpoint(tiny_model, device='cpu', bf16=bf16_used,
                                                trailing_silence_s=silence)
    for message, samples, start, frame in zip(probe.emotions, waveforms, starts, frames,
                                              strict=True):
        assert [h.class_id for h in message.results] == list(RAVDESS_7)
        scores = np.array([h.score for h in message.results])
        assert np.all(scores >= 0) and scores.sum() == pytest.approx(1.0, abs=1e-9)
        assert stamp_ns(message) == start + round(len(samples) * NS_PER_S / SAMPLE_RATE)
        assert message.header.frame_id == frame
        expected = offline.predict(samples.astype(np.float32) / 32768.0, SAMPLE_RATE)
        np.testing.assert_allclose(scores, [expected.probabilities[label] for label in RAVDESS_7],
                                   atol=1e-5)


def test_full_queue_drops_the_oldest_and_counts_it(
        ros_context: Context, make_node: object, tiny_model: Path,
        ravdess_files: list[Path]) -> None:
    node = start_node(ros_context, tiny_model, queue_size=1)
    probe = Probe(make_node)
    samples = read_int16(ravdess_files[1])
    burst = 6
    try:
        with spinning(ros_context, node, probe.node):
            assert wait_for_subscribers(probe.publisher)
            assert wait_for(lambda: node.stats()['state'] == 'ready', RESULT_TIMEOUT_S)
            for index in range(burst):
                probe.publisher.publish(utterance_message(samples, index * NS_PER_S, 'mic'))
            assert wait_for(lambda: node.stats()['handled'] == burst, RESULT_TIMEOUT_S)
            stats = node.stats()
            assert wait_for(lambda: len(probe.emotions) == stats['published'], 5.0)
            assert wait_for(lambda: any(d.get('dropped') == str(stats['dropped'])
                                        and d.get('published') == str(stats['published'])
                                        for d in probe.diagnostics), 5.0)
    finally:
        node.destroy_node()
    assert stats['published'] + stats['dropped'] == burst and stats['published'] >= 1
    # Only waiting utterances are dropped, oldest first: the newest is always answered.
    last_end = (burst - 1) * NS_PER_S + round(len(samples) * NS_PER_S / SAMPLE_RATE)
    assert stamp_ns(probe.emotions[-1]) == last_end
    stamps = [stamp_ns(message) for message in probe.emotions]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize('model_fixture', ['tiny_model', 'tiny_ensemble'])
def test_utterances_that_wait_together_share_one_network_call(
        ros_context: Context, make_node: object, model_fixture: str,
        ravdess_files: list[Path], request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(model_fixture)
    node = start_node(ros_context, model, queue_size=8, max_batch=3)
    probe = Probe(make_node)
    waveforms = [read_int16(path) for path in ravdess_files[:5]]
    recognizer = node._recognizer
    real_features = recognizer.features
    stalled = threading.Event()

    def first_call_stalls(samples: np.ndarray, rate: int) -> object:
        if not stalled.is_set():   # a stall while the others arrive, as on a busy robot
            stalled.set()
            # Until all the others wait in the queue, however slow the machine.
            wait_for(lambda: node.stats()['queued'] == len(waveforms) - 1, RESULT_TIMEOUT_S)
        return real_features(samples, rate)

    try:
        with spinning(ros_context, node, probe.node):
            assert wait_for_subscribers(probe.publisher)
            assert wait_for(lambda: node.stats()['state'] == 'ready', RESULT_TIMEOUT_S)
            # Only after the warm-up, which runs the same path and would take the stall.
            recognizer.features = first_call_stalls
            for index, samples in enumerate(waveforms):
                probe.publisher.publish(utterance_message(samples, (index + 1) * NS_PER_S,
                                                          'mic'))
                assert stalled.wait(RESULT_TIMEOUT_S)   # the rest arrive during the stall
            assert wait_for(lambda: len(probe.emotions) == len(waveforms), RESULT_TIMEOUT_S)
            timings = node.timings()
            bf16_used = recognizer.bf16
            silence = recognizer.trailing_silence_s
    finally:
        node.destroy_node()
    # One alone (it stalled), then the four that queued meanwhile in calls of at most three.
    assert [timing.batch for timing in timings] == [1, 3, 3, 3, 1]
    assert node.stats()['dropped'] == 0
    offline = load_recognizer(model, device='cpu', bf16=bf16_used, trailing_silence_s=silence)
    assert type(offline) is type(recognizer)
    for index, (message, samples) in enumerate(zip(probe.emotions, waveforms, strict=True)):
        assert stamp_ns(message) == (index + 1) * NS_PER_S + round(
            len(samples) * NS_PER_S / SAMPLE_RATE)
        expected = offline.predict(samples.astype(np.float32) / 32768.0, SAMPLE_RATE)
        np.testing.assert_allclose([h.score for h in message.results],
                                   [expected.probabilities[label] for label in RAVDESS_7],
                                   atol=BATCH_TOLERANCE)


def test_drop_oldest_queue() -> None:
    queue: DropOldestQueue[int] = DropOldestQueue(2)
    assert queue.put(1) is None and queue.put(2) is None
    assert queue.put(3) == 1
    assert len(queue) == 2 and queue.get(0) == 2 and queue.get(0) == 3
    assert queue.get(0.01) is None
    queue.put(4)
    queue.close()
    assert queue.closed and queue.get(None) is None
    with pytest.raises(RuntimeError):
        queue.put(5)
    with pytest.raises(ValueError):
        DropOldestQueue(0)
    many: DropOldestQueue[int] = DropOldestQueue(5)
    for item in range(4):
        many.put(item)
    assert many.get_many(3, 0) == [0, 1, 2] and many.get_many(3, 0) == [3]
    assert many.get_many(3, 0.01) == []


@pytest.mark.parametrize('name, value, exit_code', [
    ('device', 'tpu', EXIT_BAD_PARAMETER),
    ('queue_size', 0, EXIT_BAD_PARAMETER),
    ('sample_rate', 1000, EXIT_BAD_PARAMETER),
])
def test_invalid_parameters_are_refused_naming_them(ros_context: Context, tiny_model: Path,
                                                    name: str, value: object,
                                                    exit_code: int) -> None:
    with pytest.raises(StartupError, match=f"'{name}'") as caught:
        start_node(ros_context, tiny_model, **{name: value})
    assert caught.value.exit_code == exit_code


def test_unusable_model_stops_with_a_clear_error(ros_process: object, tmp_path: Path) -> None:
    missing = tmp_path / 'no_such_model.pt'
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(b'this is not a checkpoint' * 10)
    command = python_command(module='ser_ros.ros.emotion_node')
    processes = [ros_process(command, parameters={'model_path': str(path)}, timeout=60.0)
                 for path in (missing, corrupt)]
    for process, path in zip(processes, (missing, corrupt), strict=True):
        assert process.wait(50.0) == EXIT_NO_MODEL, process.describe()
        output = process.output()
        assert str(path) in output and 'model_path' in output, output
        assert 'Traceback' not in output, output
    assert 'does not exist' in processes[0].output()
    assert 'ser_ros checkpoint' in processes[1].output()


def test_main_exits_cleanly_on_interrupt(ros_process: object, tiny_model: Path) -> None:
    process = ros_process([sys.executable, '-m', 'ser_ros.ros.emotion_node'],
                          parameters={'model_path': str(tiny_model), 'warm_up': False})
    assert wait_for(lambda: 'listening on /utterance' in process.output(), 30.0), \
        process.describe()
    time.sleep(0.2)
    assert process.stop() == 0, process.describe()
    assert 'Traceback' not in process.output()


def test_console_script_exits_quietly_on_interrupt_while_loading(ros_process: object,
                                                                 tiny_model: Path) -> None:
    # The installed script, as `ros2 launch` starts it; its imports (torch, librosa, rclpy)
    # take ~2 s here, so the Ctrl-C lands in them, before rclpy has a signal handler.
    script = Path(sys.executable).parent / 'emotion_node'
    process = ros_process([str(script)], parameters={'model_path': str(tiny_model)})
    time.sleep(INTERRUPT_WHILE_LOADING_S)
    assert process.stop() == 0, process.describe()
    output = process.output()
    assert 'listening on' not in output, 'interrupted after start, not while loading: ' + output
    assert 'Traceback' not in output, output
