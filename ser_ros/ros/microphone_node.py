"""microphone_node: capture a sound card input with sounddevice and publish it as audio chunks.

Publishes ``audio`` (audio_common_msgs/AudioDataStamped: S16LE mono 16 kHz chunks of
``chunk_ms``, each stamped with the capture time of its first sample on the node's clock) and
``audio_info`` (AudioInfo describing that format, transient-local so late subscribers get it).
The device is chosen by name (any part of it, as sounddevice matches) or index; it captures at
``sample_rate`` (0: the device's default) with ``channels`` channels, of which one is used
(``channel``) or all are averaged; soxr resamples to 16 kHz when the device rate differs.

A missing device, or one that stops delivering audio (unplugged), never stops the node: it
logs one clear error naming the available input devices, reports ERROR on /diagnostics and
tries again after a delay that doubles from ``retry_initial_s`` up to ``retry_max_s``.

Time stamps: PortAudio tells, for each block, how long ago its first sample was captured (ADC
time); that age is taken from the node clock's time at the callback. Chunks then follow by
sample count, so stamps are exactly ``chunk_ms`` apart while the stream runs; an overflow or a
stamp jump re-anchors the clock.
"""

from __future__ import annotations

import queue
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from builtin_interfaces.msg import Time
from rclpy.node import Node

from ser_ros.core.pcm import MAX_CHANNELS, downmix, encode_s16le
from ser_ros.ros.diagnostics import ERROR, OK, WARN, create_diagnostics_publisher, make_status
from ser_ros.ros.node_main import run_node
from ser_ros.ros.params import ParameterError, Spec, declare_parameters
from ser_ros.ros.topics import AUDIO, AUDIO_INFO, qos_for

NODE_NAME = 'microphone_node'
OUTPUT_RATE = 16000
OUTPUT_FORMAT = 'S16LE'
BITS_PER_SAMPLE = 16
NS_PER_S = 1_000_000_000
# How often the captured blocks are taken from the audio thread and published.
DRAIN_PERIOD_S = 0.01
# Blocks waiting between the audio thread and the executor (several seconds of audio).
QUEUE_BLOCKS = 500
# A block whose capture time is this far from where the previous one ended re-anchors the
# clock (audio was lost, or the device clock was re-synchronised).
RESYNC_S = 0.05


class Chunker:
    """Turn captured blocks into 16 kHz mono S16LE chunks with first-sample capture times.

    ROS-free: ``push(block, first_sample_time)`` takes ``(frames, channels)`` float32 blocks at
    ``capture_rate`` and returns ``[(pcm_bytes, start_time), ...]`` for every whole chunk of
    ``chunk_ms`` completed. Times follow the sample count from an anchor; a block whose time
    is more than ``RESYNC_S`` away from the predicted one (or ``restart()``) starts afresh.
    """

    def __init__(self, capture_rate: int, channel: int | None = None, chunk_ms: int = 20,
                 output_rate: int = OUTPUT_RATE) -> None:
        self.capture_rate = int(capture_rate)
        self.channel = channel
        self.output_rate = int(output_rate)
        self.chunk_samples = self.output_rate * chunk_ms // 1000
        if self.chunk_samples < 1:
            raise ValueError(f'chunk_ms={chunk_ms} holds no sample at {output_rate} Hz')
        self.resyncs = 0
        self.restart()

    def restart(self) -> None:
        """Forget the clock and any partial chunk (the stream restarts)."""
        import soxr

        self._resampler = (None if self.capture_rate == self.output_rate else
                           soxr.ResampleStream(self.capture_rate, self.output_rate, 1,
                                               dtype='float32'))
        self._anchor: float | None = None
        self._captured = 0
        self._emitted = 0
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, block: np.ndarray, first_sample_time: float) -> list[tuple[bytes, float]]:
        """Add a captured block; return the completed chunks with their start times."""
        if self._anchor is not None:
            predicted = self._anchor + self._captured / self.capture_rate
            if abs(first_sample_time - predicted) > RESYNC_S:
                self.resyncs += 1
                self.restart()
        if self._anchor is None:
            self._anchor = first_sample_time
        mono = downmix(block, self.channel)
        self._captured += len(mono)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono)
        data = np.concatenate([self._pending, mono]) if len(self._pending) else mono
        size = self.chunk_samples
        whole = len(data) - len(data) % size
        self._pending = data[whole:].copy()
        chunks = []
        for offset in range(0, whole, size):
            start = self._anchor + self._emitted / self.output_rate
            chunks.append((encode_s16le(data[offset:offset + size]), start))
            self._emitted += size
        return chunks


def _device_text(value: str) -> str | None:
    return None if value == value.strip() else 'must not start or end with spaces'


PARAMETERS = (
    Spec('device', '', 'input device: an index, or (part of) its name; empty: the default '
         'input device', check=_device_text, int_as_text=True),
    Spec('sample_rate', 0, 'capture rate in Hz; 0: the device default (resampled to 16 kHz)',
         low=0, high=384000),
    Spec('channels', 1, 'channels to capture', low=1, high=MAX_CHANNELS),
    Spec('channel', -1, 'captured channel to publish; -1: the average of all channels',
         low=-1, high=MAX_CHANNELS - 1),
    Spec('chunk_ms', 20, 'length of each published audio chunk, ms', low=10, high=1000),
    Spec('frame_id', 'microphone', 'frame_id of the published audio'),
    Spec('retry_initial_s', 1.0, 'first delay before opening a missing device again, s '
         '(doubles at each failure)', low=0.01, high=3600.0),
    Spec('retry_max_s', 30.0, 'longest delay between attempts to open the device, s',
         low=0.01, high=3600.0),
    Spec('stall_timeout_s', 2.0, 'reopen the device when it delivers no audio this long, s',
         low=0.1, high=3600.0),
    Spec('diagnostics_period_s', 1.0, 'seconds between /diagnostics reports',
         low=0.1, high=60.0),
)


def to_stamp(seconds: float) -> Time:
    """builtin_interfaces/Time of a time in seconds (clamped at 0)."""
    sec, nanosec = divmod(max(0, round(seconds * NS_PER_S)), NS_PER_S)
    return Time(sec=int(sec), nanosec=int(nanosec))


def input_devices(sd: Any) -> list[str]:
    """'index: name (channels ch, rate Hz)' of every input device PortAudio lists."""
    try:
        devices = sd.query_devices()
    except Exception as error:  # noqa: BLE001 - listing is best effort, for the message only
        return [f'(cannot list devices: {error})']
    return [f'{d["index"]}: {d["name"]} ({d["max_input_channels"]} ch, '
            f'{d["default_samplerate"]:g} Hz)' for d in devices if d['max_input_channels'] > 0]


class MicrophoneNode(Node):
    """Capture node: sound card in, 16 kHz mono S16LE chunks out; survives missing devices."""

    def __init__(self, *, node_name: str = NODE_NAME, **kwargs: object) -> None:
        super().__init__(node_name, **kwargs)
        try:
            self.settings = declare_parameters(self, PARAMETERS)
            settings = self.settings
            if settings['channel'] >= settings['channels']:
                raise ParameterError(f"parameter 'channel' must be below channels="
                                     f"{settings['channels']} (or -1 to average them), got "
                                     f"{settings['channel']}")
            if settings['retry_max_s'] < settings['retry_initial_s']:
                raise ParameterError("parameter 'retry_max_s' must be >= retry_initial_s, got "
                                     f"{settings['retry_max_s']}")
        except ParameterError:
            self.destroy_node()
            raise
        device = settings['device']
        self.device: int | str | None = (int(device) if device.isdigit() else device or None)
        self.stream: Any = None
        self.chunker: Chunker | None = None
        self.failures = 0
        self.last_error = ''
        self.available: list[str] = []
        self.next_retry_s: float | None = None
        self.counters = dict.fromkeys(('chunks', 'overflows', 'queue_drops', 'resyncs',
                                       'stalls'), 0)
        self._blocks: queue.Queue = queue.Queue(maxsize=QUEUE_BLOCKS)
        self._last_block_wall = 0.0
        self._retry_timer = None
        self._period = (time.monotonic(), 0)
        self._device_name = ''

        self.audio_publisher = self.create_publisher(AudioDataStamped, AUDIO,
                                                     qos_for(AUDIO).to_rclpy())
        self.info_publisher = self.create_publisher(AudioInfo, AUDIO_INFO,
                                                    qos_for(AUDIO_INFO).to_rclpy())
        self.diagnostics_publisher = create_diagnostics_publisher(self)
        self.info_publisher.publish(AudioInfo(
            channels=1, sample_rate=OUTPUT_RATE, sample_format=OUTPUT_FORMAT,
            bitrate=OUTPUT_RATE * BITS_PER_SAMPLE, coding_format='WAVE'))
        self.create_timer(DRAIN_PERIOD_S, self._drain)
        self.create_timer(settings['diagnostics_period_s'], self._publish_diagnostics)
        self._open()

    # -- device ----------------------------------------------------------------------------

    def _open(self) -> None:
        """Open and start the input stream; on failure log once and schedule a retry."""
        self._cancel_retry()
        try:
            import sounddevice as sd
        except OSError as error:  # PortAudio library missing
            self._failed(f'{error} (install PortAudio: apt-get install libportaudio2)', [])
            return
        if self.failures:
            # PortAudio lists devices once at start: refresh to see newly plugged ones.
            sd._terminate()
            sd._initialize()
        settings = self.settings
        try:
            info = sd.query_devices(self.device, 'input')
            rate = settings['sample_rate'] or int(info['default_samplerate'])
            chunker = Chunker(rate, None if settings['channel'] < 0 else settings['channel'],
                              settings['chunk_ms'])
            stream = sd.InputStream(device=self.device, samplerate=rate,
                                    channels=settings['channels'], dtype='float32',
                                    blocksize=rate * settings['chunk_ms'] // 1000,
                                    callback=self._on_block)
            stream.start()
        except (sd.PortAudioError, ValueError) as error:
            text = str(error)
            if self.device is None and 'device -1' in text:
                text = f'there is no default input device (PortAudio: {text})'
            self._failed(text, input_devices(sd))
            return
        self.stream, self.chunker = stream, chunker
        self._device_name = info['name']
        self._last_block_wall = time.monotonic()
        self.failures, self.last_error, self.next_retry_s = 0, '', None
        self.get_logger().info(f"capturing from '{info['name']}' at {rate} Hz, "
                               f"{settings['channels']} channel(s), publishing "
                               f"{settings['chunk_ms']} ms chunks of 16 kHz mono on "
                               f'{self.audio_publisher.topic_name}')

    def _failed(self, error: str, available: list[str]) -> None:
        self.failures += 1
        self.last_error = error
        self.available = available
        delay = min(self.settings['retry_initial_s'] * 2 ** (self.failures - 1),
                    self.settings['retry_max_s'])
        self.next_retry_s = delay
        wanted = 'the default input device' if self.device is None else f'device {self.device!r}'
        listed = '; '.join(available) if available else 'none'
        self.get_logger().error(f'cannot open {wanted}: {error}. Available input devices: '
                                f'{listed}. Retrying in {delay:g} s (attempt {self.failures})')
        self._retry_timer = self.create_timer(delay, self._open)

    def _cancel_retry(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self.destroy_timer(self._retry_timer)
            self._retry_timer = None

    def _close(self) -> None:
        stream, self.stream = getattr(self, 'stream', None), None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception as error:  # noqa: BLE001 - a vanished device may fail to close
                self.get_logger().debug(f'closing the stream: {error}')

    # -- audio thread ----------------------------------------------------------------------

    def _on_block(self, indata: np.ndarray, frames: int, times: Any, status: Any) -> None:
        """PortAudio callback (audio thread): timestamp the block and queue it, nothing more."""
        now = self.get_clock().now().nanoseconds / NS_PER_S
        rate = self.chunker.capture_rate if self.chunker else OUTPUT_RATE
        adc = times.inputBufferAdcTime
        age = times.currentTime - adc if adc > 0 else frames / rate
        try:
            self._blocks.put_nowait((indata.copy(), now - age, bool(status.input_overflow)))
        except queue.Full:
            self.counters['queue_drops'] += 1

    # -- executor --------------------------------------------------------------------------

    def _drain(self) -> None:
        chunker = self.chunker
        while True:
            try:
                block, start, overflow = self._blocks.get_nowait()
            except queue.Empty:
                break
            self._last_block_wall = time.monotonic()
            if chunker is None:
                continue
            if overflow:
                self.counters['overflows'] += 1
            for pcm, chunk_start in chunker.push(block, start):
                message = AudioDataStamped()
                message.header.stamp = to_stamp(chunk_start)
                message.header.frame_id = self.settings['frame_id']
                message.audio.data = pcm
                self.audio_publisher.publish(message)
                self.counters['chunks'] += 1
        if chunker is not None:
            self.counters['resyncs'] = chunker.resyncs
        self._watch_stream()

    def _watch_stream(self) -> None:
        stream = self.stream
        if stream is None:
            return
        silent = time.monotonic() - self._last_block_wall
        if stream.active and silent < self.settings['stall_timeout_s']:
            return
        self.counters['stalls'] += 1
        self._close()
        self.chunker = None
        self._failed(f'the device stopped delivering audio ({silent:.1f} s without a block; '
                     'unplugged?)', [])

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        started, chunks = self._period
        self._period = (now, self.counters['chunks'])
        wanted = 'default' if self.device is None else str(self.device)
        if self.stream is None:
            level = ERROR
            text = f'no audio input: {self.last_error}' if self.last_error else 'no audio input'
        elif self.counters['overflows'] or self.counters['queue_drops']:
            level, text = WARN, 'capturing, audio lost to overflows'
        else:
            level, text = OK, 'capturing'
        values = {
            'state': 'capturing' if self.stream is not None else 'retrying',
            'device': wanted,
            'device_name': self._device_name if self.stream is not None else '',
            'capture_rate': self.chunker.capture_rate if self.chunker else None,
            'chunk_rate_hz': (self.counters['chunks'] - chunks) / max(now - started, 1e-9),
            **self.counters,
            'failed_attempts': self.failures,
            'next_retry_s': self.next_retry_s,
            'available_input_devices': '; '.join(self.available) or 'none',
            'last_error': self.last_error,
        }
        self.diagnostics_publisher.publish(make_status(self, level, text, values))

    def destroy_node(self) -> None:
        """Stop the capture stream, then destroy the node."""
        self._close()
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    """Run microphone_node until Ctrl-C; exit status 2 for a refused parameter."""
    return run_node(MicrophoneNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
