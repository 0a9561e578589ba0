"""emotion_node: classify each utterance's emotion and publish it as vision_msgs/Classification.

Subscribes ``utterance`` (audio_common_msgs/AudioDataStamped, S16LE mono at ``sample_rate``,
stamped with the first sample's time, as vad_node publishes it) and publishes ``emotion``: one
ObjectHypothesis{class_id, score} per label of the model, in the model's label order, scores
summing to 1, stamped with the audio time of the utterance's end and the input's frame_id.

The subscription callback only checks and queues the utterance: inference runs on a worker
thread, so a slow model never blocks the executor. The queue is bounded (``queue_size``); when
it is full the oldest waiting utterance is dropped (the newest is the most relevant to the
conversation), and drops are counted, logged and reported on /diagnostics. The model is loaded
at start (a missing or corrupt file stops the node with one clear message naming the path)
and warmed up on the worker before the first utterance is taken.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from audio_common_msgs.msg import AudioDataStamped
from rclpy.node import Node
from vision_msgs.msg import Classification, ObjectHypothesis

from ser_ros.core.checkpoint import CheckpointError, default_model_path
from ser_ros.core.inference import DEVICE_CHOICES, Recognizer, load_recognizer
from ser_ros.core.threads import limit_cpu_threads
from ser_ros.ros.diagnostics import ERROR, OK, WARN, create_diagnostics_publisher, make_status
from ser_ros.ros.node_main import StartupError, run_node
from ser_ros.ros.params import EXIT_BAD_PARAMETER, ParameterError, Spec, declare_parameters
from ser_ros.ros.topics import EMOTION, UTTERANCE, qos_for

NODE_NAME = 'emotion_node'
# Exit status when the model cannot be loaded (a bad parameter exits with EXIT_BAD_PARAMETER).
EXIT_NO_MODEL = 1
NS_PER_S = 1_000_000_000
S16_BYTES = 2
S16_SCALE = 32768.0
WORKER_JOIN_TIMEOUT_S = 10.0
QUEUE_POLL_S = 0.1
LOG_THROTTLE_S = 1.0
# Per-utterance timings kept for benchmarks and diagnostics (newest last).
TIMING_HISTORY = 2000
_CUDA_INDEX = re.compile(r'cuda:\d+')


def _device_problem(value: str) -> str | None:
    if value in DEVICE_CHOICES or _CUDA_INDEX.fullmatch(value):
        return None
    return f'must be one of {", ".join(DEVICE_CHOICES)} or cuda:N'


PARAMETERS = (
    Spec('model_path', '', 'checkpoint or ensemble file (.pt) to run; empty: the shipped model '
         'in the package share directory (models/)'),
    Spec('device', 'auto', 'where the network runs: auto (CUDA when available, else CPU), cpu, '
         'cuda or cuda:N', check=_device_problem),
    Spec('bf16', True, 'run under bfloat16 autocast (CPUs with AVX512-BF16/AMX, recent GPUs); '
         'falls back to float32 with a warning where unsupported'),
    Spec('skip_padding', True, 'reuse the network\'s response to the padding before utterances '
         'shorter than its 5 s window instead of convolving it (same probabilities; a third or '
         'more less network time on 2-3 s utterances); false: run the whole network'),
    Spec('trailing_silence_s', 0.5, 'seconds of silence appended to each utterance before its '
         'features: the model learnt from recordings that end in silence, vad_node cuts where '
         'the speech ends; costs no waiting, a little network time', low=0.0, high=5.0),
    Spec('queue_size', 4, 'utterances waiting for inference; when full, the oldest is dropped',
         low=1, high=100),
    Spec('max_batch', 8, 'utterances classified in one network call when several wait (after '
         'a stall, in fast bag replays): ~12% less network time each at 4; 1: one at a time',
         low=1, high=64),
    Spec('sample_rate', 16000, 'sample rate of the S16LE mono utterances, Hz', low=8000,
         high=48000),
    Spec('threads', 1, 'CPU threads of the network and the front end (torch intra-op and '
         'numpy/scipy BLAS, process-wide); 1 keeps latency steady when other processes share '
         'the CPU (2 threads were 2-5x slower than 1 under load here, and idle BLAS threads '
         'busy-wait on a core); 0: the libraries\' defaults (all cores)', low=0, high=256),
    Spec('warm_up', True, 'run the model on silence at start so the first utterance is fast'),
    Spec('diagnostics_period_s', 1.0, 'seconds between /diagnostics reports', low=0.1,
         high=60.0),
)

T = TypeVar('T')


class DropOldestQueue(Generic[T]):
    """Thread-safe bounded FIFO: putting into a full queue drops (and returns) the oldest item."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f'queue size must be at least 1, got {maxsize}')
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._condition = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._condition:
            return len(self._items)

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    def put(self, item: T) -> T | None:
        """Append ``item``; return the item dropped to make room, or None."""
        with self._condition:
            if self._closed:
                raise RuntimeError('queue is closed')
            dropped = self._items.popleft() if len(self._items) >= self.maxsize else None
            self._items.append(item)
            self._condition.notify()
            return dropped

    def get(self, timeout: float | None = None) -> T | None:
        """Take the oldest item; None when the queue is closed or ``timeout`` passes."""
        items = self.get_many(1, timeout)
        return items[0] if items else None

    def get_many(self, most: int, timeout: float | None = None) -> list[T]:
        """Take up to ``most`` oldest items once there is one; [] when closed or timed out."""
        with self._condition:
            self._condition.wait_for(lambda: self._items or self._closed, timeout)
            if self._closed:
                return []
            return [self._items.popleft() for _ in range(min(most, len(self._items)))]

    def close(self) -> None:
        """Wake every waiting consumer; later gets return None."""
        with self._condition:
            self._closed = True
            self._items.clear()
            self._condition.notify_all()


@dataclass(frozen=True)
class UtteranceTiming:
    """Where one utterance's time went in this node (time.monotonic() stamps, seconds).

    Keyed by ``end_ns``, the stamp of the published Classification (audio time of the
    utterance's end), so a benchmark can join it with the VAD's and a listener's records.
    Utterances that waited together are handled as one ``batch``: the front ends of all, then
    one network call. Each utterance waited for both, so ``features_s`` and ``inference_s``
    are the batch's; the cost per utterance is those divided by ``batch``.
    """

    end_ns: int
    received: float    # the subscription callback got the message
    started: float     # the worker took it (with its batch) from the queue
    features_s: float  # front ends (resample, fix length, features, normalise) of the batch
    inference_s: float  # network and softmax of the batch
    published: float   # publish() returned
    batch: int = 1     # utterances in that network call


@dataclass(frozen=True)
class Utterance:
    """One checked utterance waiting for inference."""

    samples: np.ndarray
    start_ns: int
    end_ns: int
    frame_id: str
    received: float  # time.monotonic() when it arrived


def check_utterance(message: AudioDataStamped, sample_rate: int, received: float) -> Utterance:
    """Decode and check one utterance message; raise ValueError saying what is wrong."""
    data = bytes(message.audio.data)
    if not data:
        raise ValueError('empty utterance (no audio bytes)')
    if len(data) % S16_BYTES:
        raise ValueError(f'{len(data)} audio bytes are not whole S16LE samples (odd count)')
    samples = np.frombuffer(data, dtype='<i2').astype(np.float32) / np.float32(S16_SCALE)
    start_ns = message.header.stamp.sec * NS_PER_S + message.header.stamp.nanosec
    end_ns = start_ns + round(len(samples) * NS_PER_S / sample_rate)
    return Utterance(samples, start_ns, end_ns, message.header.frame_id, received)


def classification(labels: Sequence[str], probabilities: np.ndarray, end_ns: int,
                   frame_id: str) -> Classification:
    """Classification message: one hypothesis per label, in order, scores summing to 1."""
    scores = np.asarray(probabilities, dtype=np.float64)
    scores = scores / scores.sum()
    message = Classification()
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(end_ns, NS_PER_S)
    message.header.frame_id = frame_id
    message.results = [ObjectHypothesis(class_id=label, score=float(score))
                       for label, score in zip(labels, scores, strict=True)]
    return message


class EmotionNode(Node):
    """Utterance -> emotion probabilities, inference on a worker thread with a bounded queue."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        try:
            self._config = declare_parameters(self, PARAMETERS)
            limit_cpu_threads(self._config['threads'])
            self._model_path = self._resolve_model_path(self._config['model_path'])
            self._recognizer = self._load(self._model_path)
        except StartupError:
            self.destroy_node()
            raise
        except ParameterError as error:
            self.destroy_node()
            raise StartupError(str(error), EXIT_BAD_PARAMETER) from None
        self.labels = self._recognizer.labels
        self._lock = threading.Lock()
        self._counts = {'received': 0, 'published': 0, 'dropped': 0, 'malformed': 0,
                        'failed': 0}
        self._reported = dict(self._counts)
        self._last_report = time.monotonic()
        self._last_latency_s: float | None = None
        self._timings: deque[UtteranceTiming] = deque(maxlen=TIMING_HISTORY)
        self._last_problem = ''
        self._state = 'warming_up' if self._config['warm_up'] else 'ready'
        self._queue: DropOldestQueue[Utterance] = DropOldestQueue(self._config['queue_size'])
        self._publisher = self.create_publisher(Classification, EMOTION,
                                                qos_for(EMOTION).to_rclpy())
        self._diagnostics = create_diagnostics_publisher(self)
        self._worker = threading.Thread(target=self._work, name='emotion_inference',
                                        daemon=True)
        self._worker.start()
        self.create_subscription(AudioDataStamped, UTTERANCE, self._on_utterance,
                                 qos_for(UTTERANCE).to_rclpy())
        self.create_timer(self._config['diagnostics_period_s'], self._report)
        self.get_logger().info(
            f'model {self._model_path} on {self._recognizer.device}'
            f'{" (bf16)" if self._recognizer.bf16 else ""}, labels {list(self.labels)}; '
            f'listening on {self.resolve_topic_name(UTTERANCE)}')

    @property
    def bf16(self) -> bool:
        """Whether the network runs under bfloat16 autocast (asked for and supported)."""
        return self._recognizer.bf16

    @staticmethod
    def _resolve_model_path(value: str) -> Path:
        return Path(value).expanduser() if value else default_model_path()

    def _load(self, path: Path) -> Recognizer:
        hint = '' if self._config['model_path'] else ' (model_path is empty: the shipped model)'
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                recognizer = load_recognizer(
                    path, device=self._config['device'], bf16=self._config['bf16'],
                    skip_padding=self._config['skip_padding'],
                    trailing_silence_s=self._config['trailing_silence_s'])
        except CheckpointError as error:
            raise StartupError(f'parameter \'model_path\': cannot load the model{hint}: '
                               f'{error}', EXIT_NO_MODEL) from None
        except ValueError as error:
            # resolve_device: e.g. CUDA requested but not available.
            raise StartupError(f'parameter \'device\': {error}', EXIT_BAD_PARAMETER) from None
        for warning in caught:
            self.get_logger().warning(str(warning.message))
        return recognizer

    # -- subscription side (executor thread): check, queue, never block -------------------

    def _on_utterance(self, message: AudioDataStamped) -> None:
        received = time.monotonic()
        with self._lock:
            self._counts['received'] += 1
        try:
            utterance = check_utterance(message, self._config['sample_rate'], received)
        except ValueError as error:
            self._problem('malformed', f'malformed utterance ignored: {error}')
            return
        try:
            dropped = self._queue.put(utterance)
        except RuntimeError:   # shutting down
            return
        if dropped is not None:
            self._problem('dropped', f'inference queue full ({self._queue.maxsize}): dropped '
                                     f'the utterance ending at {dropped.end_ns / NS_PER_S:.3f} s')

    def _problem(self, count: str, text: str) -> None:
        with self._lock:
            self._counts[count] += 1
            self._last_problem = text
        self.get_logger().warning(text, throttle_duration_sec=LOG_THROTTLE_S)

    # -- worker thread: warm up, then infer and publish ----------------------------------

    def _work(self) -> None:
        if self._config['warm_up']:
            started = time.monotonic()
            self._recognizer.warm_up()
            with self._lock:
                self._state = 'ready'
            self.get_logger().info(f'warmed up in {time.monotonic() - started:.1f} s')
        while True:
            utterances = self._queue.get_many(self._config['max_batch'], QUEUE_POLL_S)
            if not utterances:
                if self._queue.closed:
                    return
                continue
            with self._lock:
                self._state = 'busy'
            self._infer(utterances)
            with self._lock:
                self._state = 'ready'

    def _failed(self, utterance: Utterance, error: Exception) -> None:
        self._problem('failed', f'inference failed for the utterance ending at '
                                f'{utterance.end_ns / NS_PER_S:.3f} s: '
                                f'{type(error).__name__}: {error}')

    def _infer(self, utterances: list[Utterance]) -> None:
        """Recognizer.predict_batch() in timed steps: front ends, network, publish."""
        started = time.monotonic()
        ready: list[tuple[Utterance, Any]] = []
        for utterance in utterances:
            try:
                ready.append((utterance, self._recognizer.features(
                    utterance.samples, self._config['sample_rate'])))
            except Exception as error:  # a bad utterance must not end the worker
                self._failed(utterance, error)
        if not ready:
            return
        extracted = time.monotonic()
        try:
            probabilities = self._recognizer.probabilities(
                self._recognizer.stack([features for _, features in ready]))
        except Exception as error:
            for utterance, _ in ready:
                self._failed(utterance, error)
            return
        inferred = time.monotonic()
        for (utterance, _), row in zip(ready, probabilities, strict=True):
            message = classification(self.labels, row, utterance.end_ns, utterance.frame_id)
            try:
                self._publisher.publish(message)
            except Exception:  # the context was shut down while inferring
                return
            published = time.monotonic()
            with self._lock:
                self._counts['published'] += 1
                self._last_latency_s = published - utterance.received
                self._timings.append(UtteranceTiming(utterance.end_ns, utterance.received,
                                                     started, extracted - started,
                                                     inferred - extracted, published,
                                                     len(ready)))

    # -- diagnostics -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters and state (received, published, dropped, malformed, failed, handled, ...)."""
        with self._lock:
            counts = dict(self._counts)
            state = self._state
            latency = self._last_latency_s
        counts['handled'] = (counts['published'] + counts['dropped'] + counts['malformed']
                             + counts['failed'])
        return {'state': state, **counts, 'queued': len(self._queue),
                'last_latency_s': latency}

    def timings(self) -> list[UtteranceTiming]:
        """Per-utterance timings of the latest published utterances, oldest first."""
        with self._lock:
            return list(self._timings)

    def _report(self) -> None:
        now = time.monotonic()
        stats = self.stats()
        with self._lock:
            elapsed = max(now - self._last_report, 1e-9)
            new = {key: stats[key] - self._reported[key] for key in self._reported}
            self._reported = {key: stats[key] for key in self._reported}
            self._last_report = now
            problem = self._last_problem
        if new['failed']:
            level, text = ERROR, f'inference failed: {problem}'
        elif new['dropped'] or new['malformed']:
            level, text = WARN, problem
        else:
            level, text = OK, stats['state']
        latency = stats['last_latency_s']
        with self._lock:
            last = self._timings[-1] if self._timings else None
        values = {
            'state': stats['state'],
            'model': str(self._model_path),
            'device': str(self._recognizer.device),
            'labels': ' '.join(self.labels),
            **{key: stats[key] for key in ('received', 'published', 'dropped', 'malformed',
                                           'failed', 'queued')},
            'queue_size': self._queue.maxsize,
            'utterance_rate_hz': new['received'] / elapsed,
            'last_latency_ms': None if latency is None else latency * 1000.0,
            # Split of the latest utterance's time here: waiting, front end, network.
            'last_queue_ms': None if last is None else (last.started - last.received) * 1000.0,
            'last_features_ms': None if last is None else last.features_s * 1000.0,
            'last_inference_ms': None if last is None else last.inference_s * 1000.0,
        }
        self._diagnostics.publish(make_status(self, level, text, values, name='inference'))

    def destroy_node(self) -> None:
        """Stop the worker (after its current utterance), then destroy the node."""
        queue = getattr(self, '_queue', None)
        if queue is not None:
            queue.close()
            self._worker.join(WORKER_JOIN_TIMEOUT_S)
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    """Run the node until Ctrl-C; return the exit status (non-zero when it cannot start)."""
    return run_node(EmotionNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
