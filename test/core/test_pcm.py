"""PCM payload decoding/encoding on real speech, and the errors for bad payloads."""

from __future__ import annotations

import array
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser_ros.core.pcm import PcmDecoder, PcmFormat, decode_pcm, downmix, encode_s16le


@pytest.fixture(scope='module')
def speech_int16(ravdess_files: list[Path]) -> np.ndarray:
    samples, _ = soundfile.read(ravdess_files[0], dtype='int16')
    return samples


def test_s16le_round_trip_is_exact(speech_int16: np.ndarray) -> None:
    pcm = speech_int16.astype('<i2').tobytes()
    samples = decode_pcm(pcm, PcmFormat(16000))
    assert samples.shape == (len(speech_int16), 1) and samples.dtype == np.float32
    assert np.array_equal(samples[:, 0], speech_int16 / 32768.0)
    assert encode_s16le(samples[:, 0]) == pcm
    # rclpy hands uint8[] fields over as array('B'): decoded the same way.
    assert np.array_equal(decode_pcm(array.array('B', pcm), PcmFormat(16000)), samples)


@pytest.mark.parametrize(('name', 'dtype', 'scale', 'offset'), [
    ('U8', 'u1', 128.0, 128.0), ('S32LE', '<i4', 2.0 ** 31, 0.0), ('F32LE', '<f4', 1.0, 0.0)])
def test_other_formats_decode_to_the_same_signal(speech_int16: np.ndarray, name: str,
                                                 dtype: str, scale: float,
                                                 offset: float) -> None:
    signal = speech_int16 / 32768.0
    if name == 'F32LE':
        stored = signal
    else:
        low, high = (0, 255) if name == 'U8' else (-scale, scale - 1)
        stored = np.clip(np.round(signal * scale + offset), low, high)
    decoded = decode_pcm(stored.astype(dtype).tobytes(), PcmFormat(16000, 1, name.lower()))
    tolerance = 1 / 128 if name == 'U8' else 1e-6
    assert np.abs(decoded[:, 0] - signal).max() <= tolerance


def test_s24le_sign_extends(speech_int16: np.ndarray) -> None:
    values = speech_int16.astype(np.int32) * 256  # the same signal as 24-bit integers
    raw = values.astype('<i4').tobytes()
    packed = b''.join(raw[i:i + 3] for i in range(0, len(raw), 4))
    decoded = decode_pcm(packed, PcmFormat(16000, 1, 'S24LE'))
    assert np.array_equal(decoded[:, 0], speech_int16 / 32768.0)


def test_interleaved_stereo_and_downmix(speech_int16: np.ndarray) -> None:
    stereo = np.stack([speech_int16, np.zeros_like(speech_int16)], axis=1)
    decoded = decode_pcm(stereo.astype('<i2').tobytes(), PcmFormat(48000, 2))
    assert decoded.shape == (len(speech_int16), 2)
    assert np.array_equal(downmix(decoded, 0), speech_int16 / 32768.0)
    assert np.allclose(downmix(decoded), speech_int16 / 65536.0)
    assert np.array_equal(downmix(decoded[:, 0]), decoded[:, 0])
    with pytest.raises(ValueError, match='out of range'):
        downmix(decoded, 2)
    with pytest.raises(ValueError, match='integer index'):
        downmix(decoded, 1.0)


def test_partial_frames_are_refused_or_carried_over(speech_int16: np.ndarray) -> None:
    pcm = np.stack([speech_int16, speech_int16], axis=1).astype('<i2').tobytes()
    fmt = PcmFormat(16000, 2)
    with pytest.raises(ValueError, match='3 byte'):
        decode_pcm(pcm[:643], fmt)
    decoder = PcmDecoder(fmt)
    pieces = [decoder.decode(pcm[i:i + 641]) for i in range(0, len(pcm), 641)]
    assert decoder.pending_bytes == 0
    assert np.array_equal(np.concatenate(pieces), decode_pcm(pcm, fmt))
    decoder.decode(pcm[:3])
    assert decoder.pending_bytes == 3
    decoder.reset()
    assert decoder.pending_bytes == 0


@pytest.mark.parametrize(('kwargs', 'message'), [
    ({'sample_rate': 100}, 'sample_rate'), ({'sample_rate': 16000.0}, 'integer'),
    ({'sample_rate': 16000, 'channels': 0}, 'channels'),
    ({'sample_rate': 16000, 'sample_format': 'MP3'}, 'unsupported sample_format'),
])
def test_bad_formats_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PcmFormat(**kwargs)


def test_encode_clips_and_refuses_nan() -> None:
    assert encode_s16le(np.array([2.0, -2.0, 0.5])) == np.array(
        [32767, -32768, 16384], '<i2').tobytes()
    with pytest.raises(ValueError, match='NaN'):
        encode_s16le(np.array([np.nan]))
    with pytest.raises(ValueError, match='NaN'):
        encode_s16le(np.array([0.0, np.inf], dtype=np.float32))


def test_encode_gives_the_same_integers_from_float32_and_float64() -> None:
    rng = np.random.default_rng(0)
    halfway = (np.arange(-32768, 32767) + 0.5) / 32768   # ties: round half to even in both
    values = np.concatenate([rng.uniform(-1.2, 1.2, 100_000), halfway]).astype(np.float32)
    assert encode_s16le(values) == encode_s16le(values.astype(np.float64))
