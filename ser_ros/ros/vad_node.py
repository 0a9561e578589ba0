"""vad_node: cut the microphone stream into utterances with webrtcvad or Silero VAD.

Subscribes ``audio`` (audio_common_msgs/AudioDataStamped, or plain AudioData with
``input_type: plain`` for ARI's ``/audio/channel0`` and ros-drivers ``audio_capture``) and
``audio_info`` (the stream format, transient-local; the ``sample_rate``/``channels``/
``sample_format`` parameters are used until one arrives, or always with
``use_audio_info: false``). Any rate, channel count and PCM sample format of
``ser_ros.core.pcm`` is accepted: one channel is selected (``channel``) or all are averaged,
and the audio is resampled to 16 kHz, a rate webrtcvad takes and the classifier's rate.

Publishes ``utterance`` (AudioDataStamped: one whole utterance, S16LE mono 16 kHz, stamped
with the capture time of its first sample, frame_id from the input) and ``is_speaking``
(std_msgs/Bool, on each change). A ``robot_speaking`` Bool mutes the detector while the robot
talks (the patient's utterance in progress is closed and published first). /diagnostics
reports state, rates and counters at ``diagnostics_period_s``.

Segmentation is ``ser_ros.core.segmenter.Segmenter``; its parameters are this node's
(detector, aggressiveness or silero_threshold, frame_ms, onset/offset smoothing, pre-roll,
hangover, min/max utterance length: longer speech is split, not dropped). ``detector``
webrtcvad (default) is cheap; silero (``frame_ms: 32``, the silero-vad package) misses less
speech in noise and takes far less background talk for speech, at ~20x the CPU. Time stamps
come from the input headers; for plain AudioData (or a zero stamp) they are counted from the
reception time of the stream.

Bad input never stops the node: empty, malformed (a byte count that is not whole frames,
NaN floats) or unusable messages (an audio_info with an unsupported format) are counted,
logged as warnings (throttled) and reported; the audio before and after them is kept.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from builtin_interfaces.msg import Time
from rclpy.node import Node
from std_msgs.msg import Bool

from ser_ros.core.pcm import (
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    SAMPLE_FORMATS,
    PcmFormat,
    decode_pcm,
    downmix,
    encode_s16le,
)
from ser_ros.core.segmenter import Segmenter, SegmenterConfig, Utterance
from ser_ros.core.voice_activity import DETECTORS
from ser_ros.ros.diagnostics import ERROR, OK, WARN, create_diagnostics_publisher, make_status
from ser_ros.ros.node_main import run_node
from ser_ros.ros.params import ParameterError, Spec, declare_parameters
from ser_ros.ros.topics import AUDIO, AUDIO_INFO, IS_SPEAKING, ROBOT_SPEAKING, UTTERANCE, qos_for

NODE_NAME = 'vad_node'
NS_PER_S = 1_000_000_000
INPUT_TYPES = ('stamped', 'plain')
# audio_info coding formats that mean raw PCM (audio_capture says 'wave', others 'PCM' or '').
PCM_CODINGS = ('', 'WAVE', 'WAV', 'PCM', 'RAW')
LOG_THROTTLE_S = 5.0
# How often the idle and robot_speaking timeouts are checked.
WATCH_PERIOD_S = 0.1
# Plain AudioData has no stamp: chunks are laid end to end from the first reception time. The
# clock is taken again from the reception time when a chunk arrives later than this behind
# (the source paused or lost audio), or this far ahead (faster-than-real-time replay drifts).
PLAIN_CLOCK_LATE_S = 1.0
PLAIN_CLOCK_AHEAD_S = 60.0
_DEFAULTS = SegmenterConfig()
# Published utterances remembered for benchmarks (newest last).
PUBLISHED_HISTORY = 2000


@dataclass(frozen=True)
class PublishedUtterance:
    """When an utterance went out, for latency benchmarks.

    ``end_ns`` is the audio time of its end as emotion_node computes it from the message
    (start stamp plus sample count), so records join on it; ``decision_delay_s`` is the stream
    time from the end of its last voiced frame to the decision (hangover); ``published`` is
    time.monotonic() right before publish().
    """

    end_ns: int
    duration_s: float
    decision_delay_s: float
    published: float
    split: bool = False   # cut at max_utterance_ms: speech goes on (no hangover)


def _sample_format_problem(value: str) -> str | None:
    if value.strip().upper() in SAMPLE_FORMATS:
        return None
    return f'must be one of {", ".join(SAMPLE_FORMATS)}'


PARAMETERS = (
    Spec('input_type', 'stamped', 'message type on audio: stamped (AudioDataStamped) or plain '
         '(AudioData, stamped here by reception time)', choices=INPUT_TYPES),
    Spec('use_audio_info', True, 'take the stream format from audio_info when one arrives; '
         'false: always use sample_rate, channels and sample_format'),
    Spec('sample_rate', 16000, 'input sample rate in Hz until audio_info says otherwise',
         low=MIN_SAMPLE_RATE, high=MAX_SAMPLE_RATE),
    Spec('channels', 1, 'interleaved input channels until audio_info says otherwise',
         low=1, high=MAX_CHANNELS),
    Spec('sample_format', 'S16LE', 'input PCM sample format until audio_info says otherwise',
         check=_sample_format_problem),
    Spec('channel', -1, 'input channel to use; -1: the average of all channels',
         low=-1, high=MAX_CHANNELS - 1),
    Spec('frame_id', '', 'frame_id of utterances when the input has none (plain AudioData)'),
    Spec('detector', _DEFAULTS.detector, 'frame classifier: webrtcvad (cheap, precise on clean '
         'speech) or silero (Silero VAD: fewer misses in noise, far fewer utterances run '
         'together with voices in the background, ~20x the CPU; needs frame_ms 32 and the '
         'silero-vad package)', choices=tuple(DETECTORS)),
    Spec('aggressiveness', _DEFAULTS.aggressiveness, 'webrtcvad aggressiveness: 0 (keeps the '
         'most audio as speech) .. 3 (rejects the most noise); unused by silero',
         choices=(0, 1, 2, 3)),
    Spec('silero_threshold', _DEFAULTS.silero_threshold, 'silero: a frame is speech when its '
         'speech probability is at least this; unused by webrtcvad', low=0.01, high=0.99),
    Spec('frame_ms', _DEFAULTS.frame_ms, 'VAD frame length in ms: 10, 20 or 30 for webrtcvad, '
         '32 for silero', choices=(10, 20, 30, 32)),
    Spec('onset_window', _DEFAULTS.onset_window, 'onset smoothing: frames considered for the '
         'start of speech', low=1, high=100),
    Spec('onset_frames', _DEFAULTS.onset_frames, 'onset smoothing: voiced frames among the '
         'onset_window last ones that start speech', low=1, high=100),
    Spec('offset_window', _DEFAULTS.offset_window, 'offset smoothing: frames considered for a '
         'pause', low=1, high=100),
    Spec('offset_frames', _DEFAULTS.offset_frames, 'offset smoothing: speech pauses when at '
         'most this many of the offset_window last frames are voiced', low=0, high=99),
    Spec('pre_roll_ms', _DEFAULTS.pre_roll_ms, 'audio kept before the first voiced frame, ms',
         low=0.0, high=2000.0),
    Spec('hangover_ms', _DEFAULTS.hangover_ms, 'pause after speech before the utterance is '
         'closed, ms (bridges pauses between words)', low=0.0, high=5000.0),
    Spec('end_trim_db', _DEFAULTS.end_trim_db, 'a voiced frame this many dB under the loudest '
         'frame of its utterance counts as silence (trims the VAD overhang); 0: off',
         low=0.0, high=120.0),
    Spec('noise_margin_db', _DEFAULTS.noise_margin_db, 'a voiced frame less than this many dB '
         'over the background level counts as silence; 0: off', low=0.0, high=40.0),
    Spec('noise_window_ms', _DEFAULTS.noise_window_ms, 'the background level is the median '
         'power of the silent frames of this last stretch, ms', low=10.0, high=60000.0),
    Spec('min_utterance_ms', _DEFAULTS.min_utterance_ms, 'shorter speech (coughs, clicks) is '
         'dropped and counted, ms', low=0.0, high=10000.0),
    Spec('max_utterance_ms', _DEFAULTS.max_utterance_ms, 'longer speech is split into pieces of '
         'this length, none dropped, ms', low=100.0, high=600000.0),
    Spec('max_gap_ms', _DEFAULTS.max_gap_ms, 'a time stamp further than this from where the '
         'previous chunk ended restarts the stream, ms', low=1.0, high=60000.0),
    Spec('idle_flush_s', 1.0, 'close the open utterance when no audio arrives for this long '
         '(end of a bag, lost device), s; 0: never', low=0.0, high=3600.0),
    Spec('robot_speaking_timeout_s', 60.0, 'unmute when robot_speaking stays true this long '
         'without a new message, s; 0: never', low=0.0, high=3600.0),
    Spec('stale_audio_s', 5.0, 'diagnostics warn when no audio arrived for this long, s',
         low=0.1, high=3600.0),
    Spec('diagnostics_period_s', 1.0, 'seconds between /diagnostics reports',
         low=0.1, high=60.0),
)

def segmenter_config(values: dict) -> SegmenterConfig:
    """Build the SegmenterConfig from node parameters; ParameterError names the bad one."""
    try:
        return SegmenterConfig.from_parameters(values)
    except ValueError as error:
        raise ParameterError(f'parameter {error}') from None


def stamp_seconds(stamp: Time) -> float:
    """Seconds of a builtin_interfaces/Time."""
    return stamp.sec + stamp.nanosec / NS_PER_S


def to_stamp(seconds: float) -> Time:
    """builtin_interfaces/Time of a time in seconds (clamped at 0)."""
    sec, nanosec = divmod(max(0, round(seconds * NS_PER_S)), NS_PER_S)
    return Time(sec=int(sec), nanosec=int(nanosec))


class VadNode(Node):
    """Voice activity detection node: audio chunks in, whole utterances out."""

    def __init__(self, *, node_name: str = NODE_NAME, **kwargs: object) -> None:
        super().__init__(node_name, **kwargs)
        try:
            self.settings = declare_parameters(self, PARAMETERS)
            self.config = segmenter_config(self.settings)
            self._fallback_format = PcmFormat(self.settings['sample_rate'],
                                              self.settings['channels'],
                                              self.settings['sample_format'])
            self._check_channel(self._fallback_format)
            # Loads Silero's model; DetectorUnavailableError (a ValueError) without silero-vad.
            self.segmenter = Segmenter(self.config, input_rate=self._fallback_format.sample_rate)
        except (ParameterError, ValueError) as error:
            self.destroy_node()
            raise ParameterError(str(error)) from None
        settings = self.settings
        self.format: PcmFormat | None = self._fallback_format
        self.format_error = ''
        self.counters = dict.fromkeys(('messages', 'empty', 'malformed', 'unusable',
                                       'utterances_published', 'format_changes',
                                       'idle_flushes'), 0)
        self.audio_seconds = 0.0
        self.last_utterance: Utterance | None = None
        self.last_latency_s: float | None = None
        self.published: deque[PublishedUtterance] = deque(maxlen=PUBLISHED_HISTORY)
        # Wall seconds spent in the audio callback (decode, resample, VAD, publish).
        self.callback_s = 0.0
        self._frame_id = settings['frame_id']
        self._plain_next: float | None = None
        self._last_audio_wall: float | None = None
        self._muted_since_wall: float | None = None
        self._period_start = (time.monotonic(), 0, 0.0, 0)

        stamped = settings['input_type'] == 'stamped'
        self._stamped = stamped
        self.utterance_publisher = self.create_publisher(
            AudioDataStamped, UTTERANCE, qos_for(UTTERANCE).to_rclpy())
        self.speaking_publisher = self.create_publisher(
            Bool, IS_SPEAKING, qos_for(IS_SPEAKING).to_rclpy())
        self.diagnostics_publisher = create_diagnostics_publisher(self)
        self.create_subscription(AudioDataStamped if stamped else AudioData, AUDIO,
                                 self._on_audio, qos_for(AUDIO).to_rclpy())
        self.create_subscription(AudioInfo, AUDIO_INFO, self._on_info,
                                 qos_for(AUDIO_INFO).to_rclpy())
        self.create_subscription(Bool, ROBOT_SPEAKING, self._on_robot_speaking,
                                 qos_for(ROBOT_SPEAKING).to_rclpy())
        self.create_timer(WATCH_PERIOD_S, self._watch)
        self.create_timer(settings['diagnostics_period_s'], self._publish_diagnostics)
        self.get_logger().info(
            f'listening on {self.resolve_topic_name(AUDIO)} '
            f'({"AudioDataStamped" if stamped else "AudioData"}, {self._describe(self.format)} '
            f'until audio_info says otherwise); {self._describe_detector()}, '
            f'{self.config.frame_ms} ms frames, end of speech '
            f'decided {self.config.decision_delay_ms:g} ms after it')

    # -- input -----------------------------------------------------------------------------

    def _on_info(self, message: AudioInfo) -> None:
        if not self.settings['use_audio_info']:
            return
        try:
            coding = message.coding_format.strip().upper()
            if coding not in PCM_CODINGS:
                expected = ', '.join(c or 'empty' for c in PCM_CODINGS)
                raise ValueError(f'coding_format {message.coding_format!r} is not raw PCM '
                                 f'(expected one of {expected})')
            fmt = PcmFormat(message.sample_rate, message.channels, message.sample_format)
            self._check_channel(fmt)
        except ValueError as error:
            self.counters['unusable'] += 1
            if self.format is not None or self.format_error != str(error):
                self.get_logger().error(f'unusable audio_info, dropping audio until a valid '
                                        f'one arrives: {error}')
            self._change_format(None, str(error))
            return
        if fmt != self.format:
            self.get_logger().info(f'audio format from audio_info: {self._describe(fmt)}')
            self._change_format(fmt, '')

    def _change_format(self, fmt: PcmFormat | None, error: str) -> None:
        self.format_error = error
        if fmt == self.format:
            return
        self.counters['format_changes'] += 1
        self._publish(self.segmenter.flush())
        self.format = fmt
        self._plain_next = None
        if fmt is not None:
            stats = self.segmenter.stats
            self.segmenter = Segmenter(self.config, input_rate=fmt.sample_rate)
            self.segmenter.stats = stats

    def _describe_detector(self) -> str:
        config = self.config
        if config.detector == 'silero':
            return f'Silero VAD threshold {config.silero_threshold:g}'
        return f'webrtcvad aggressiveness {config.aggressiveness}'

    def _check_channel(self, fmt: PcmFormat) -> None:
        channel = self.settings['channel']
        if channel >= fmt.channels:
            raise ValueError(f'parameter channel={channel} does not exist in a stream of '
                             f'{fmt.channels} channel(s)')

    def _on_audio(self, message: AudioDataStamped | AudioData) -> None:
        entered = time.perf_counter()
        try:
            self._take_audio(message)
        finally:
            self.callback_s += time.perf_counter() - entered

    def _take_audio(self, message: AudioDataStamped | AudioData) -> None:
        self.counters['messages'] += 1
        self._last_audio_wall = time.monotonic()
        data = message.audio.data if self._stamped else message.data
        if len(data) == 0:
            self._reject('empty', 'empty audio message ignored')
            return
        if self.format is None:
            self._reject('unusable', f'audio dropped: {self.format_error}')
            return
        try:
            samples = downmix(decode_pcm(data, self.format), self._channel())
            start_time = self._start_time(message, len(samples) / self.format.sample_rate)
            utterances = self.segmenter.push(samples, start_time)
        except ValueError as error:
            self._reject('malformed', f'malformed audio message ignored: {error}')
            return
        self.audio_seconds += len(samples) / self.format.sample_rate
        if self._stamped and message.header.frame_id:
            self._frame_id = message.header.frame_id
        self._publish(utterances)

    def _channel(self) -> int | None:
        channel = self.settings['channel']
        return None if channel < 0 else channel

    def _start_time(self, message: AudioDataStamped | AudioData, duration: float) -> float:
        """Capture time of the chunk's first sample: its stamp, else the reception clock."""
        if self._stamped:
            stamp = message.header.stamp
            if stamp.sec or stamp.nanosec:
                return stamp_seconds(stamp)
        received = self.get_clock().now().nanoseconds / NS_PER_S - duration
        expected = self._plain_next
        resync = (expected is None or received - expected > PLAIN_CLOCK_LATE_S
                  or expected - received > PLAIN_CLOCK_AHEAD_S)
        start = received if resync else expected
        self._plain_next = start + duration
        return start

    def _reject(self, counter: str, text: str) -> None:
        self.counters[counter] += 1
        self.get_logger().warning(f'{text} ({self.counters[counter]} so far)',
                                  throttle_duration_sec=LOG_THROTTLE_S)

    def _on_robot_speaking(self, message: Bool) -> None:
        speaking = bool(message.data)
        self._muted_since_wall = time.monotonic() if speaking else None
        if speaking != self.segmenter.muted:
            self.get_logger().info('robot speaking: muted' if speaking
                                   else 'robot silent: listening')
        self._publish(self.segmenter.mute(speaking))

    # -- output ----------------------------------------------------------------------------

    def _publish(self, utterances: Sequence[Utterance]) -> None:
        """Publish finished utterances and the speaking-state changes, in order."""
        for utterance in utterances:
            message = AudioDataStamped()
            message.header.stamp = to_stamp(utterance.start_time)
            message.header.frame_id = self._frame_id
            message.audio.data = encode_s16le(utterance.samples)
            # Stamped before publish(): in one process a subscriber's thread can take the
            # message before publish() returns here.
            published = time.monotonic()
            self.utterance_publisher.publish(message)
            start_ns = message.header.stamp.sec * NS_PER_S + message.header.stamp.nanosec
            self.published.append(PublishedUtterance(
                start_ns + round(len(utterance.samples) * NS_PER_S / utterance.sample_rate),
                utterance.duration, utterance.decided_time - utterance.end_time,
                published, utterance.split))
            self.counters['utterances_published'] += 1
            self.last_utterance = utterance
            self.last_latency_s = (self.get_clock().now().nanoseconds / NS_PER_S
                                   - utterance.end_time)
            self.get_logger().info(
                f'utterance {utterance.start_time:.3f}-{utterance.end_time:.3f} s '
                f'({utterance.duration:.2f} s{", split" if utterance.split else ""})')
        for change in self.segmenter.pop_speaking_changes():
            self.speaking_publisher.publish(Bool(data=change.speaking))

    def flush(self) -> None:
        """Close and publish the open utterance (end of input)."""
        self._publish(self.segmenter.flush())

    def _watch(self) -> None:
        now = time.monotonic()
        idle = self.settings['idle_flush_s']
        if (idle > 0 and self.segmenter.is_speaking and self._last_audio_wall is not None
                and now - self._last_audio_wall > idle):
            self.counters['idle_flushes'] += 1
            self.get_logger().warning(f'no audio for {idle:g} s during speech: closing the '
                                      'utterance')
            self.flush()
        timeout = self.settings['robot_speaking_timeout_s']
        if (timeout > 0 and self._muted_since_wall is not None
                and now - self._muted_since_wall > timeout):
            self.get_logger().warning(f'robot_speaking true for {timeout:g} s without update: '
                                      'listening again')
            self._muted_since_wall = None
            self._publish(self.segmenter.mute(False))

    def state(self) -> str:
        """One word for diagnostics: no_format, muted, speaking, listening or waiting."""
        if self.format is None:
            return 'no_format'
        if self.segmenter.muted:
            return 'muted'
        if self.segmenter.is_speaking:
            return 'speaking'
        return 'listening' if self._last_audio_wall is not None else 'waiting'

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        started, messages, seconds, bad = self._period_start
        elapsed = max(now - started, 1e-9)
        bad_now = sum(self.counters[k] for k in ('empty', 'malformed', 'unusable'))
        self._period_start = (now, self.counters['messages'], self.audio_seconds, bad_now)
        stats = self.segmenter.stats
        state = self.state()
        silent_for = None if self._last_audio_wall is None else now - self._last_audio_wall
        if self.format is None:
            level, text = ERROR, f'audio dropped: {self.format_error}'
        elif silent_for is None:
            level, text = WARN, f'waiting for audio on {self.resolve_topic_name(AUDIO)}'
        elif silent_for > self.settings['stale_audio_s']:
            level, text = WARN, f'no audio for {silent_for:.0f} s'
        elif bad_now > bad:
            level, text = WARN, f'{bad_now - bad} bad audio message(s) ignored'
        else:
            level, text = OK, state
        last = self.last_utterance
        values = {
            'state': state,
            'format': self._describe(self.format) if self.format else self.format_error,
            'message_rate_hz': (self.counters['messages'] - messages) / elapsed,
            'audio_rate': (self.audio_seconds - seconds) / elapsed,
            'audio_s': self.audio_seconds,
            **self.counters,
            'utterances': stats.utterances,
            'splits': stats.splits,
            'dropped_short': stats.dropped_short,
            'stream_restarts': stats.stream_restarts,
            'voiced_fraction': stats.voiced_frames / stats.frames if stats.frames else 0.0,
            'muted_s': stats.muted_samples / (self.format.sample_rate if self.format else 1),
            'last_utterance_s': last.duration if last else None,
            'detector': self.config.detector,
            'decision_delay_s': self.config.decision_delay_ms / 1000,
            'last_decision_delay_s': self.published[-1].decision_delay_s if self.published
            else None,
            'last_latency_s': self.last_latency_s,
        }
        self.diagnostics_publisher.publish(make_status(self, level, text, values))

    @staticmethod
    def _describe(fmt: PcmFormat | None) -> str:
        if fmt is None:
            return 'none'
        return f'{fmt.sample_rate} Hz, {fmt.channels} ch, {fmt.sample_format}'


def main(args: Sequence[str] | None = None) -> int:
    """Run vad_node until Ctrl-C; exit status 2 for a refused parameter."""
    return run_node(VadNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
