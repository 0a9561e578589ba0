"""Audio input: any file or sample array to fixed-length 16 kHz mono float32.

The paper resamples every utterance to 16 kHz and analyses a fixed 5 s: longer clips are
truncated (the start is kept), shorter ones are zero-padded. The reference code pads at the
start (``'pre'``); ``'post'`` and ``'center'`` are offered because speech cut out by a voice
activity detector on the robot starts right away, and where the silence goes is a property of
the trained model, so :class:`AudioConfig` records it and checkpoints store it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import soxr

SAMPLE_RATE = 16000
DURATION_S = 5.0
PAD_MODES = ('pre', 'post', 'center')
DEFAULT_PAD_MODE = 'pre'
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768000
# More columns than this means the array is most likely (channels, n) instead of (n, channels).
MAX_CHANNELS = 64
INT16_SCALE = 32768.0
RESAMPLE_QUALITY = 'HQ'


def _check_sample_rate(value: Any, what: str) -> int:
    """Return ``value`` as an int Hz rate, or raise ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f'{what} must be an integer in Hz, got {value!r}')
    if not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        raise ValueError(
            f'{what} must be within {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz, got {value}'
        )
    return int(value)


def require_exact_keys(cls: type, data: Mapping[str, Any],
                       runtime: Sequence[str] = ()) -> None:
    """Refuse a ``from_dict`` input whose keys are not exactly the dataclass fields of ``cls``.

    Shared by the configuration dataclasses of the front end: a checkpoint written by this
    version holds every field, so a missing or extra key means a mismatch, not a default.
    ``runtime`` fields are choices of the running process, never stored.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f'{cls.__name__}: expected a mapping, got {type(data).__name__}')
    known = {field.name for field in fields(cls)} - set(runtime)
    unknown = sorted(set(data) - known)
    missing = sorted(known - set(data))
    if unknown:
        raise ValueError(f'{cls.__name__}: unknown keys {unknown}; expected {sorted(known)}')
    if missing:
        raise ValueError(f'{cls.__name__}: missing keys {missing}')


@dataclass(frozen=True)
class AudioConfig:
    """How audio is prepared for feature extraction: target rate, fixed length, padding side."""

    sample_rate: int = SAMPLE_RATE
    duration_s: float = DURATION_S
    pad_mode: str = DEFAULT_PAD_MODE

    def __post_init__(self) -> None:
        object.__setattr__(self, 'sample_rate', _check_sample_rate(self.sample_rate,
                                                                   'AudioConfig.sample_rate'))
        duration = self.duration_s
        if isinstance(duration, bool) or not isinstance(duration, (int, float, np.number)):
            raise ValueError(f'AudioConfig.duration_s must be a number, got {duration!r}')
        if not math.isfinite(duration) or duration <= 0:
            raise ValueError(f'AudioConfig.duration_s must be positive and finite, got {duration}')
        object.__setattr__(self, 'duration_s', float(duration))
        if self.num_samples < 1:
            raise ValueError(
                f'AudioConfig.duration_s {duration} s is shorter than one sample '
                f'at {self.sample_rate} Hz'
            )
        if self.pad_mode not in PAD_MODES:
            raise ValueError(
                f'AudioConfig.pad_mode must be one of {", ".join(PAD_MODES)}, '
                f'got {self.pad_mode!r}'
            )

    @property
    def num_samples(self) -> int:
        """Samples in the fixed analysis window (80,000 for 5 s at 16 kHz)."""
        return round(self.sample_rate * self.duration_s)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary for checkpoints and JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AudioConfig:
        """Rebuild from :meth:`to_dict` output; unknown or missing keys are refused."""
        require_exact_keys(cls, data)
        return cls(**data)


def to_mono_float(samples: np.ndarray, sample_rate: int,
                  target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Turn int16 or float samples, shape ``(n,)`` or ``(n, channels)``, into mono float32.

    int16 is scaled by 1/32768; float input is taken as already nominally in [-1, 1] and is not
    clipped. Channels are averaged, then the signal is resampled to ``target_rate`` with soxr.
    Raises ValueError for empty, non-finite or wrongly shaped input, other sample types, and
    rates outside the supported range.
    """
    sample_rate = _check_sample_rate(sample_rate, 'sample_rate')
    target_rate = _check_sample_rate(target_rate, 'target_rate')
    array = np.asarray(samples)
    if array.dtype == np.int16:
        array = array.astype(np.float32) / np.float32(INT16_SCALE)
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32, copy=False)
    else:
        raise ValueError(
            f'samples must be int16 or floating point, got dtype {array.dtype} '
            '(decode other PCM formats with ser_ros.core.pcm first)'
        )
    if array.ndim not in (1, 2):
        raise ValueError(f'samples must have shape (n,) or (n, channels), got {array.shape}')
    if array.ndim == 2 and not 1 <= array.shape[1] <= MAX_CHANNELS:
        raise ValueError(
            f'samples of shape {array.shape} have {array.shape[1]} channels (at most '
            f'{MAX_CHANNELS} allowed); pass (n, channels), not (channels, n)'
        )
    if array.shape[0] == 0:
        raise ValueError('samples are empty: no audio to analyse')
    if not np.all(np.isfinite(array)):
        raise ValueError('samples contain NaN or infinity')
    mono = array.mean(axis=1, dtype=np.float32) if array.ndim == 2 else array
    if sample_rate != target_rate:
        mono = soxr.resample(mono, sample_rate, target_rate, quality=RESAMPLE_QUALITY)
    return np.ascontiguousarray(mono, dtype=np.float32)


def load_audio(path: str | PathLike[str], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read any file soundfile can (WAV, FLAC, ...) as mono float32 at ``sample_rate``.

    Raises FileNotFoundError for a missing file and ValueError for one soundfile cannot read
    or one that holds no samples.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f'audio file not found: {file}')
    try:
        samples, file_rate = soundfile.read(file, dtype='float32', always_2d=True)
    except soundfile.LibsndfileError as error:
        raise ValueError(f'cannot read audio file {file}: {error}') from error
    try:
        return to_mono_float(samples, file_rate, sample_rate)
    except ValueError as error:
        raise ValueError(f'{file}: {error}') from error


def append_silence(samples: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """Return ``samples`` (any dtype; ``(n,)`` or ``(n, channels)``) and ``seconds`` of zeros."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f'seconds of silence must be finite and >= 0, got {seconds}')
    array = np.asarray(samples)
    count = round(seconds * sample_rate)
    if count == 0:
        return array
    return np.pad(array, [(0, count)] + [(0, 0)] * (array.ndim - 1))


def fix_length(waveform: np.ndarray, num_samples: int, pad_mode: str = DEFAULT_PAD_MODE
               ) -> np.ndarray:
    """Truncate (keeping the start) or zero-pad a mono waveform to exactly ``num_samples``.

    ``pad_mode`` puts the zeros before the signal (``'pre'``, as the reference code), after it
    (``'post'``), or splits them (``'center'``, the odd sample after). Truncation keeps the
    first ``num_samples`` in every mode, as the reference code keeps the first 5 s.
    """
    if pad_mode not in PAD_MODES:
        raise ValueError(f'pad_mode must be one of {", ".join(PAD_MODES)}, got {pad_mode!r}')
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) \
            or num_samples < 1:
        raise ValueError(f'num_samples must be a positive integer, got {num_samples!r}')
    array = np.asarray(waveform, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f'waveform must be mono with shape (n,), got {array.shape}')
    missing = num_samples - array.shape[0]
    if missing <= 0:
        return np.ascontiguousarray(array[:num_samples])
    before = {'pre': missing, 'post': 0, 'center': missing // 2}[pad_mode]
    return np.pad(array, (before, missing - before))
