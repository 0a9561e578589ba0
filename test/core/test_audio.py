"""Audio input: files and arrays to fixed-length 16 kHz mono float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from ser_ros.core.audio import (
    PAD_MODES,
    AudioConfig,
    append_silence,
    fix_length,
    load_audio,
    to_mono_float,
)

RATE = 16000
HIGH_RATE = 48000


@pytest.fixture(scope='module')
def speech(ravdess_files: list[Path]) -> np.ndarray:
    """One real RAVDESS utterance as int16 samples at 16 kHz."""
    samples, rate = soundfile.read(ravdess_files[0], dtype='int16')
    assert rate == RATE
    return samples


def test_stereo_48k_int16_becomes_16k_mono_of_the_same_speech(speech: np.ndarray) -> None:
    upsampled = soxr.resample(speech.astype(np.float32) / 32768, RATE, HIGH_RATE)
    as_int16 = np.round(upsampled * 32768).clip(-32768, 32767).astype(np.int16)
    stereo = np.stack([as_int16, as_int16], axis=1)

    mono = to_mono_float(stereo, HIGH_RATE)

    assert mono.dtype == np.float32 and mono.ndim == 1
    assert mono.shape[0] == round(stereo.shape[0] * RATE / HIGH_RATE)
    original = speech.astype(np.float32) / 32768
    length = min(mono.shape[0], original.shape[0])
    correlation = np.corrcoef(mono[:length], original[:length])[0, 1]
    assert correlation > 0.999
    assert np.isclose(np.std(mono), np.std(original), rtol=0.01)


def test_channels_are_averaged(speech: np.ndarray) -> None:
    left = speech.astype(np.float32) / 32768
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    assert np.allclose(to_mono_float(stereo, RATE), left / 2)
    opposite = np.stack([left, -left], axis=1)
    assert np.allclose(to_mono_float(opposite, RATE), 0.0)


def test_int16_scales_by_1_over_32768(speech: np.ndarray) -> None:
    mono = to_mono_float(speech, RATE)
    assert np.array_equal(mono, speech.astype(np.float32) / np.float32(32768))
    extremes = to_mono_float(np.array([-32768, 0, 16384], dtype=np.int16), RATE)
    assert extremes.tolist() == [-1.0, 0.0, 0.5]


def test_float64_input_becomes_float32_unchanged_at_target_rate() -> None:
    samples = np.linspace(-0.5, 0.5, 1001)
    mono = to_mono_float(samples, RATE)
    assert mono.dtype == np.float32
    assert np.allclose(mono, samples)


def test_load_flac_equals_soundfile_read(ravdess_files: list[Path]) -> None:
    for path in ravdess_files[:3]:
        expected, _ = soundfile.read(path, dtype='float32')
        assert np.array_equal(load_audio(path), expected)


def test_load_resamples_a_stereo_wav(tmp_path: Path, speech: np.ndarray) -> None:
    upsampled = soxr.resample(speech.astype(np.float32) / 32768, RATE, HIGH_RATE)
    path = tmp_path / 'stereo48k.wav'
    soundfile.write(path, np.stack([upsampled, upsampled], axis=1), HIGH_RATE, subtype='PCM_16')
    loaded = load_audio(path)
    assert loaded.dtype == np.float32
    assert loaded.shape[0] == round(upsampled.shape[0] * RATE / HIGH_RATE)
    eight_k = load_audio(path, sample_rate=8000)
    # 8000 / 48000 does not divide this length: soxr may round the half sample either way.
    assert abs(eight_k.shape[0] - upsampled.shape[0] * 8000 / HIGH_RATE) <= 1


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match='not found'):
        load_audio(tmp_path / 'missing.flac')
    text = tmp_path / 'notes.wav'
    text.write_text('not audio')
    with pytest.raises(ValueError, match='cannot read audio file'):
        load_audio(text)
    empty = tmp_path / 'empty.wav'
    soundfile.write(empty, np.zeros((0, 1), dtype=np.float32), RATE)
    with pytest.raises(ValueError, match='empty'):
        load_audio(empty)


@pytest.mark.parametrize(('pad_mode', 'before'), [('pre', 4), ('post', 0), ('center', 2)])
def test_pad_modes_put_the_zeros_where_they_say(pad_mode: str, before: int) -> None:
    signal = np.arange(1, 4, dtype=np.float32)
    padded = fix_length(signal, 7, pad_mode)
    assert padded.dtype == np.float32 and padded.shape == (7,)
    assert np.array_equal(padded[before:before + 3], signal)
    assert np.count_nonzero(padded) == 3


def test_silence_is_appended_in_the_input_dtype_and_channels() -> None:
    stereo = np.full((5, 2), 7, dtype=np.int16)
    longer = append_silence(stereo, 1000, 0.003)
    assert longer.dtype == np.int16 and longer.shape == (8, 2)
    assert np.array_equal(longer[:5], stereo) and not longer[5:].any()
    mono = np.ones(4, dtype=np.float32)
    assert append_silence(mono, RATE, 0.0) is mono
    for bad in (-0.1, float('nan'), float('inf')):
        with pytest.raises(ValueError, match='seconds of silence'):
            append_silence(mono, RATE, bad)


def test_center_padding_puts_the_odd_zero_after() -> None:
    padded = fix_length(np.ones(4, dtype=np.float32), 7, 'center')
    assert padded.tolist() == [0, 1, 1, 1, 1, 0, 0]


@pytest.mark.parametrize('pad_mode', PAD_MODES)
def test_truncation_keeps_the_start(pad_mode: str, speech: np.ndarray) -> None:
    waveform = to_mono_float(speech, RATE)
    assert np.array_equal(fix_length(waveform, 1000, pad_mode), waveform[:1000])
    assert np.array_equal(fix_length(waveform, waveform.shape[0], pad_mode), waveform)


def test_real_utterance_is_padded_to_five_seconds(speech: np.ndarray) -> None:
    config = AudioConfig()
    waveform = to_mono_float(speech, RATE)
    assert waveform.shape[0] < config.num_samples == 80000
    fixed = fix_length(waveform, config.num_samples, config.pad_mode)
    missing = config.num_samples - waveform.shape[0]
    assert np.array_equal(fixed[missing:], waveform)
    assert not np.any(fixed[:missing])


def test_fix_length_errors() -> None:
    with pytest.raises(ValueError, match='pad_mode must be one of pre, post, center'):
        fix_length(np.ones(3), 5, 'both')
    with pytest.raises(ValueError, match='num_samples must be a positive integer'):
        fix_length(np.ones(3), 0, 'pre')
    with pytest.raises(ValueError, match=r'mono with shape \(n,\)'):
        fix_length(np.ones((3, 2)), 5, 'pre')


@pytest.mark.parametrize(('samples', 'rate', 'message'), [
    (np.zeros(0, dtype=np.float32), RATE, 'empty'),
    (np.zeros((0, 2), dtype=np.int16), RATE, 'empty'),
    (np.array([0.0, np.nan]), RATE, 'NaN or infinity'),
    (np.array([0.0, np.inf]), RATE, 'NaN or infinity'),
    (np.zeros((4, 2, 2)), RATE, r'shape \(n,\) or \(n, channels\)'),
    (np.zeros((2, 8000)), RATE, r'pass \(n, channels\), not \(channels, n\)'),
    (np.zeros(10, dtype=np.int32), RATE, 'int16 or floating point'),
    (np.zeros(10), 0, 'sample_rate must be within'),
    (np.zeros(10), 44100.5, 'sample_rate must be an integer'),
    (np.zeros(10), True, 'sample_rate must be an integer'),
])
def test_to_mono_float_errors(samples: np.ndarray, rate: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_mono_float(samples, rate)  # type: ignore[arg-type]


def test_bad_target_rate_is_refused() -> None:
    with pytest.raises(ValueError, match='target_rate must be within'):
        to_mono_float(np.zeros(10), RATE, target_rate=10)


def test_audio_config_defaults_and_round_trip() -> None:
    config = AudioConfig()
    assert (config.sample_rate, config.duration_s, config.pad_mode) == (16000, 5.0, 'pre')
    assert config.num_samples == 80000
    custom = AudioConfig(sample_rate=8000, duration_s=2.5, pad_mode='center')
    assert custom.num_samples == 20000
    assert AudioConfig.from_dict(custom.to_dict()) == custom
    assert AudioConfig.from_dict(config.to_dict()) != custom


def test_audio_config_errors() -> None:
    with pytest.raises(ValueError, match="pad_mode must be one of pre, post, center, got 'end'"):
        AudioConfig(pad_mode='end')
    with pytest.raises(ValueError, match='duration_s must be positive'):
        AudioConfig(duration_s=0)
    with pytest.raises(ValueError, match='sample_rate must be within'):
        AudioConfig(sample_rate=100)
    with pytest.raises(ValueError, match=r"unknown keys \['channels'\]"):
        AudioConfig.from_dict({**AudioConfig().to_dict(), 'channels': 1})
    with pytest.raises(ValueError, match=r"missing keys \['pad_mode'\]"):
        AudioConfig.from_dict({'sample_rate': 16000, 'duration_s': 5.0})
