"""The pipeline under awkward input; nothing good is lost and the nodes stay alive.

Long monologues, minutes of silence, 48 kHz stereo, bad formats, empty and odd-sized
messages, and arbitrary bytes, formats and timings (hypothesis).

Everything goes through real topics (bags replayed with ``ser_bag``'s player or ``ser_pipeline``)
with real RAVDESS speech, except the property tests, which call the vad_node and emotion_node
handlers directly on in-process nodes to throw thousands of odd messages at them quickly.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from ser_ros.bag_tools import build_bag, compose, read_truth
from ser_ros.bags import (
    AUDIO_DATA_STAMPED_TYPE,
    AUDIO_INFO_TYPE,
    NS_PER_S,
    BagWriter,
    audio_chunk_message,
    read_messages,
    write_audio_bag,
)
from ser_ros.cli.bag import Player, main
from ser_ros.core.audio import load_audio
from ser_ros.core.checkpoint import default_model_path
from ser_ros.core.pcm import encode_s16le
from ser_ros.ros.emotion_node import EmotionNode
from ser_ros.ros.topics import DIAGNOSTICS, qos_for
from ser_ros.ros.vad_node import VadNode

from .harness import spinning, wait_for
from .test_emotion_node import build_tiny_checkpoint

SAMPLE_RATE = 16000
START_NS = 1_700_000_000 * NS_PER_S
CHUNK_BYTES = SAMPLE_RATE * 20 // 1000 * 2
RESULT_TIMEOUT_S = 40.0
SER_PIPELINE = str(Path(sys.executable).parent / 'ser_pipeline')
MAX_UTTERANCE_S = 5.0
FRAME_S = 0.02
UTTERANCES = ('Actor_05/03-01-05-01-01-01-05', 'Actor_16/03-01-03-01-02-01-16')


def pick(ravdess_files: list[Path], names: tuple[str, ...]) -> list[Path]:
    return [next(f for f in ravdess_files if str(f).endswith(name + '.flac')) for name in names]


def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class Nodes:
    """vad_node and emotion_node (shipped model) in this process, with a diagnostics probe."""

    def __init__(self, context: Context, **vad_parameters: object) -> None:
        overrides = [Parameter('idle_flush_s', value=0.5),
                     Parameter('diagnostics_period_s', value=0.2)]
        overrides += [Parameter(name, value=value) for name, value in vad_parameters.items()]
        self.vad = VadNode(context=context, parameter_overrides=overrides)
        self.emotion = EmotionNode(context=context, parameter_overrides=[
            Parameter('model_path', value=str(default_model_path())),
            Parameter('diagnostics_period_s', value=0.2)])
        self.diagnostics: list[tuple[str, int, str]] = []
        self.vad.create_subscription(DiagnosticArray, DIAGNOSTICS, self._on_diagnostics,
                                     qos_for(DIAGNOSTICS).to_rclpy())

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        for status in message.status:
            level = status.level if isinstance(status.level, int) else ord(status.level)
            self.diagnostics.append((status.name, level, status.message))

    def answered(self, chunks: int) -> bool:
        """Whether the VAD took `chunks` audio messages and every utterance was handled."""
        stats = self.emotion.stats()
        return (self.vad.counters['messages'] >= chunks and not self.vad.segmenter.is_speaking
                and stats['handled'] == self.vad.counters['utterances_published'])

    def close(self) -> None:
        self.vad.destroy_node()
        self.emotion.destroy_node()


@pytest.fixture
def nodes(ros_context: Context) -> Iterator[Nodes]:
    made = Nodes(ros_context)
    yield made
    made.close()


def play(context: Context, nodes: Nodes, bag: Path, rate: float | None,
         chunks: int) -> None:
    """Replay `bag` with ser_bag's player into the spinning nodes; wait for every answer."""
    player_node = Node('test_player', context=context)
    try:
        with spinning(context, nodes.vad, nodes.emotion):
            assert wait_for(lambda: nodes.emotion.stats()['state'] == 'ready', RESULT_TIMEOUT_S)
            player = Player(player_node, bag, rate)
            assert player.wait_for_subscribers(5.0) == []
            player.play_once()
            assert player.drain()
            assert wait_for(lambda: nodes.answered(chunks), RESULT_TIMEOUT_S), \
                (nodes.vad.counters, nodes.emotion.stats())
            time.sleep(0.5)   # one more diagnostics period
    finally:
        player_node.destroy_node()


@pytest.mark.timeout(90)
def test_sixty_second_monologue_is_split_and_nothing_is_lost(
        ros_process: object, tmp_path: Path, ravdess_files: list[Path]) -> None:
    # Sentences of many actors back to back, no pause between files: one long monologue.
    files = ravdess_files[5::37]
    waveforms, total = [], 0.0
    for file in files:
        waveforms.append(load_audio(file, SAMPLE_RATE))
        stream, spans = compose(waveforms, SAMPLE_RATE, 0.0)
        total = len(stream) / SAMPLE_RATE
        if total >= 60.0:
            break
    tail = np.zeros(SAMPLE_RATE, dtype=np.float32)
    write_audio_bag(tmp_path / 'monologue', encode_s16le(np.concatenate([stream, tail])),
                    start_ns=START_NS)
    process = ros_process([SER_PIPELINE, '--bag', str(tmp_path / 'monologue'), '--rate', '20',
                           '--no-policy', '--timeout', '40'], timeout=80)
    assert process.wait(75) == 0, process.describe()
    emotions = [json.loads(line) for line in process.output().splitlines()
                if line.startswith('{')]
    pieces = [(e['start_s'] - START_NS / NS_PER_S, e['end_s'] - START_NS / NS_PER_S)
              for e in emotions]
    assert all(end - start <= MAX_UTTERANCE_S + FRAME_S for start, end in pieces), pieces
    assert len(pieces) >= total / MAX_UTTERANCE_S
    for a, b in spans:   # every sentence of the monologue is in some utterance
        assert any(overlaps((a / SAMPLE_RATE, b / SAMPLE_RATE), piece) for piece in pieces)
    covered = sum(end - start for start, end in pieces)
    assert covered >= 0.8 * total, (covered, total)
    assert 'Traceback' not in process.output()


@pytest.mark.timeout(90)
def test_minutes_of_silence_at_full_speed_then_speech(
        ros_process: object, tmp_path: Path, ravdess_files: list[Path]) -> None:
    silence_s = 180
    rng = np.random.default_rng(0)
    speech = load_audio(pick(ravdess_files, UTTERANCES)[0], SAMPLE_RATE)
    stream = np.concatenate([np.zeros(silence_s * SAMPLE_RATE, np.float32), speech,
                             np.zeros(SAMPLE_RATE, np.float32)])
    # Microphone self-noise at about -66 dBFS all along, as a real capture has it. (A noise
    # floor that steps up makes webrtcvad call seconds of it speech while it adapts.)
    pcm = encode_s16le(stream + rng.standard_normal(len(stream)).astype(np.float32) * 5e-4)
    write_audio_bag(tmp_path / 'silence', pcm, start_ns=START_NS)
    # ser_pipeline replays as fast as the VAD keeps up (it paces on the VAD's own counter).
    process = ros_process([SER_PIPELINE, '--bag', str(tmp_path / 'silence'), '--rate', '1000',
                           '--timeout', '40'], timeout=80)
    assert process.wait(75) == 0, process.describe()
    lines = [json.loads(line) for line in process.output().splitlines() if line.startswith('{')]
    emotions = [line for line in lines if line['type'] == 'emotion']
    # Nothing from three minutes of silence; the sentence after it is answered (in one or
    # two utterances: some sentences hold a pause longer than the VAD's hangover).
    speech_start = START_NS / NS_PER_S + silence_s
    speech_end = speech_start + len(speech) / SAMPLE_RATE
    assert 1 <= len(emotions) <= 2, process.describe()
    assert all(speech_start - 0.2 <= e['start_s'] < e['end_s'] <= speech_end for e in emotions)
    assert f'{len(emotions)} emotion(s), 0 dropped' in process.output()
    assert 'Traceback' not in process.output()


@pytest.mark.timeout(90)
def test_48_khz_stereo_input(ros_context: Context, ros_process: object, nodes: Nodes,
                             tmp_path: Path, ravdess_files: list[Path]) -> None:
    files = pick(ravdess_files, UTTERANCES)
    bag = tmp_path / 'stereo'
    assert main(['build', str(bag), '--audio', *map(str, files), '--sample-rate', '48000',
                 '--channels', '2', '--start-time', str(START_NS / NS_PER_S)]) == 0
    truth = read_truth(bag)
    records = list(read_messages(bag))
    info = records[0][1]
    assert (info.sample_rate, info.channels) == (48000, 2)
    chunks = len(records) - 1
    assert len(records[1][1].audio.data) == 48000 * 2 * 2 // 50
    play(ros_context, nodes, bag, 8.0, chunks)
    assert nodes.vad.counters['utterances_published'] == len(files)
    assert nodes.emotion.stats()['published'] == len(files)
    assert nodes.vad.format.sample_rate == 48000 and nodes.vad.format.channels == 2
    ends = [u.end_ns / NS_PER_S for u in nodes.vad.published]
    assert ends == pytest.approx([span.end_s for span in truth], abs=0.15)


@pytest.mark.timeout(90)
def test_bad_messages_keep_the_nodes_alive_and_lose_no_good_audio(
        ros_context: Context, nodes: Nodes, tmp_path: Path, ravdess_files: list[Path]) -> None:
    """Empty, odd-sized, unusable-format and format-less audio around two good sentences."""
    first, second = (load_audio(f, SAMPLE_RATE) for f in pick(ravdess_files, UTTERANCES))
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    bag = tmp_path / 'bad'
    with BagWriter(bag) as writer:
        store = writer.typestore
        stamp = START_NS
        bag_time = START_NS   # strictly increasing, so that the replay order is this order
        infos = []

        def write(topic: str, msgtype: str, message: object) -> None:
            nonlocal bag_time
            bag_time = max(bag_time + 1000, stamp)
            writer.write(topic, msgtype, message, bag_time)

        def audio(data: bytes) -> None:
            nonlocal stamp
            write('/audio', AUDIO_DATA_STAMPED_TYPE, audio_chunk_message(store, data, stamp))
            if len(data) == CHUNK_BYTES:   # bad messages take no time
                stamp += 20_000_000

        def info(rate: int, channels: int, sample_format: str, coding: str = 'WAVE') -> None:
            message = store.types[AUDIO_INFO_TYPE](channels=channels, sample_rate=rate,
                                                   sample_format=sample_format, bitrate=0,
                                                   coding_format=coding)
            write('/audio_info', AUDIO_INFO_TYPE, message)
            infos.append(message)

        def pcm(samples: np.ndarray) -> None:
            data = encode_s16le(samples)
            for start in range(0, len(data) - CHUNK_BYTES + 1, CHUNK_BYTES):
                audio(data[start:start + CHUNK_BYTES])

        half = gap[:SAMPLE_RATE // 2]
        # No audio_info yet: the parameters' format (16 kHz mono S16LE) applies.
        pcm(np.concatenate([gap, first, half]))
        audio(b'')
        audio(b'\x01\x02\x03')
        pcm(half)
        info(16000, 1, 'MP3')             # unsupported: audio dropped until a good one
        pcm(half)
        info(16000, 1, 'S16LE', 'mp3')    # not PCM either
        pcm(half)
        info(16000, 1, 'S16LE')           # good again
        pcm(half)
        audio(b'\x00' * 641)
        audio(b'')
        pcm(np.concatenate([gap, second, gap]))
    chunks = writer.count - len(infos)
    play(ros_context, nodes, bag, 8.0, chunks)
    counters = nodes.vad.counters
    assert counters['utterances_published'] == 2 and nodes.emotion.stats()['published'] == 2
    assert counters['empty'] == 2 and counters['malformed'] == 2
    # Both bad audio_info messages and (about) the second of audio after each; the format
    # arrives on its own topic, so a chunk or two either side may race it.
    assert counters['unusable'] >= 2 + 2 * (SAMPLE_RATE // 2 // 320) - 4
    errors = [d for d in nodes.diagnostics if d[0].startswith('vad_node') and d[1] >= 1]
    assert errors, nodes.diagnostics
    assert nodes.vad.state() != 'no_format'


# -- property tests: arbitrary input straight into the handlers ------------------------------

# Seconds fit builtin_interfaces/Time (int32) with room for an utterance after them.
LATEST_S = 2**31 - 1000
STAMPS = st.builds(lambda sec, nsec: (sec, nsec), st.integers(0, LATEST_S),
                   st.integers(0, NS_PER_S - 1))
AUDIO_BYTES = st.one_of(st.binary(max_size=4000),
                        st.integers(0, 200).map(lambda n: b'\x00\x10' * n))
INFOS = st.builds(lambda rate, channels, fmt, coding: (rate, channels, fmt, coding),
                  st.sampled_from([0, 1, 8000, 16000, 22050, 44100, 48000, 96000, 10**9]),
                  st.integers(0, 70),
                  st.sampled_from(['S16LE', 'S24LE', 'S32LE', 'F32LE', 'U8', 's16le', 'MP3',
                                   '', 'S16BE']),
                  st.sampled_from(['WAVE', 'wave', 'PCM', '', 'mp3', 'opus']))
EVENTS = st.lists(st.one_of(st.tuples(st.just('audio'), AUDIO_BYTES, STAMPS),
                            st.tuples(st.just('info'), INFOS)), max_size=25)


@pytest.fixture(scope='module')
def module_context() -> Iterator[Context]:
    import rclpy

    context = Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()


def stamped(data: bytes, stamp: tuple[int, int], frame_id: str = 'mic') -> AudioDataStamped:
    message = AudioDataStamped()
    message.header.stamp.sec, message.header.stamp.nanosec = stamp
    message.header.frame_id = frame_id
    message.audio.data = data
    return message


class Chunks(list):
    """Audio chunks with a short repr (hypothesis prints the test's arguments)."""

    def __repr__(self) -> str:
        return f'<{len(self)} speech chunks>'


@pytest.fixture(scope='module')
def speech_chunks(ravdess_files: list[Path]) -> Chunks:
    samples = load_audio(pick(ravdess_files, UTTERANCES)[0], SAMPLE_RATE)
    pcm = encode_s16le(np.concatenate([samples, np.zeros(SAMPLE_RATE, np.float32)]))
    return Chunks(pcm[i:i + CHUNK_BYTES]
                  for i in range(0, len(pcm) - CHUNK_BYTES + 1, CHUNK_BYTES))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=EVENTS)
def test_vad_audio_handler_survives_anything(module_context: Context,
                                             speech_chunks: list[bytes], events: list) -> None:
    node = VadNode(context=module_context)
    try:
        audio_calls = bad_infos = 0
        for event in events:
            if event[0] == 'audio':
                node._on_audio(stamped(event[1], event[2]))
                audio_calls += 1
            else:
                rate, channels, fmt, coding = event[1]
                unusable = node.counters['unusable']
                node._on_info(AudioInfo(sample_rate=rate, channels=channels, sample_format=fmt,
                                        coding_format=coding, bitrate=0))
                bad_infos += node.counters['unusable'] - unusable
            counters = node.counters
            assert counters['messages'] == audio_calls
            # Each audio message is taken or rejected once; unusable also counts bad formats.
            assert counters['empty'] + counters['malformed'] + counters['unusable'] - bad_infos \
                <= counters['messages']
            assert node.state() in ('no_format', 'muted', 'speaking', 'listening', 'waiting')
            assert (node.format is None) == bool(node.format_error)
        node._publish_diagnostics()
        # Then good input: a valid format and a real sentence give exactly one utterance.
        node.flush()
        node._on_info(AudioInfo(sample_rate=16000, channels=1, sample_format='S16LE',
                                coding_format='WAVE', bitrate=256000))
        before = node.counters['utterances_published']
        start = (LATEST_S + 100) * NS_PER_S   # later than any stamp above
        for index, chunk in enumerate(speech_chunks):
            node._on_audio(stamped(chunk, divmod(start + index * 20_000_000, NS_PER_S)))
        node.flush()
        assert node.counters['utterances_published'] == before + 1
    finally:
        node.destroy_node()


@pytest.fixture(scope='module')
def tiny_emotion_node(module_context: Context, tmp_path_factory: pytest.TempPathFactory,
                      ravdess_files: list[Path]) -> Iterator[EmotionNode]:
    model = build_tiny_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.pt',
                                  ravdess_files[:2])
    node = EmotionNode(context=module_context, parameter_overrides=[
        Parameter('model_path', value=str(model)), Parameter('warm_up', value=False),
        Parameter('queue_size', value=2)])
    yield node
    node.destroy_node()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(utterances=st.lists(st.tuples(st.one_of(st.binary(max_size=3000),
                                               st.integers(0, 8000).map(
                                                   lambda n: b'\x10\x00' * n)),
                                     STAMPS, st.text(max_size=20)), max_size=6))
def test_emotion_utterance_handler_survives_anything(tiny_emotion_node: EmotionNode,
                                                     utterances: list) -> None:
    node = tiny_emotion_node
    before = node.stats()
    for data, stamp, frame_id in utterances:
        node._on_utterance(stamped(data, stamp, frame_id))
    assert node.stats()['received'] == before['received'] + len(utterances)
    assert wait_for(lambda: node.stats()['handled'] == node.stats()['received'], 20.0)
    after = node.stats()
    bad = sum(1 for data, _, _ in utterances if not data or len(data) % 2)
    assert after['malformed'] - before['malformed'] == bad
    assert after['failed'] == before['failed']
    assert after['queued'] == 0 and after['state'] in ('ready', 'busy')


def test_player_needs_a_positive_rate_and_messages(ros_context: Context, make_node: object,
                                                   tmp_path: Path,
                                                   ravdess_files: list[Path]) -> None:
    build_bag(tmp_path / 'b', ravdess_files[:1], start_ns=START_NS)
    node = make_node('player')
    with pytest.raises(ValueError, match='rate must be positive'):
        Player(node, tmp_path / 'b', 0.0)
    with pytest.raises(ValueError, match='no messages'):
        Player(node, tmp_path / 'b', 1.0, topics=['/nothing'])


# -- the readable table of ser_pipeline --table ----------------------------------------------

def test_table_rows_wait_for_their_decision() -> None:
    from ser_ros.ros.pipeline import Table

    lines: list[str] = []
    table = Table(lines.append, START_NS, with_policy=True)
    scores = {'neutral': 0.1, 'happy': 0.7, 'sad': 0.2}
    emotion = {'start_ns': START_NS + NS_PER_S, 'end_ns': START_NS + 3 * NS_PER_S,
               'label': 'happy', 'scores': scores, 'latency_s': 0.1234}
    table.emotion(emotion)
    assert len(lines) == 1 and lines[0].split()[4:7] == ['neu', 'hap', 'sad']
    table.engage({'engage': True, 'reason': 'stay engaged'})
    assert lines[1].split() == ['1', '1.00-3.00', 'happy', '10', '70', '20', '123', 'ms',
                                'ENGAGE', '(stay', 'engaged)']
    table.engage({'engage': False, 'reason': 'silence timeout'})   # no emotion before it
    assert lines[2].split() == ['LEAVE', '(silence', 'timeout)']
    table.emotion({**emotion, 'latency_s': None, 'start_ns': None})
    table.finish()
    assert lines[3].split()[:3] == ['2', '?-3.00', 'happy'] and lines[3].endswith('-')


@pytest.mark.timeout(90)
def test_pipeline_table_shows_each_utterance_and_decision(
        ros_process: object, tmp_path: Path, ravdess_files: list[Path]) -> None:
    files = pick(ravdess_files, UTTERANCES)
    bag = tmp_path / 'table'
    assert main(['build', str(bag), '--audio', *map(str, files), '--start-time',
                 str(START_NS / NS_PER_S)]) == 0
    process = ros_process([SER_PIPELINE, '--bag', str(bag), '--rate', '5', '--table',
                           '--timeout', '40'], timeout=80)
    assert process.wait(75) == 0, process.describe()
    output = process.output()
    header = next(line for line in output.splitlines() if 'emotion' in line and 'latency' in line)
    assert header.split()[4:11] == ['neu', 'hap', 'sad', 'ang', 'fea', 'dis', 'sur']
    rows = [line.split() for line in output.splitlines()
            if line.split() and line.split()[0].isdigit()]
    assert [row[0] for row in rows] == ['1', '2'], output
    for row, span in zip(rows, read_truth(bag), strict=True):
        start, end = (float(x) for x in row[1].split('-'))
        assert start < span.end_s - START_NS / NS_PER_S < end + 0.2
        assert sum(int(x) for x in row[3:10]) == pytest.approx(100, abs=4)
        assert row[11] == 'ms' and row[12] in ('ENGAGE', 'LEAVE')
    assert '{' not in output.split(header)[1].split('[INFO]')[0]
    assert 'Traceback' not in output
