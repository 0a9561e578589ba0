"""Streaming voice-activity segmentation: audio chunks in, finished utterances out.

A frame classifier (``ser_ros.core.voice_activity``: webrtcvad by default, or Silero VAD with
``detector='silero'``) labels fixed frames voiced or not; this module smooths those labels
into utterances, the same way for either detector:

- Onset: speech starts when at least ``onset_frames`` of the last ``onset_window`` frames are
  voiced. The utterance then begins at the first voiced frame of that window, minus
  ``pre_roll_ms`` of earlier audio (never before the previous utterance's end).
- Offset: speech pauses when at most ``offset_frames`` of the last ``offset_window`` frames
  are voiced; the utterance is closed after ``hangover_ms`` more frames without a new onset,
  and ends at the last voiced frame before the pause. An onset during the hangover continues
  the same utterance.
- Energy gate: a frame the detector calls voiced still counts as silence when it is more than
  ``end_trim_db`` below the loudest frame of the open utterance, or less than
  ``noise_margin_db`` above the background (the median power of the last ``noise_window_ms``
  of frames the detector called silence). webrtcvad keeps 60-100 ms of frames voiced after
  speech stops (its overhang), so without the gate every utterance ends, and is decided,
  that much after the acoustic end.
- Speech shorter than ``min_utterance_ms`` is dropped (counted); speech longer than
  ``max_utterance_ms`` is split into consecutive pieces (none dropped).

Time stamps: each chunk's ``start_time`` is the capture time of its first sample. Within
``max_gap_ms`` of where the previous chunk ended, the segmenter follows the caller's clock
(jitter and clock drift pass through, samples are treated as continuous). A larger jump
forwards (dropped audio) or backwards (a new stream, a bag played again) ends the stream: the
audio before the jump is fully processed, the open utterance is closed (emitted when long
enough), and a fresh stream starts at the new chunk. Nothing is raised for it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import soxr

from ser_ros.core.pcm import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from ser_ros.core.voice_activity import (
    DETECTORS,
    WEBRTCVAD,
    WEBRTCVAD_AGGRESSIVENESS,
    FrameClassifier,
    check_detector,
    check_threshold,
    make_classifier,
)

# What webrtcvad (the default detector) takes; DETECTORS[name] has each detector's.
VAD_RATES = WEBRTCVAD.rates
VAD_FRAME_MS = WEBRTCVAD.frame_ms
VAD_AGGRESSIVENESS = WEBRTCVAD_AGGRESSIVENESS
VAD_DETECTORS = tuple(DETECTORS)
MS_PER_SECOND = 1000.0
# Most speaking-state changes kept for pop_speaking_changes() when the caller never drains them.
MAX_PENDING_CHANGES = 1024


@dataclass(frozen=True)
class SegmenterConfig:
    """Parameters of the segmenter; defaults tuned for a care robot listening to one patient.

    With the defaults the end of an utterance is decided 260 ms after its last voiced frame
    (``decision_delay_ms``): 60 ms for the offset window to empty plus 200 ms hangover. The
    energy gate puts that last voiced frame at the acoustic end of speech, not 60-100 ms later
    where webrtcvad's own overhang would put it.

    ``detector='silero'`` needs ``frame_ms=32`` (Silero VAD's window); the smoothing settings
    are in ms or frames and are shared: with 32 ms frames the onset window spans 320 ms and the
    end is decided 320 ms after the last voiced frame.
    """

    # webrtcvad: cheap, precise on clean close-talk speech. silero: fewer misses in noise, far
    # fewer utterances run together with voices in the background, ~20x the CPU (docs/peers.md).
    detector: str = 'webrtcvad'
    # 2 rejects white noise up to about -30 dBFS yet keeps quiet (calm, sad) RAVDESS speech;
    # 3 loses much of that quiet speech, 0-1 take moderate noise for speech.
    aggressiveness: int = 2
    # 20 ms: fine enough for 100 ms boundaries, half the VAD calls of 10 ms frames.
    # Silero takes only 32 ms (512 samples at 16 kHz).
    frame_ms: int = 20
    # 16 kHz: the classifier's rate, so the VAD stream is also the utterance audio.
    vad_rate: int = 16000
    # Onset at 6 voiced of the last 10 frames (200 ms): a 100 ms click or breath does not
    # start speech; the start is still exact because it is taken from the first voiced frame.
    onset_window: int = 10
    onset_frames: int = 6
    # Pause when at most 1 of the last 4 frames (80 ms) is voiced: one stray voiced frame in
    # a pause does not keep the utterance open.
    offset_window: int = 4
    offset_frames: int = 1
    # 100 ms before the first voiced frame: webrtcvad misses unvoiced onsets (the /k/ of "kids").
    pre_roll_ms: float = 100.0
    # 200 ms of pause after the offset before closing: bridges most pauses between words of
    # one sentence while the end is decided 260 ms after the speech, inside a dialogue's
    # turn-taking gap (the reference VAD collectors lag ~300 ms). Measured on 150 random
    # RAVDESS sentences (1 s of silence around each): 4.0% are cut in two with 200 ms, 1.3%
    # with 300 ms (decided 400 ms after the speech), 5.3% with 100-160 ms. A cut sentence
    # gives two emotion results instead of one; nothing is lost.
    hangover_ms: float = 200.0
    # Energy gate (0 turns either test off). 35 dB under the utterance's loudest frame is the
    # level where a RAVDESS sentence's last syllable has faded into the room tone. 1 dB over
    # the background: 20 ms frames of steady noise vary by about +-0.4 dB, and a faded syllable
    # buried in the noise adds little more. On 40 random RAVDESS sentences with 1.5 s gaps
    # the ends came within 50 ms of the true ends for 98% of them clean and 95% under white
    # noise at 20 dB SNR (2% and 12% without the gate); a 0.5 dB margin gave 85% in noise,
    # 1.5 dB cut the buried last word of one sentence (380 ms). One second of silent frames
    # follows a changing background without reacting to a single loud frame.
    end_trim_db: float = 35.0
    noise_margin_db: float = 1.0
    noise_window_ms: float = 1000.0
    # 300 ms of speech at least: coughs, clicks and door bangs are shorter; a word shorter
    # than that carries too little prosody to classify.
    min_utterance_ms: float = 300.0
    # 5 s: the classifier's input window (AudioConfig.duration_s); longer audio would be cut
    # there anyway, and a monologue still yields a decision every 5 s. Set it from the model.
    max_utterance_ms: float = 5000.0
    # 100 ms: publish jitter is absorbed, a lost message or a restarted stream is detected.
    max_gap_ms: float = 100.0
    # 16 kHz mono float32 utterances: what the classifier's front end expects.
    output_rate: int = 16000
    # Silero only: a frame is voiced when its speech probability is >= this (the package's
    # default; VADIterator ends speech below threshold - 0.15, our offset smoothing does that).
    silero_threshold: float = 0.5

    def __post_init__(self) -> None:
        spec = check_detector(self.detector)
        _check_choice('aggressiveness', self.aggressiveness, VAD_AGGRESSIVENESS)
        spec.check(self.vad_rate, self.frame_ms)
        check_threshold(self.silero_threshold)
        _check_int('onset_window', self.onset_window, 1)
        _check_int('onset_frames', self.onset_frames, 1, self.onset_window)
        _check_int('offset_window', self.offset_window, 1)
        _check_int('offset_frames', self.offset_frames, 0, self.offset_window - 1)
        for name in ('pre_roll_ms', 'hangover_ms', 'min_utterance_ms', 'end_trim_db',
                     'noise_margin_db'):
            _check_number(name, getattr(self, name), 0.0)
        _check_number('max_gap_ms', self.max_gap_ms, 0.0, strict=True)
        _check_number('noise_window_ms', self.noise_window_ms, float(self.frame_ms),
                      reason='one frame')
        _check_int('output_rate', self.output_rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
        shortest = max(self.min_utterance_ms,
                       self.pre_roll_ms + (self.onset_window + 1) * self.frame_ms)
        _check_number('max_utterance_ms', self.max_utterance_ms, shortest, strict=True,
                      reason='min_utterance_ms and pre_roll_ms plus the onset window')

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> SegmenterConfig:
        """Build from node parameters (vad_node's in config/ser.yaml); other keys are ignored."""
        names = {item.name for item in fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in names})

    @property
    def frame_samples(self) -> int:
        """Samples per VAD frame at ``vad_rate``."""
        return self.vad_rate * self.frame_ms // 1000

    @property
    def pre_roll_frames(self) -> int:
        """Whole frames of pre-roll (``pre_roll_ms`` rounded up to frames)."""
        return _frames(self.pre_roll_ms, self.frame_ms)

    @property
    def hangover_frames(self) -> int:
        """Whole frames of hangover (``hangover_ms`` rounded up to frames)."""
        return _frames(self.hangover_ms, self.frame_ms)

    @property
    def noise_frames(self) -> int:
        """Frames in the background estimate (``noise_window_ms`` rounded up to frames)."""
        return _frames(self.noise_window_ms, self.frame_ms)

    @property
    def decision_delay_ms(self) -> float:
        """Least time from the last voiced frame to the utterance's end being decided.

        A stray voiced frame inside the pause can add up to one offset window.
        """
        return ((self.offset_window - self.offset_frames + self.hangover_frames)
                * self.frame_ms)


@dataclass(frozen=True)
class Utterance:
    """One segment of speech, resampled to ``sample_rate`` (the config's ``output_rate``).

    ``start_time`` is the capture time of the first sample (pre-roll included), ``end_time``
    that of the end of the last sample; ``decided_time`` is the stream time at which the end
    was decided (``decided_time - end_time`` is the VAD decision delay). ``split`` is True when
    the utterance was cut at ``max_utterance_ms`` and speech goes on in the next one, which has
    ``continues`` True and starts exactly at this one's end.
    """

    samples: np.ndarray
    sample_rate: int
    start_time: float
    end_time: float
    decided_time: float
    split: bool = False
    continues: bool = False

    @property
    def duration(self) -> float:
        """Length in seconds of the stream interval covered."""
        return self.end_time - self.start_time


@dataclass(frozen=True)
class SpeakingChange:
    """A change of ``is_speaking`` and the stream time at which it was decided."""

    speaking: bool
    time: float


@dataclass
class SegmenterStats:
    """Counters for diagnostics (cumulative over the segmenter's life)."""

    frames: int = 0
    voiced_frames: int = 0
    gated_frames: int = 0
    utterances: int = 0
    splits: int = 0
    dropped_short: int = 0
    stream_restarts: int = 0
    muted_samples: int = 0
    discarded_samples: int = 0


@dataclass
class _Frame:
    start: int
    samples: np.ndarray
    voiced: bool
    power: float


@dataclass
class _Open:
    """The utterance being collected (indices are samples at vad_rate since stream start)."""

    start: int
    start_time: float
    speech_start: int
    continues: bool
    # Mean square of the loudest voiced frame so far: the reference of the end_trim_db gate.
    peak_power: float = 0.0
    frames: list[np.ndarray] = field(default_factory=list)
    # Set while trailing (pausing): where the utterance ends if the pause lasts the hangover.
    end_candidate: int | None = None
    trailing_frames: int = 0


class Segmenter:
    """Streaming segmenter: ``push`` chunks of mono float32 audio, receive finished utterances.

    Speaking-state changes are queued and taken with ``pop_speaking_changes()`` (a node
    publishes each one); ``is_speaking`` gives the current state. With ``detector='silero'``
    the constructor loads Silero's model; it raises ``DetectorUnavailableError`` (a
    ValueError) when the silero-vad package is missing.
    """

    def __init__(self, config: SegmenterConfig | None = None, input_rate: int = 16000) -> None:
        self.config = config if config is not None else SegmenterConfig()
        _check_int('input_rate', input_rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
        self.input_rate = int(input_rate)
        self.stats = SegmenterStats()
        cfg = self.config
        samples_per_ms = cfg.vad_rate / MS_PER_SECOND
        self._pre_roll_samples = cfg.pre_roll_frames * cfg.frame_samples
        self._min_samples = cfg.min_utterance_ms * samples_per_ms
        self._max_samples = cfg.max_utterance_ms * samples_per_ms
        self._muted = False
        self._changes: deque[SpeakingChange] = deque(maxlen=MAX_PENDING_CHANGES)
        # Made once (loading and warming up Silero's model takes ~0.1 s); reset per stream.
        self._classifier: FrameClassifier = make_classifier(
            cfg.detector, cfg.vad_rate, cfg.frame_ms, cfg.aggressiveness, cfg.silero_threshold)
        self._start_stream_state()

    @property
    def is_speaking(self) -> bool:
        """Whether an utterance is open (from its onset until its end is decided)."""
        return self._open is not None

    @property
    def muted(self) -> bool:
        """Whether input is being ignored (the robot is speaking)."""
        return self._muted

    def pop_speaking_changes(self) -> list[SpeakingChange]:
        """Return and forget the speaking-state changes since the last call, oldest first."""
        changes = list(self._changes)
        self._changes.clear()
        return changes

    def push(self, samples: np.ndarray, start_time: float) -> list[Utterance]:
        """Feed one chunk (any length) of mono float audio at ``input_rate``.

        ``start_time`` is the capture time in seconds of the chunk's first sample. Returns the
        utterances whose end was decided within this chunk (or by a time stamp jump before it).
        Raises ValueError for a non-1-D or non-float array, NaN/infinite samples, or a
        non-finite time stamp; the segmenter's state is unchanged then.
        """
        chunk = _check_samples(samples)
        start_time = _check_time('start_time', start_time)
        if self._muted:
            self.stats.muted_samples += len(chunk)
            return []
        if len(chunk) == 0:
            return []
        out: list[Utterance] = []
        if self._started:
            deviation = start_time - self._predicted_time()
            if abs(deviation) * MS_PER_SECOND > self.config.max_gap_ms:
                out += self._end_stream()
                self.stats.stream_restarts += 1
            elif abs(deviation) * self.input_rate > _ANCHOR_TOLERANCE_SAMPLES:
                self._anchors.append((self._input_count, start_time))
        if not self._started:
            self._started = True
            self._anchors.append((0, start_time))
        self._input_count += len(chunk)
        if self._resampler is not None:
            chunk = self._resampler.resample_chunk(chunk)
        out += self._consume(chunk)
        return out

    def segment(self, waveform: np.ndarray, chunk_samples: int,
                start_time: float = 0.0) -> list[Utterance]:
        """Segment a whole recording fed as a stream of ``chunk_samples`` chunks, then flushed."""
        utterances: list[Utterance] = []
        for offset in range(0, len(waveform), chunk_samples):
            utterances += self.push(waveform[offset:offset + chunk_samples],
                                    start_time + offset / self.input_rate)
        return utterances + self.flush()

    def longest(self, waveform: np.ndarray, chunk_samples: int) -> np.ndarray | None:
        """Return the longest utterance :meth:`segment` cuts from ``waveform`` (None: none)."""
        utterances = self.segment(waveform, chunk_samples)
        return max(utterances, key=lambda item: item.duration).samples if utterances else None

    def flush(self) -> list[Utterance]:
        """End the stream (end of a bag or file): close the open utterance, start afresh."""
        if not self._started:
            return []
        return self._end_stream()

    def mute(self, muted: bool) -> list[Utterance]:
        """Ignore input while ``muted`` (the robot is speaking) so its voice is not classified.

        Muting closes the open utterance as the end of the stream (emitted when long enough:
        it is the patient's speech before the robot started, often still in its hangover).
        Unmuting starts a fresh stream at the next chunk. Returns the closed utterance, if any.
        """
        muted = bool(muted)
        out = self.flush() if muted and not self._muted else []
        self._muted = muted
        return out

    def _start_stream_state(self) -> None:
        cfg = self.config
        self._classifier.reset()
        self._resampler = (None if self.input_rate == cfg.vad_rate else
                           soxr.ResampleStream(self.input_rate, cfg.vad_rate, 1,
                                               dtype='float32'))
        self._input_count = 0
        # (input sample index, capture time) pairs: the clock that maps samples to times.
        self._anchors: deque[tuple[int, float]] = deque()
        self._pending = np.zeros(0, dtype=np.float32)
        self._processed = 0
        self._history: deque[_Frame] = deque(maxlen=cfg.pre_roll_frames + cfg.onset_window)
        self._onset_votes: deque[bool] = deque(maxlen=cfg.onset_window)
        self._offset_votes: deque[bool] = deque(maxlen=cfg.offset_window)
        self._background: deque[float] = deque(maxlen=cfg.noise_frames)
        self._background_median: float | None = None   # of _background, until it changes
        self._last_end = 0
        self._last_voiced_end = 0
        self._open: _Open | None = None
        self._started = False

    def _below_gate(self, power: float) -> bool:
        """Whether a frame of mean square ``power`` is too weak to count as speech."""
        cfg = self.config
        if cfg.noise_margin_db > 0 and self._background:
            if self._background_median is None:
                self._background_median = float(np.median(self._background))
            if power < self._background_median * _db_ratio(cfg.noise_margin_db):
                return True
        if cfg.end_trim_db > 0 and self._open is not None:
            return power < self._open.peak_power / _db_ratio(cfg.end_trim_db)
        return False

    def _predicted_time(self) -> float:
        index, time = self._anchors[-1]
        return time + (self._input_count - index) / self.input_rate

    def _time_at(self, vad_index: int) -> float:
        """Capture time of a sample index of the VAD stream, from the latest anchor before it."""
        scaled = vad_index * self.input_rate
        for index, time in reversed(self._anchors):
            if index * self.config.vad_rate <= scaled:
                return time + vad_index / self.config.vad_rate - index / self.input_rate
        index, time = self._anchors[0]
        return time + vad_index / self.config.vad_rate - index / self.input_rate

    def _prune_anchors(self) -> None:
        oldest = self._history[0].start if self._history else self._processed
        if self._open is not None:
            oldest = min(oldest, self._open.start)
        limit = oldest * self.input_rate
        while len(self._anchors) > 1 and self._anchors[1][0] * self.config.vad_rate <= limit:
            self._anchors.popleft()

    def _end_stream(self) -> list[Utterance]:
        out: list[Utterance] = []
        if self._resampler is not None:
            out += self._consume(self._resampler.resample_chunk(
                np.zeros(0, dtype=np.float32), last=True))
        self.stats.discarded_samples += len(self._pending)
        if self._open is not None:
            end = self._open.end_candidate
            if end is None:
                end = self._last_voiced_end
            out += self._close(end)
        self._start_stream_state()
        return out

    def _consume(self, chunk: np.ndarray) -> list[Utterance]:
        if len(chunk) == 0:
            return []
        size = self.config.frame_samples
        data = np.concatenate([self._pending, chunk]) if len(self._pending) else chunk
        whole = len(data) - len(data) % size
        self._pending = data[whole:].copy()
        out: list[Utterance] = []
        for offset in range(0, whole, size):
            out += self._step(data[offset:offset + size])
        if whole:
            self._prune_anchors()
        return out

    def _step(self, samples: np.ndarray) -> list[Utterance]:
        """Classify one frame and advance the onset/offset state machine."""
        cfg = self.config
        power = float(np.dot(samples, samples)) / len(samples)
        detected = self._classifier.is_speech(samples)
        voiced = detected and not self._below_gate(power)
        if not detected and self._open is None:
            self._background.append(power)
            self._background_median = None
        self._history.append(_Frame(self._processed, samples, voiced, power))
        self._processed += len(samples)
        self.stats.frames += 1
        self.stats.voiced_frames += int(voiced)
        self.stats.gated_frames += int(detected and not voiced)
        if voiced:
            self._last_voiced_end = self._processed
            if self._open is not None:
                self._open.peak_power = max(self._open.peak_power, power)
        self._onset_votes.append(voiced)
        self._offset_votes.append(voiced)
        onset = sum(self._onset_votes) >= cfg.onset_frames
        opened = self._open
        if opened is None:
            if onset:
                self._begin()
            return []
        opened.frames.append(samples)
        if opened.end_candidate is not None:
            if not onset:
                opened.trailing_frames += 1
                if opened.trailing_frames >= cfg.hangover_frames:
                    return self._close(opened.end_candidate)
                return self._split_if_long()
            opened.end_candidate = None
        if sum(self._offset_votes) <= cfg.offset_frames:
            opened.end_candidate = self._last_voiced_end
            opened.trailing_frames = 0
            if cfg.hangover_frames == 0:
                return self._close(opened.end_candidate)
        return self._split_if_long()

    def _begin(self) -> None:
        """Open an utterance at the first voiced frame of the onset window, minus pre-roll."""
        window = list(self._history)[-len(self._onset_votes):]
        speech_start = next(frame.start for frame in window if frame.voiced)
        earliest = max(speech_start - self._pre_roll_samples, self._last_end)
        frames = [frame for frame in self._history if frame.start >= earliest]
        start = frames[0].start
        peak = max(frame.power for frame in window if frame.voiced)
        self._open = _Open(start=start, start_time=self._time_at(start),
                           speech_start=speech_start, continues=False, peak_power=peak,
                           frames=[frame.samples for frame in frames])
        self._changes.append(SpeakingChange(True, self._time_at(self._processed)))

    def _split_if_long(self) -> list[Utterance]:
        """Cut the open utterance at ``max_utterance_ms``; speech goes on in a new one."""
        opened = self._open
        if opened is None or self._processed - opened.start < self._max_samples:
            return []
        if opened.end_candidate is not None:
            return self._close(opened.end_candidate)
        if self._last_voiced_end < self._processed:
            # A silent frame may be the end of the speech, which the offset smoothing decides
            # within a few frames: split only once the speech goes on.
            return []
        size = self.config.frame_samples
        cut = opened.start + math.ceil(self._max_samples / size) * size
        after_cut = (self._processed - cut) // size
        piece = self._emit(opened, cut, split=True)
        self.stats.splits += 1
        self._open = _Open(start=cut, start_time=self._time_at(cut), speech_start=cut,
                           continues=True, peak_power=opened.peak_power,
                           frames=opened.frames[len(opened.frames) - after_cut:])
        return [piece]

    def _close(self, end: int) -> list[Utterance]:
        """Close the open utterance at sample ``end`` (decided now); drop it if too short."""
        opened = self._open
        assert opened is not None
        self._open = None
        # A new utterance needs a fresh onset made of frames after this one.
        self._onset_votes.clear()
        self._offset_votes.clear()
        self._changes.append(SpeakingChange(False, self._time_at(self._processed)))
        if end <= opened.start:
            return []
        self._last_end = end
        if not opened.continues and end - opened.speech_start < self._min_samples:
            self.stats.dropped_short += 1
            return []
        return [self._emit(opened, end, split=False)]

    def _emit(self, opened: _Open, end: int, split: bool) -> Utterance:
        cfg = self.config
        audio = np.concatenate(opened.frames)[:end - opened.start]
        if cfg.output_rate != cfg.vad_rate:
            audio = soxr.resample(audio, cfg.vad_rate, cfg.output_rate)
        self.stats.utterances += 1
        return Utterance(samples=np.ascontiguousarray(audio, dtype=np.float32),
                         sample_rate=cfg.output_rate, start_time=opened.start_time,
                         end_time=self._time_at(end), decided_time=self._time_at(self._processed),
                         split=split, continues=opened.continues)


# Time stamps closer than this (in input samples) to the predicted time add no clock anchor.
_ANCHOR_TOLERANCE_SAMPLES = 0.5


def _db_ratio(decibels: float) -> float:
    return 10.0 ** (decibels / 10.0)


def _frames(ms: float, frame_ms: int) -> int:
    return math.ceil(ms / frame_ms - 1e-9)


def _check_samples(samples: np.ndarray) -> np.ndarray:
    array = np.asarray(samples)
    if array.ndim != 1:
        raise ValueError(f'samples must be a 1-D mono array, got shape {array.shape}; '
                         'downmix multi-channel audio first (ser_ros.core.pcm.downmix)')
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f'samples must be floating point in [-1, 1], got dtype {array.dtype}; '
                         'decode integer PCM first (ser_ros.core.pcm.decode_pcm)')
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError('samples contain NaN or infinity')
    return array


def _check_time(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f'{name} must be a number of seconds, got {value!r}')
    if not math.isfinite(value):
        raise ValueError(f'{name} must be finite, got {value!r}')
    return float(value)


def _check_int(name: str, value: int, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f'{name} must be an integer, got {value!r}')
    if value < low or (high is not None and value > high):
        bounds = f'>= {low}' if high is None else f'within {low}..{high}'
        raise ValueError(f'{name} must be {bounds}, got {value}')


def _check_choice(name: str, value: int, choices: Sequence[int]) -> None:
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f'{name} must be one of {", ".join(map(str, choices))}, got {value!r}')


def _check_number(name: str, value: float, low: float, strict: bool = False,
                  reason: str = '') -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f'{name} must be a number, got {value!r}')
    bad = not math.isfinite(value) or value < low or (strict and value == low)
    if bad:
        relation = '>' if strict else '>='
        because = f' ({reason})' if reason else ''
        raise ValueError(f'{name} must be finite and {relation} {low:g}{because}, got {value!r}')


