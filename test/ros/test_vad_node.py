"""vad_node through real topics: real RAVDESS speech in 20 ms chunks, utterances out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Bool

from ser_ros.core.pcm import PcmFormat, decode_pcm, encode_s16le
from ser_ros.core.segmenter import Segmenter, Utterance
from ser_ros.ros.diagnostics import ERROR, OK, status_values
from ser_ros.ros.params import EXIT_BAD_PARAMETER, ParameterError
from ser_ros.ros.topics import (
    AUDIO,
    AUDIO_INFO,
    DIAGNOSTICS,
    IS_SPEAKING,
    ROBOT_SPEAKING,
    UTTERANCE,
    qos_for,
)
from ser_ros.ros.vad_node import VadNode, segmenter_config

from .harness import python_command, spinning, wait_for, wait_for_subscribers

RATE = 16000
CHUNK_MS = 20
GAP_S = 1.0
T0 = 1_700_000_000.0  # a wall-clock-like stamp: seconds since the epoch
FILE_STEP = 97
FRAME_ID = 'ari_head_mic'
# Published chunks ahead of what the node has taken: well under the audio QoS depth (100).
IN_FLIGHT = 40
TIMEOUT_S = 10.0


@dataclass
class Stream:
    pcm: bytes  # 16 kHz mono S16LE, as a microphone publishes it
    file_spans: list[tuple[float, float]]  # each file's start and end in stream time

    @property
    def samples(self) -> np.ndarray:
        return decode_pcm(self.pcm, PcmFormat(RATE))[:, 0]


def make_stream(paths: Sequence[Path]) -> Stream:
    gap = np.zeros(round(GAP_S * RATE), np.float32)
    parts, spans, offset = [gap], [], GAP_S
    for path in paths:
        samples, rate = soundfile.read(path, dtype='float32')
        assert rate == RATE
        spans.append((T0 + offset, T0 + offset + len(samples) / RATE))
        parts += [samples, gap]
        offset += len(samples) / RATE + GAP_S
    return Stream(encode_s16le(np.concatenate(parts)), spans)


@pytest.fixture(scope='module')
def stream3(ravdess_files: list[Path]) -> Stream:
    return make_stream(ravdess_files[::FILE_STEP][:3])


@pytest.fixture(scope='module')
def stream2(ravdess_files: list[Path]) -> Stream:
    return make_stream(ravdess_files[::FILE_STEP][3:5])


def offline(stream: Stream, node: VadNode) -> list[Utterance]:
    """Segment the same chunks with the same configuration, without ROS."""
    segmenter = Segmenter(node.config)
    samples, step = stream.samples, RATE * CHUNK_MS // 1000
    out: list[Utterance] = []
    for offset in range(0, len(samples), step):
        out += segmenter.push(samples[offset:offset + step], T0 + offset / RATE)
    return out


@dataclass
class Probe:
    """The test's side of the topics: publishers into vad_node, subscriptions of its output."""

    node: Node
    stamped: bool = True
    utterances: list[AudioDataStamped] = field(default_factory=list)
    speaking: list[bool] = field(default_factory=list)
    diagnostics: list[DiagnosticArray] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        node = self.node
        self.audio = node.create_publisher(AudioDataStamped if self.stamped else AudioData,
                                           AUDIO, qos_for(AUDIO).to_rclpy())
        self.info = node.create_publisher(AudioInfo, AUDIO_INFO, qos_for(AUDIO_INFO).to_rclpy())
        self.robot = node.create_publisher(Bool, ROBOT_SPEAKING,
                                           qos_for(ROBOT_SPEAKING).to_rclpy())
        node.create_subscription(AudioDataStamped, UTTERANCE, self._keep(self.utterances),
                                 qos_for(UTTERANCE).to_rclpy())
        node.create_subscription(Bool, IS_SPEAKING, self._keep(self.speaking, 'data'),
                                 qos_for(IS_SPEAKING).to_rclpy())
        node.create_subscription(DiagnosticArray, DIAGNOSTICS, self._keep(self.diagnostics),
                                 qos_for(DIAGNOSTICS).to_rclpy())
        for publisher in (self.audio, self.info, self.robot):
            assert wait_for_subscribers(publisher)

    def _keep(self, into: list, attribute: str | None = None) -> Callable[[object], None]:
        def keep(message: object) -> None:
            with self.lock:
                into.append(getattr(message, attribute) if attribute else message)
        return keep

    def announce(self, rate: int = RATE, channels: int = 1, sample_format: str = 'S16LE',
                 coding_format: str = 'WAVE') -> None:
        self.info.publish(AudioInfo(channels=channels, sample_rate=rate,
                                    sample_format=sample_format, coding_format=coding_format,
                                    bitrate=rate * channels * 16))

    def send(self, vad: VadNode, payload: bytes, stamp: float) -> None:
        """Publish one chunk, pacing so the node never lags more than IN_FLIGHT chunks."""
        if self.stamped:
            message = AudioDataStamped()
            sec, nanosec = divmod(round(stamp * 1e9), 1_000_000_000)
            message.header.stamp.sec, message.header.stamp.nanosec = sec, nanosec
            message.header.frame_id = FRAME_ID
            message.audio.data = payload
        else:
            message = AudioData(data=payload)
        self.sent = getattr(self, 'sent', 0) + 1
        self.audio.publish(message)
        assert wait_for(lambda: vad.counters['messages'] >= self.sent - IN_FLIGHT, TIMEOUT_S)

    def send_pcm(self, vad: VadNode, pcm: bytes, start: float, rate: int = RATE,
                 frame_bytes: int = 2) -> None:
        step = rate * CHUNK_MS // 1000 * frame_bytes
        for index, offset in enumerate(range(0, len(pcm), step)):
            self.send(vad, pcm[offset:offset + step], start + index * CHUNK_MS / 1000)

    def settle(self, vad: VadNode) -> None:
        assert wait_for(lambda: vad.counters['messages'] >= self.sent, TIMEOUT_S)


def start_vad(context: Context, **parameters: object) -> VadNode:
    overrides = [Parameter(name, value=value) for name, value in parameters.items()]
    return VadNode(context=context, parameter_overrides=overrides)


def stamp_of(message: AudioDataStamped) -> float:
    return message.header.stamp.sec + message.header.stamp.nanosec / 1e9


def test_one_utterance_per_file_with_first_sample_stamps(ros_context, make_node,
                                                        stream3: Stream) -> None:
    vad = start_vad(ros_context)
    probe = Probe(make_node('probe'))
    try:
        with spinning(ros_context, vad, probe.node):
            probe.announce()
            probe.send_pcm(vad, stream3.pcm, T0)
            probe.settle(vad)
            assert wait_for(lambda: len(probe.utterances) == 3, TIMEOUT_S), probe.utterances
            assert wait_for(lambda: probe.diagnostics and status_values(
                probe.diagnostics[-1]).get('utterances') == '3', 3.0)
        expected = offline(stream3, vad)
        assert len(expected) == 3
        for message, want, (file_start, file_end) in zip(probe.utterances, expected,
                                                         stream3.file_spans, strict=True):
            start = stamp_of(message)
            # Stamped with the capture time of its first sample: exactly the offline result,
            # inside its file (or its pre-roll) and as long as the speech in it.
            assert start == pytest.approx(want.start_time, abs=1e-6)
            assert file_start - 0.1 <= start < file_end
            duration = len(message.audio.data) / 2 / RATE
            assert duration == pytest.approx(want.duration, abs=1 / RATE)
            assert 0.8 <= duration <= file_end - file_start
            assert bytes(message.audio.data) == encode_s16le(want.samples)
            assert message.header.frame_id == FRAME_ID
        assert probe.speaking == [True, False] * 3
        values = status_values(probe.diagnostics[-1])
        assert probe.diagnostics[-1].status[0].level == bytes([OK])
        assert int(values['utterances']) == 3
        assert values['state'] == 'listening'
    finally:
        vad.destroy_node()


def test_silero_detector_through_the_node(ros_context, make_node, stream2: Stream) -> None:
    pytest.importorskip('silero_vad', reason='silero-vad is not installed (requirements/bench.in)')
    vad = start_vad(ros_context, detector='silero', frame_ms=32)
    probe = Probe(make_node('probe'))
    try:
        with spinning(ros_context, vad, probe.node):
            probe.announce()
            probe.send_pcm(vad, stream2.pcm, T0)
            probe.settle(vad)
            assert wait_for(lambda: len(probe.utterances) >= 2, TIMEOUT_S), probe.utterances
        expected = offline(stream2, vad)
        assert [stamp_of(message) for message in probe.utterances] == pytest.approx(
            [utterance.start_time for utterance in expected], abs=1e-6)
        for message, (file_start, file_end) in zip(probe.utterances[:1], stream2.file_spans,
                                                   strict=False):
            assert file_start - 0.2 <= stamp_of(message) < file_end
    finally:
        vad.destroy_node()


def test_robot_speaking_mutes_the_detector(ros_context, make_node, stream2: Stream) -> None:
    vad = start_vad(ros_context)
    probe = Probe(make_node('probe'))
    half = len(stream2.pcm) // 2 // 640 * 640
    try:
        with spinning(ros_context, vad, probe.node):
            probe.robot.publish(Bool(data=True))
            assert wait_for(lambda: vad.segmenter.muted, 2.0)
            # The first file is the robot's own voice: ignored.
            probe.send_pcm(vad, stream2.pcm[:half], T0)
            probe.settle(vad)
            assert probe.utterances == [] and probe.speaking == []
            probe.robot.publish(Bool(data=False))
            assert wait_for(lambda: not vad.segmenter.muted, 2.0)
            probe.send_pcm(vad, stream2.pcm[half:], T0 + half / 2 / RATE)
            probe.settle(vad)
            assert wait_for(lambda: len(probe.utterances) == 1, TIMEOUT_S)
        assert probe.speaking == [True, False]
        assert stamp_of(probe.utterances[0]) >= stream2.file_spans[1][0] - 0.1
        assert vad.segmenter.stats.muted_samples == half // 2
    finally:
        vad.destroy_node()


def test_bad_messages_are_counted_and_good_audio_around_them_is_kept(
        ros_context, make_node, stream2: Stream) -> None:
    vad = start_vad(ros_context)
    probe = Probe(make_node('probe'))
    first_end = stream2.file_spans[0][1]
    split = round((first_end + 0.5 - T0) * RATE) // 320 * 640
    try:
        with spinning(ros_context, vad, probe.node):
            probe.send_pcm(vad, stream2.pcm[:split], T0)
            # In the silence between the files: an odd byte count, an empty message.
            probe.send(vad, b'\x01' * 321, T0 + split / 2 / RATE)
            probe.send(vad, b'', T0 + split / 2 / RATE)
            probe.send_pcm(vad, stream2.pcm[split:], T0 + split / 2 / RATE)
            probe.settle(vad)
            assert wait_for(lambda: len(probe.utterances) == 2, TIMEOUT_S)
            assert vad.counters['malformed'] == 1 and vad.counters['empty'] == 1
            # An audio_info the node cannot use: audio is dropped (counted), ERROR reported.
            probe.announce(coding_format='MP3')
            assert wait_for(lambda: vad.format is None, 2.0)
            probe.send_pcm(vad, stream2.pcm[:split], T0 + 100.0)
            probe.settle(vad)
            assert vad.counters['unusable'] >= split // 640
            count = len(probe.diagnostics)
            assert wait_for(lambda: len(probe.diagnostics) > count, 3.0)
            assert probe.diagnostics[-1].status[0].level == bytes([ERROR])
            assert 'MP3' in probe.diagnostics[-1].status[0].message
            # A good one again: back to work.
            probe.announce()
            assert wait_for(lambda: vad.format is not None, 2.0)
            probe.send_pcm(vad, stream2.pcm[:split], T0 + 200.0)
            probe.settle(vad)
            assert wait_for(lambda: len(probe.utterances) == 3, TIMEOUT_S)
        assert probe.speaking == [True, False] * 3
    finally:
        vad.destroy_node()


def test_48k_stereo_input_is_downmixed_and_resampled(ros_context, make_node,
                                                     stream2: Stream) -> None:
    vad = start_vad(ros_context, channel=1, channels=2)
    probe = Probe(make_node('probe'))
    speech = soxr.resample(stream2.samples, RATE, 48000)
    # Channel 0 is another microphone's faint noise, channel 1 the speech.
    noise = np.random.default_rng(0).standard_normal(len(speech)) * 1e-3
    stereo = encode_s16le(np.stack([noise, speech], axis=1).ravel())
    try:
        with spinning(ros_context, vad, probe.node):
            probe.announce(rate=48000, channels=2)
            assert wait_for(lambda: vad.format == PcmFormat(48000, 2), 2.0)
            probe.send_pcm(vad, stereo, T0, rate=48000, frame_bytes=4)
            probe.settle(vad)
            assert wait_for(lambda: len(probe.utterances) == 2, TIMEOUT_S)
        expected = offline(stream2, vad)
        for message, want in zip(probe.utterances, expected, strict=True):
            assert stamp_of(message) == pytest.approx(want.start_time, abs=0.045)
            assert len(message.audio.data) / 2 / RATE == pytest.approx(want.duration, abs=0.09)
    finally:
        vad.destroy_node()


def test_plain_audio_data_is_stamped_by_reception(ros_context, make_node,
                                                  stream2: Stream) -> None:
    vad = start_vad(ros_context, input_type='plain', frame_id='mic0')
    probe = Probe(make_node('probe'), stamped=False)
    try:
        with spinning(ros_context, vad, probe.node):
            clock_start = probe.node.get_clock().now().nanoseconds / 1e9
            probe.send_pcm(vad, stream2.pcm, 0.0)
            probe.settle(vad)
            assert wait_for(lambda: len(probe.utterances) == 2, TIMEOUT_S)
        expected = offline(stream2, vad)
        stamps = [stamp_of(m) for m in probe.utterances]
        # Chunks are laid end to end from the first reception time (faster than real time
        # here): the spacing is the audio's, the origin the node's clock.
        assert stamps[1] - stamps[0] == pytest.approx(
            expected[1].start_time - expected[0].start_time, abs=1e-6)
        assert abs(stamps[0] - (expected[0].start_time - T0) - clock_start) < 1.0
        assert all(m.header.frame_id == 'mic0' for m in probe.utterances)
    finally:
        vad.destroy_node()


@pytest.mark.parametrize(('name', 'value'), [
    ('frame_ms', 25), ('aggressiveness', 5), ('input_type', 'compressed'),
    ('sample_format', 'MP3'), ('hangover_ms', -5.0), ('onset_frames', 20),
])
def test_invalid_parameter_is_refused_naming_it(ros_context, name: str, value: object) -> None:
    with pytest.raises(ParameterError, match=name):
        start_vad(ros_context, **{name: value})


def test_segmenter_config_follows_the_parameters(ros_context) -> None:
    vad = start_vad(ros_context, frame_ms=30, hangover_ms=150, pre_roll_ms=60.0)
    try:
        assert vad.config == segmenter_config(vad.settings)
        assert (vad.config.frame_ms, vad.config.hangover_ms) == (30, 150.0)
    finally:
        vad.destroy_node()


def test_node_process_refuses_a_bad_frame_length_and_stops_cleanly(ros_process) -> None:
    refused = ros_process(python_command(module='ser_ros.ros.vad_node'),
                          parameters={'frame_ms': 25}, timeout=20)
    assert refused.wait(15) == EXIT_BAD_PARAMETER
    output = refused.output()
    assert 'frame_ms' in output and '10, 20, 30' in output and 'Traceback' not in output
    running = ros_process(python_command(module='ser_ros.ros.vad_node'), timeout=20)
    assert wait_for(lambda: 'listening on' in running.output(), 15)
    assert running.stop() == 0
    assert 'Traceback' not in running.output()
