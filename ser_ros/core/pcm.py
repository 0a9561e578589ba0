"""Raw PCM payloads (audio message bytes) to float samples and back.

Audio messages carry interleaved little-endian PCM bytes plus a format description
(rate, channels, GStreamer-style sample format name such as ``S16LE``). This module turns
those bytes into float32 arrays in [-1, 1) of shape ``(frames, channels)`` and back, with
clear errors for payloads that do not match their format.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768000
MAX_CHANNELS = 64


@dataclass(frozen=True)
class _SampleCodec:
    """How one sample format is stored: width in bytes, numpy type, scale and zero offset."""

    width: int
    dtype: str
    scale: float
    offset: float = 0.0

    @property
    def is_float(self) -> bool:
        """Whether samples are stored as IEEE floats (already in [-1, 1])."""
        return self.dtype.startswith('<f')


# 24-bit samples have no numpy type: they are widened to int32 by hand (dtype '<i3' marks them).
_CODECS: dict[str, _SampleCodec] = {
    'U8': _SampleCodec(width=1, dtype='u1', scale=128.0, offset=128.0),
    'S16LE': _SampleCodec(width=2, dtype='<i2', scale=32768.0),
    'S24LE': _SampleCodec(width=3, dtype='<i3', scale=8388608.0),
    'S32LE': _SampleCodec(width=4, dtype='<i4', scale=2147483648.0),
    'F32LE': _SampleCodec(width=4, dtype='<f4', scale=1.0),
}
SAMPLE_FORMATS: tuple[str, ...] = tuple(_CODECS)

_S16_SCALE = 32768.0
_S16_MIN = -32768
_S16_MAX = 32767
_S24_BYTES = 3
_BITS_PER_BYTE = 8


@dataclass(frozen=True)
class PcmFormat:
    """Layout of a PCM payload: sample rate in Hz, interleaved channels, sample format name.

    ``sample_format`` is case-insensitive on input and stored upper-case (``'s16le'`` becomes
    ``'S16LE'``); supported names are listed in ``SAMPLE_FORMATS``.
    """

    sample_rate: int
    channels: int = 1
    sample_format: str = 'S16LE'

    def __post_init__(self) -> None:
        if not _is_integer(self.sample_rate):
            raise ValueError(f'sample_rate must be an integer in Hz, got {self.sample_rate!r}')
        if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise ValueError(
                f'sample_rate must be within {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz, '
                f'got {self.sample_rate}'
            )
        if not _is_integer(self.channels):
            raise ValueError(f'channels must be an integer, got {self.channels!r}')
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise ValueError(f'channels must be within 1..{MAX_CHANNELS}, got {self.channels}')
        if not isinstance(self.sample_format, str):
            raise ValueError(f'sample_format must be a string, got {self.sample_format!r}')
        name = self.sample_format.strip().upper()
        if name not in _CODECS:
            raise ValueError(
                f'unsupported sample_format {self.sample_format!r}; '
                f'supported: {", ".join(SAMPLE_FORMATS)}'
            )
        object.__setattr__(self, 'sample_rate', int(self.sample_rate))
        object.__setattr__(self, 'channels', int(self.channels))
        object.__setattr__(self, 'sample_format', name)

    @property
    def sample_bytes(self) -> int:
        """Bytes per sample of one channel."""
        return _CODECS[self.sample_format].width

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame (one sample of every channel)."""
        return self.sample_bytes * self.channels


def _is_integer(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def decode_pcm(data: bytes | bytearray | memoryview, fmt: PcmFormat) -> np.ndarray:
    """Decode interleaved PCM bytes into float32 samples of shape ``(frames, channels)``.

    Integer formats are scaled to [-1, 1); float formats are returned unchanged. Raises
    ValueError when the byte count is not a whole number of frames (use ``PcmDecoder`` for
    streams whose messages may split a frame).
    """
    buffer = memoryview(data).cast('B')
    if len(buffer) % fmt.frame_bytes:
        raise ValueError(
            f'PCM payload of {len(buffer)} bytes is not a whole number of {fmt.frame_bytes}-byte '
            f'frames ({fmt.channels} channel(s) of {fmt.sample_format}); '
            f'{len(buffer) % fmt.frame_bytes} byte(s) left over'
        )
    codec = _CODECS[fmt.sample_format]
    if codec.dtype == '<i3':
        raw = np.frombuffer(buffer, dtype=np.uint8).reshape(-1, _S24_BYTES).astype(np.int32)
        values = raw[:, 0] | (raw[:, 1] << _BITS_PER_BYTE) | (raw[:, 2] << 2 * _BITS_PER_BYTE)
        # Sign-extend the 24-bit value by shifting it to the top of the int32 and back.
        values = (values << _BITS_PER_BYTE) >> _BITS_PER_BYTE
    else:
        values = np.frombuffer(buffer, dtype=codec.dtype)
    samples = values.astype(np.float32)
    if not codec.is_float:
        samples = (samples - np.float32(codec.offset)) / np.float32(codec.scale)
    return samples.reshape(-1, fmt.channels)


class PcmDecoder:
    """Decoder for a stream of PCM messages that keeps a partial frame for the next message.

    Producers that cut a byte stream into fixed-size messages can split a frame between two
    messages. ``decode_pcm`` refuses such payloads; this decoder instead keeps the trailing
    partial frame and prepends it to the next payload, so no good audio is lost. The price:
    the first frame decoded from a message started in the previous one (less than one sample
    period earlier than the message's time stamp), and if a partial frame came from a truly
    corrupt message, later samples stay misaligned until ``reset()`` is called (call it
    whenever the stream restarts, e.g. after a gap in the time stamps).
    """

    def __init__(self, fmt: PcmFormat) -> None:
        self.format = fmt
        self._pending = b''

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame kept for the next call."""
        return len(self._pending)

    def decode(self, data: bytes | bytearray | memoryview) -> np.ndarray:
        """Decode the whole frames of the kept bytes plus ``data``; keep the incomplete rest."""
        joined = self._pending + bytes(memoryview(data).cast('B'))
        whole = len(joined) - len(joined) % self.format.frame_bytes
        self._pending = joined[whole:]
        return decode_pcm(joined[:whole], self.format)

    def reset(self) -> None:
        """Drop any kept partial frame (the stream restarts)."""
        self._pending = b''


def downmix(samples: np.ndarray, channel: int | None = None) -> np.ndarray:
    """Reduce ``(frames, channels)`` samples to mono: one selected channel, or the mean of all.

    A 1-D array is already mono and is returned as float32 (only channel 0 or None is valid).
    """
    array = np.asarray(samples)
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2:
        raise ValueError(f'samples must have shape (frames,) or (frames, channels), '
                         f'got {array.shape}')
    channels = array.shape[1]
    if channel is None:
        mono = array.mean(axis=1) if channels > 1 else array[:, 0]
        return np.ascontiguousarray(mono, dtype=np.float32)
    if not _is_integer(channel):
        raise ValueError(f'channel must be an integer index or None, got {channel!r}')
    if not 0 <= channel < channels:
        raise ValueError(f'channel {channel} out of range for {channels} channel(s)')
    return np.ascontiguousarray(array[:, channel], dtype=np.float32)


def encode_s16le(samples: np.ndarray) -> bytes:
    """Encode float samples (nominally [-1, 1]) as interleaved signed 16-bit little-endian PCM.

    Values are scaled by 32768, rounded and clipped to the int16 range, so ``decode_pcm`` of
    the result gives back any S16 input exactly. Raises ValueError for NaN or infinity.
    """
    array = np.asarray(samples)
    # float32 stays float32 (the VAD encodes every 20 ms frame): scaling by 2**15 is exact in
    # either precision, so rounding gives the same integers.
    if array.dtype != np.float32:
        array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError('samples contain NaN or infinity; cannot encode them as PCM')
    scaled = np.rint(array * array.dtype.type(_S16_SCALE))
    np.minimum(scaled, _S16_MAX, out=scaled)
    np.maximum(scaled, _S16_MIN, out=scaled)
    return scaled.astype('<i2').tobytes()
