"""ser_pipeline: run the whole node set in one process, fed from a bag or audio files.

    ser_pipeline --bag recording.mcap --rate 5
    ser_pipeline --audio a.wav b.flac --model my.pt --no-policy

Starts the nodes that ``ros2 launch ser_ros ser.launch.py use_microphone:=false`` starts (the
node set, parameters file and remappings of ``ser_ros.ros.node_set``) in one process on a
SingleThreadedExecutor, plays the input onto the audio topic (R times real time), and prints
each /emotion result as one JSON line on stdout (``"type": "emotion"``: utterance start and
end in audio time, top label, every score in model order, end-to-end latency), followed by
the policy's decision (``"type": "engage"``). With ``--table`` it prints a readable table
instead: one row per utterance (its time from the start of the input, top emotion, every
probability in percent, latency, and the engage decision that followed). Logs go to stderr.
Playback never runs further ahead of the VAD than half its audio queue (it slows down on a
busy machine rather than lose audio); the stamps come from the input, so the results do not
depend on the speed.

It exits by itself once the input is exhausted and every utterance has been answered: after
the last chunk the VAD closes an utterance still open, and the program waits until every
utterance has been classified (or counted as dropped) and every emotion has been decided on.
Exit status: 0 done, 1 not finished within --timeout, 2 bad input or options (or a node's
own start-up status).
"""

from __future__ import annotations

import argparse
import bisect
import importlib
import inspect
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Bool
from vision_msgs.msg import Classification

from ser_ros.bags import (
    AUDIO_DATA_STAMPED_TYPE,
    AUDIO_DATA_TYPE,
    AUDIO_INFO_TYPE,
    AudioFormat,
    chunk_pcm,
    read_messages,
)
from ser_ros.core.audio import load_audio
from ser_ros.core.pcm import encode_s16le
from ser_ros.ros import node_set
from ser_ros.ros.node_main import StartupError
from ser_ros.ros.params import EXIT_BAD_PARAMETER
from ser_ros.ros.topics import (
    AUDIO,
    AUDIO_INFO,
    AUDIO_STREAM_QOS,
    EMOTION,
    ENGAGE,
    UTTERANCE,
    qos_for,
)

PROGRAM = 'ser_pipeline'
NODE_NAME = 'ser_pipeline'
EXIT_DONE = 0
EXIT_UNFINISHED = 1
EXIT_USAGE = 2
NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
SAMPLE_RATE = 16000
CHUNK_MS = 20
DEFAULT_GAP_S = 1.0
DEFAULT_TIMEOUT_S = 60.0
# Counts must stay balanced this long before the run counts as finished.
SETTLE_S = 0.3
POLL_S = 0.02
DISCOVERY_TIMEOUT_S = 10.0
# Audio messages the player lets the VAD lag behind: half its subscription queue.
MAX_BACKLOG = AUDIO_STREAM_QOS.depth // 2
JSON_DECIMALS = 4


@dataclass(frozen=True)
class FeedItem:
    """One message to play: when (input seconds), where, what, and the audio time it covers."""

    offset_s: float
    topic: str           # 'audio' or 'audio_info'
    payload: object      # serialised bytes (from a bag) or an rclpy message
    end_ns: int | None = None


@dataclass
class Feed:
    """Everything to play, in order, with a description for the log."""

    items: list[FeedItem]
    description: str
    start_ns: int | None = None   # audio time of the first sample, for the table's clock

    @property
    def chunks(self) -> int:
        """Number of audio messages."""
        return sum(item.topic == 'audio' for item in self.items)


@dataclass
class _JoinedAudio:
    """Consecutive audio messages being joined into one (see bag_feed's ``join_ms``)."""

    offset_s: float
    start_ns: int
    end_ns: int
    frame_id: str
    data: bytearray

    def follows(self, start_ns: int, frame_id: str, sample_rate: int) -> bool:
        """Whether audio stamped ``start_ns`` continues this one without a gap."""
        half_sample_ns = NS_PER_S // (2 * sample_rate)
        return frame_id == self.frame_id and abs(start_ns - self.end_ns) <= half_sample_ns

    def item(self) -> FeedItem:
        """One AudioDataStamped played when its last part would have been."""
        return audio_item(bytes(self.data), self.start_ns, self.end_ns, self.offset_s,
                          self.frame_id)


def audio_item(data: bytes, start_ns: int, end_ns: int, offset_s: float,
               frame_id: str) -> FeedItem:
    """Return an AudioDataStamped of ``data`` stamped ``start_ns``, played at ``offset_s``."""
    message = AudioDataStamped()
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(start_ns, NS_PER_S)
    message.header.frame_id = frame_id
    message.audio.data = data
    return FeedItem(offset_s, 'audio', message, end_ns)


def bag_feed(path: Path, topic: str | None = None, join_ms: int | None = None) -> Feed:
    """Read audio_info and AudioDataStamped messages of a bag (timing from the bag).

    ``join_ms`` joins consecutive audio messages (contiguous stamps, same frame_id and format)
    into messages of up to that length, each played when its last part was recorded: the
    same audio and stamps in fewer messages, which a fast replay needs (rclpy moves a few
    thousand messages per second; an hour of 20 ms chunks is 180,000).
    """
    records = list(read_messages(path))
    audio_topics = sorted({r.topic for r, _ in records if r.msgtype == AUDIO_DATA_STAMPED_TYPE})
    plain = sorted({r.topic for r, _ in records if r.msgtype == AUDIO_DATA_TYPE})
    if topic is None:
        if len(audio_topics) != 1:
            found = audio_topics or 'none'
            extra = f' (plain AudioData on {plain} is not supported)' if plain else ''
            raise ValueError(f'{path}: need exactly one AudioDataStamped topic, found {found}'
                             f'{extra}; choose one with --bag-topic')
        topic = audio_topics[0]
    elif topic not in audio_topics:
        raise ValueError(f'{path}: no AudioDataStamped messages on {topic}; '
                         f'AudioDataStamped topics: {audio_topics}')
    if join_ms is not None and join_ms <= 0:
        raise ValueError(f'join_ms must be positive, got {join_ms}')
    audio_format = AudioFormat()
    items: list[FeedItem] = []
    joined: _JoinedAudio | None = None
    first_ns: int | None = None
    start_ns: int | None = None
    for record, message in records:
        if record.msgtype != AUDIO_INFO_TYPE and record.topic != topic:
            continue
        first_ns = record.timestamp_ns if first_ns is None else first_ns
        offset_s = (record.timestamp_ns - first_ns) / NS_PER_S
        if record.msgtype == AUDIO_INFO_TYPE:
            try:
                audio_format = AudioFormat(message.sample_rate, message.channels,
                                           message.sample_format)
            except ValueError:
                pass   # the VAD judges the format itself; only our end-time estimate needs it
            if joined is not None:
                items.append(joined.item())
                joined = None
            items.append(FeedItem(offset_s, AUDIO_INFO, record.data))
            continue
        stamp = message.header.stamp
        chunk_start_ns = stamp.sec * NS_PER_S + stamp.nanosec
        start_ns = chunk_start_ns if start_ns is None else start_ns
        frames = len(message.audio.data) // audio_format.frame_bytes
        end_ns = chunk_start_ns + round(frames * NS_PER_S / audio_format.sample_rate)
        if join_ms is None:
            items.append(FeedItem(offset_s, 'audio', record.data, end_ns))
            continue
        frame_id = message.header.frame_id
        if (joined is not None and joined.follows(chunk_start_ns, frame_id,
                                                  audio_format.sample_rate)
                and end_ns - joined.start_ns <= join_ms * NS_PER_MS):
            joined.data += bytes(message.audio.data)
            joined.offset_s, joined.end_ns = offset_s, end_ns
            continue
        if joined is not None:
            items.append(joined.item())
        joined = _JoinedAudio(offset_s, chunk_start_ns, end_ns, frame_id,
                              bytearray(message.audio.data))
    if joined is not None:
        items.append(joined.item())
    joined_text = '' if join_ms is None else f', joined into messages of up to {join_ms} ms'
    feed = Feed(items, f'bag {path} ({topic}){joined_text}', start_ns)
    if not feed.chunks:
        raise ValueError(f'{path}: no audio messages on {topic}')
    return feed


def audio_files_feed(files: Sequence[Path], gap_s: float, start_ns: int,
                     frame_id: str = 'microphone', chunk_ms: int = CHUNK_MS) -> Feed:
    """Play audio files as 16 kHz mono S16LE chunks of `chunk_ms`, `gap_s` of silence around."""
    gap = np.zeros(round(gap_s * SAMPLE_RATE), dtype=np.float32)
    parts = [gap]
    for path in files:
        parts += [load_audio(path, SAMPLE_RATE), gap]
    audio_format = AudioFormat(SAMPLE_RATE, 1, 'S16LE')
    info = AudioInfo(channels=1, sample_rate=SAMPLE_RATE, sample_format='S16LE',
                     bitrate=audio_format.bitrate, coding_format='WAVE')
    items = [FeedItem(0.0, AUDIO_INFO, info)]
    for index, chunk in enumerate(chunk_pcm(encode_s16le(np.concatenate(parts)), audio_format,
                                            chunk_ms)):
        chunk_start_ns = start_ns + index * chunk_ms * NS_PER_MS
        end_ns = chunk_start_ns + round(len(chunk) // 2 * NS_PER_S / SAMPLE_RATE)
        items.append(audio_item(chunk, chunk_start_ns, end_ns, (end_ns - start_ns) / NS_PER_S,
                                frame_id))
    names = ', '.join(Path(f).name for f in files)
    return Feed(items, f'{len(files)} audio file(s): {names}', start_ns)


def node_class(module_name: str) -> type[Node]:
    """Return the one Node subclass a node module defines."""
    module = importlib.import_module(module_name)
    classes = [value for value in vars(module).values()
               if inspect.isclass(value) and issubclass(value, Node) and value is not Node
               and value.__module__ == module.__name__]
    if len(classes) != 1:
        raise ImportError(f'{module_name} must define exactly one Node class, found '
                          f'{[c.__name__ for c in classes]}')
    return classes[0]


def start_nodes(values: dict[str, str]) -> dict[str, Node]:
    """Create the enabled nodes with the parameters file, overrides and remappings."""
    nodes: dict[str, Node] = {}
    try:
        for spec in node_set.enabled_nodes(values):
            arguments = ['--ros-args', '--params-file', values[node_set.PARAMS_FILE_ARGUMENT]]
            for source, target in node_set.remappings(spec, values):
                arguments += ['-r', f'{source}:={target}']
            overrides = [Parameter(name, value=value)
                         for name, value in node_set.parameter_overrides(spec, values).items()]
            nodes[spec.name] = node_class(spec.module)(cli_args=arguments,
                                                       parameter_overrides=overrides)
    except BaseException:
        for node in nodes.values():
            node.destroy_node()
        raise
    return nodes


def _rounded(value: float) -> float:
    return round(float(value), JSON_DECIMALS)


class Table:
    """Readable table of the results: one row per utterance, the engage decision beside it.

    With a policy, a row waits for the decision that follows its emotion (one per emotion);
    a decision not following an emotion (the silence timeout) gets a line of its own.
    """

    def __init__(self, print_line: Callable[[str], None], start_ns: int | None,
                 with_policy: bool) -> None:
        self.print_line = print_line
        self.start_ns = start_ns
        self.with_policy = with_policy
        self.labels: list[str] | None = None
        self.pending: dict[str, Any] | None = None
        self.rows = 0
        self.lock = threading.Lock()

    def _short(self, label: str) -> str:
        short = {name[:3] for name in self.labels or []}
        return label[:3] if len(short) == len(self.labels or []) else label

    def _clock(self, ns: int | None) -> str:
        if ns is None:
            return '?'
        return f'{(ns - (self.start_ns or 0)) / NS_PER_S:.2f}'

    def _header(self) -> None:
        columns = ' '.join(f'{self._short(label):>{max(3, len(self._short(label)))}}'
                           for label in self.labels)
        self.print_line(f'{"#":>3}  {"time (s)":>15}  {"emotion":<9}  {columns}  '
                        f'{"latency":>7}  decision')

    def _row(self, emotion: dict[str, Any], engage: dict[str, Any] | None) -> None:
        self.rows += 1
        span = (f'{self._clock(emotion["start_ns"])}-{self._clock(emotion["end_ns"])}')
        probabilities = ' '.join(
            f'{round(100 * emotion["scores"].get(label, 0.0)):>{max(3, len(self._short(label)))}}'
            for label in self.labels)
        latency = ('?' if emotion['latency_s'] is None
                   else f'{round(1000 * emotion["latency_s"])} ms')
        decision = '-' if engage is None else _decision_text(engage)
        self.print_line(f'{self.rows:>3}  {span:>15}  {emotion["label"]:<9}  {probabilities}  '
                        f'{latency:>7}  {decision}')

    def emotion(self, emotion: dict[str, Any]) -> None:
        """Add one /emotion result (printed now, or with the decision that follows it)."""
        with self.lock:
            if self.labels is None:
                self.labels = list(emotion['scores'])
                self._header()
            if self.pending is not None:
                self._row(self.pending, None)
            self.pending = emotion if self.with_policy else None
            if not self.with_policy:
                self._row(emotion, None)

    def engage(self, engage: dict[str, Any]) -> None:
        """Add one engage decision: to the waiting row, or on a line of its own."""
        with self.lock:
            if self.pending is not None:
                self._row(self.pending, engage)
                self.pending = None
            else:
                self.print_line(f'{"":>3}  {"":>15}  {_decision_text(engage)}')

    def finish(self) -> None:
        """Print a row still waiting for its decision."""
        with self.lock:
            if self.pending is not None:
                self._row(self.pending, None)
                self.pending = None


def _decision_text(engage: dict[str, Any]) -> str:
    word = 'ENGAGE' if engage['engage'] else 'LEAVE'
    return f'{word} ({engage["reason"]})' if engage.get('reason') else word


@dataclass
class Monitor:
    """Counts what goes over the topics and prints the JSON lines."""

    node: Node
    policy: Node | None
    print_line: Callable[[str], None]
    utterances: dict[int, int] = field(default_factory=dict)    # end_ns -> start_ns
    emotions: int = 0
    engages: int = 0
    published: list[tuple[int, float]] = field(default_factory=list)   # (end_ns, monotonic)
    last_event: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    table: Table | None = None

    def attach(self) -> None:
        """Subscribe to utterance, emotion and engage."""
        self.node.create_subscription(AudioDataStamped, UTTERANCE, self._on_utterance,
                                      qos_for(UTTERANCE).to_rclpy())
        self.node.create_subscription(Classification, EMOTION, self._on_emotion,
                                      qos_for(EMOTION).to_rclpy())
        self.node.create_subscription(Bool, ENGAGE, self._on_engage, qos_for(ENGAGE).to_rclpy())

    def _on_utterance(self, message: AudioDataStamped) -> None:
        start_ns = message.header.stamp.sec * NS_PER_S + message.header.stamp.nanosec
        end_ns = start_ns + round(len(message.audio.data) // 2 * NS_PER_S / SAMPLE_RATE)
        with self.lock:
            self.utterances[end_ns] = start_ns
            self.last_event = time.monotonic()

    def chunk_published(self, end_ns: int) -> None:
        """Note when the audio up to `end_ns` went out (for the latency of its utterance)."""
        with self.lock:
            self.published.append((end_ns, time.monotonic()))

    def _latency(self, end_ns: int, now: float) -> float | None:
        with self.lock:
            index = bisect.bisect_left(self.published, (end_ns, -1.0))
            if index == len(self.published):
                return None
            return now - self.published[index][1]

    def _on_emotion(self, message: Classification) -> None:
        now = time.monotonic()
        end_ns = message.header.stamp.sec * NS_PER_S + message.header.stamp.nanosec
        scores = {h.class_id: h.score for h in message.results}
        top = max(scores, key=scores.__getitem__) if scores else ''
        latency = self._latency(end_ns, now)
        with self.lock:
            self.emotions += 1
            self.last_event = now
            start_ns = self.utterances.get(end_ns)
        record = {
            'type': 'emotion',
            'start_s': None if start_ns is None else start_ns / NS_PER_S,
            'end_s': end_ns / NS_PER_S,
            'frame_id': message.header.frame_id,
            'label': top,
            'confidence': _rounded(scores.get(top, 0.0)),
            'scores': {label: _rounded(score) for label, score in scores.items()},
            'latency_s': None if latency is None else round(latency, 3),
        }
        if self.table is not None:
            self.table.emotion({**record, 'start_ns': start_ns, 'end_ns': end_ns})
        else:
            self.print_line(json.dumps(record))

    def _on_engage(self, message: Bool) -> None:
        reason = self.policy.stats()['last_reason'] if hasattr(self.policy, 'stats') else ''
        with self.lock:
            self.engages += 1
            self.last_event = time.monotonic()
        record = {'type': 'engage', 'engage': bool(message.data), 'reason': reason}
        if self.table is not None:
            self.table.engage(record)
        else:
            self.print_line(json.dumps(record))


def stats_of(node: Node | None) -> dict[str, Any] | None:
    """Return a node's stats() (or its counters) when it offers them, else None."""
    if node is None:
        return None
    if hasattr(node, 'stats'):
        return node.stats()
    return dict(getattr(node, 'counters', {})) or None


class FeedPlayer:
    """Publishes a feed on the audio topics at a multiple of its recorded pace.

    While ``must_wait`` says so, audio is held (flow control); the time held shifts the rest of
    the schedule, so the gaps within the feed keep their lengths.
    """

    def __init__(self, node: Node, monitor: Monitor, audio_topic: str = AUDIO) -> None:
        self.audio = node.create_publisher(AudioDataStamped, audio_topic,
                                           qos_for(AUDIO).to_rclpy())
        self.info = node.create_publisher(AudioInfo, AUDIO_INFO, qos_for(AUDIO_INFO).to_rclpy())
        self.monitor = monitor
        self.played = 0   # audio messages published

    def connected(self) -> bool:
        """Whether both audio topics have a subscriber."""
        return self.audio.get_subscription_count() > 0 and self.info.get_subscription_count() > 0

    def publish(self, item: FeedItem) -> None:
        """Publish one item now and tell the monitor which audio went out."""
        (self.audio if item.topic == 'audio' else self.info).publish(item.payload)
        if item.end_ns is not None:
            self.monitor.chunk_published(item.end_ns)
        self.played += item.topic == 'audio'

    def play(self, items: Sequence[FeedItem], rate: float, must_wait: Callable[[], bool],
             stop: threading.Event, poll_s: float = POLL_S / 4) -> bool:
        """Publish ``items`` at ``rate`` x real time; False if ``stop`` was set first."""
        started = time.monotonic()
        for item in items:
            paused = time.monotonic()
            while item.topic == 'audio' and must_wait():
                if stop.wait(poll_s):
                    return False
            started += time.monotonic() - paused
            delay = started + item.offset_s / rate - time.monotonic()
            if delay > 0 and stop.wait(delay):
                return False
            self.publish(item)
        return True


def _raise_if_shut_down() -> None:
    """Raise ExternalShutdownException once rclpy's signal handler has shut the context down.

    It does so on SIGINT and on SIGTERM (a service manager's stop); only SIGINT also raises
    KeyboardInterrupt, and only when the process did not start with SIGINT ignored.
    """
    if not rclpy.ok():
        raise ExternalShutdownException


class Pipeline:
    """The node set, a player and a monitor in one process."""

    def __init__(self, values: dict[str, str], feed: Feed, rate: float,
                 table: bool = False) -> None:
        self.feed = feed
        self.rate = rate
        self.values = values
        self.nodes = start_nodes(values)
        self.node = Node(NODE_NAME)
        print_line = lambda line: print(line, flush=True)  # noqa: E731
        policy = self.nodes.get('dialogue_policy_node')
        self.monitor = Monitor(self.node, policy, print_line,
                               table=Table(print_line, feed.start_ns, policy is not None)
                               if table else None)
        self.monitor.attach()
        self.player = FeedPlayer(self.node, self.monitor, values['audio_topic'])
        # One executor thread: emotion_node infers on its own worker thread, so callbacks are
        # short, and a single thread moves ~2-3x more audio messages than a thread pool here.
        self.executor = SingleThreadedExecutor()
        for node in (*self.nodes.values(), self.node):
            self.executor.add_node(node)
        self.stop = threading.Event()
        self._spinner = threading.Thread(target=self._spin, name='executor', daemon=True)
        self._playing = threading.Thread(target=self._play, name='player', daemon=True)

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except (ExternalShutdownException, KeyboardInterrupt):
            pass

    def _log(self, text: str) -> None:
        self.node.get_logger().info(text)

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            _raise_if_shut_down()
            if time.monotonic() > deadline or self.stop.wait(POLL_S):
                return False
        return True

    def _backlog(self) -> int:
        """Audio messages played that the VAD has not taken yet (0 when it does not say)."""
        counters = getattr(self.nodes.get('vad_node'), 'counters', None)
        return 0 if counters is None else self.player.played - counters.get('messages', 0)

    def _play(self) -> None:
        # Flow control: never let the VAD fall further behind than half its queue, or its
        # keep-last subscription would overwrite audio.
        try:
            self.player.play(self.feed.items, self.rate,
                             lambda: self._backlog() >= MAX_BACKLOG, self.stop)
        except Exception:
            if rclpy.ok():
                raise
            # Ctrl-C or SIGTERM shut the context down under a publish(): nothing to play to.

    def ready(self) -> bool:
        """Whether the VAD listens and the emotion model has warmed up."""
        emotion = stats_of(self.nodes.get('emotion_node'))
        warm = emotion is None or emotion.get('state') != 'warming_up'
        return warm and self.player.connected()

    def _vad_caught_up(self) -> bool:
        counters = getattr(self.nodes.get('vad_node'), 'counters', None)
        return counters is None or counters.get('messages', 0) >= self.player.played

    def _flush_vad(self) -> None:
        vad = self.nodes.get('vad_node')
        if vad is None or not hasattr(vad, 'flush'):
            return
        done = threading.Event()

        def flush_once() -> None:
            timer.cancel()
            vad.flush()
            done.set()

        # A timer of the VAD node runs in its callback group, never beside its audio callback.
        timer = vad.create_timer(POLL_S, flush_once)  # noqa: F841 (cancelled by itself)
        self._wait(done.is_set, DISCOVERY_TIMEOUT_S)

    def answered(self) -> bool:
        """Whether every utterance seen got its emotion (or was counted as dropped) and policy."""
        monitor = self.monitor
        with monitor.lock:
            utterances, emotions, engages = (len(monitor.utterances), monitor.emotions,
                                             monitor.engages)
        vad = stats_of(self.nodes.get('vad_node'))
        if vad is not None and vad.get('utterances_published', utterances) != utterances:
            return False
        emotion = stats_of(self.nodes.get('emotion_node'))
        if emotion is not None and (emotion['received'] != utterances
                                    or emotion['handled'] != utterances
                                    or emotion['published'] != emotions):
            return False
        policy = stats_of(self.nodes.get('dialogue_policy_node'))
        return policy is None or (policy['received'] == emotions
                                  and policy['decisions'] == engages)

    def run(self, timeout_s: float) -> int:
        """Play the input, wait for every answer; return the exit status."""
        self._spinner.start()
        if not self._wait(self.ready, DISCOVERY_TIMEOUT_S + timeout_s):
            self.node.get_logger().error('the pipeline did not get ready (VAD subscription, '
                                         'model warm-up) in time')
            return EXIT_UNFINISHED
        self._log(f'playing {self.feed.description} at {self.rate:g}x real time')
        self._playing.start()
        self._playing.join()
        _raise_if_shut_down()
        deadline = time.monotonic() + timeout_s
        if not self._wait(self._vad_caught_up, timeout_s):
            self.node.get_logger().error('the VAD did not take all the audio in time')
            return EXIT_UNFINISHED
        self._flush_vad()
        while time.monotonic() < deadline:
            # Nothing new for a moment and every count balanced: all utterances answered.
            if self.answered() and time.monotonic() - self.monitor.last_event >= SETTLE_S:
                return self._summary(EXIT_DONE)
            if self.stop.wait(POLL_S):
                break
            _raise_if_shut_down()
        self.node.get_logger().error(f'not every utterance was answered within {timeout_s:g} s '
                                     f'after the input ended')
        return self._summary(EXIT_UNFINISHED)

    def _summary(self, status: int) -> int:
        if self.monitor.table is not None:
            self.monitor.table.finish()
        emotion = stats_of(self.nodes.get('emotion_node')) or {}
        self._log(f'{len(self.monitor.utterances)} utterance(s), {self.monitor.emotions} '
                  f'emotion(s), {emotion.get("dropped", 0)} dropped, '
                  f'{self.monitor.engages} engage decision(s)')
        return status

    def close(self) -> None:
        """Stop playing and spinning, destroy every node."""
        self.stop.set()
        if self._playing.is_alive():
            self._playing.join()
        self.executor.shutdown()
        if self._spinner.is_alive():
            self._spinner.join()
        for node in (*self.nodes.values(), self.node):
            node.destroy_node()


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see --help)."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description='Run the speech emotion pipeline (VAD -> emotion -> policy) '
        'in one process on a bag or audio files; print each /emotion as a JSON line.')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--bag', type=Path, help='rosbag2 folder, .db3 or .mcap with audio_info '
                        'and AudioDataStamped audio')
    source.add_argument('--audio', type=Path, nargs='+', metavar='FILE',
                        help='audio files, played one after the other with --gap of silence')
    parser.add_argument('--rate', type=float, default=1.0,
                        help='playback speed, times real time (default 1)')
    parser.add_argument('--bag-topic', help='audio topic in the bag when it has several')
    parser.add_argument('--chunk-ms', type=int, default=None,
                        help='audio per played message: audio files are cut into messages of '
                        f'this length (default {CHUNK_MS}, a robot microphone\'s); a bag\'s '
                        'consecutive messages are joined up to it (default: as recorded). '
                        'Fast replays need large messages: an hour of 20 ms chunks is '
                        '180,000 messages')
    parser.add_argument('--gap', type=float, default=DEFAULT_GAP_S,
                        help='seconds of silence around audio files (default %(default)s)')
    parser.add_argument('--model', default=None, help='emotion model checkpoint '
                        '(default: the shipped model)')
    parser.add_argument('--device', default=None, help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--config', type=Path, default=None,
                        help=f'parameters file (default: {node_set.default_config_path()})')
    parser.add_argument('--audio-topic', default=None,
                        help='topic the input is played on and the VAD listens to')
    parser.add_argument('--table', action='store_true',
                        help='print a readable table (one row per utterance: time, emotion, '
                        'probabilities in %%, latency, engage decision) instead of JSON lines')
    parser.add_argument('--no-policy', action='store_true',
                        help='do not start dialogue_policy_node')
    parser.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT_S,
                        help='give up this many seconds after the input ends '
                        '(default %(default)s)')
    arguments = parser.parse_args(argv)
    for name in ('rate', 'timeout', 'chunk_ms'):
        value = getattr(arguments, name)
        if value is not None and not value > 0:
            parser.error(f'--{name.replace("_", "-")} must be positive')
    if arguments.gap < 0:
        parser.error('--gap must not be negative')
    return arguments


def launch_values(arguments: argparse.Namespace) -> dict[str, str]:
    """Launch argument values equivalent to the options (no microphone: the input is played)."""
    overrides = {'use_microphone': 'false', 'use_policy': str(not arguments.no_policy).lower()}
    if arguments.model is not None:
        overrides['model_path'] = str(Path(arguments.model).expanduser().resolve())
    if arguments.device is not None:
        overrides['device'] = arguments.device
    if arguments.audio_topic is not None:
        overrides['audio_topic'] = arguments.audio_topic
    if arguments.config is not None:
        overrides[node_set.PARAMS_FILE_ARGUMENT] = str(arguments.config)
    return node_set.argument_values(overrides)


def _fail(text: str, status: int) -> int:
    print(f'{PROGRAM}: {text}', file=sys.stderr, flush=True)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pipeline on the given input; return the exit status."""
    arguments = parse_arguments(argv)
    values = launch_values(arguments)
    if not Path(values[node_set.PARAMS_FILE_ARGUMENT]).is_file():
        return _fail(f'parameters file {values[node_set.PARAMS_FILE_ARGUMENT]} does not exist',
                     EXIT_USAGE)
    try:
        if arguments.bag is not None:
            feed = bag_feed(arguments.bag, arguments.bag_topic, join_ms=arguments.chunk_ms)
        else:
            feed = audio_files_feed(arguments.audio, arguments.gap, time.time_ns(),
                                    chunk_ms=arguments.chunk_ms or CHUNK_MS)
    except (OSError, ValueError, RuntimeError) as error:
        return _fail(f'cannot read the input: {error}', EXIT_USAGE)
    rclpy.init(args=[PROGRAM])
    pipeline = None
    try:
        try:
            pipeline = Pipeline(values, feed, arguments.rate, arguments.table)
        except StartupError as error:
            return _fail(f'not starting: {error}', error.exit_code)
        except ValueError as error:   # ParameterError and friends name the parameter
            return _fail(f'not starting: {error}', EXIT_BAD_PARAMETER)
        return pipeline.run(arguments.timeout)
    except (KeyboardInterrupt, ExternalShutdownException):
        return EXIT_DONE
    except Exception:
        if rclpy.ok():
            raise
        return EXIT_DONE   # an rclpy call raced the shutdown that a signal started
    finally:
        if pipeline is not None:
            pipeline.close()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
