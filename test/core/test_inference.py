"""EmotionRecognizer: devices, one utterance and batches, label order, bf16, any input format."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soxr
import torch

from ser_ros.core.audio import AudioConfig, load_audio
from ser_ros.core.checkpoint import Checkpoint
from ser_ros.core.features import FrontEnd
from ser_ros.core.inference import (
    EmotionRecognizer,
    Prediction,
    bf16_supported,
    resolve_device,
)

from .test_checkpoint import (
    LABELS,
    real_normalizer,
    tiny_checkpoint,
    tiny_model,
    tiny_model_config,
)

RATE = 16000
HIGH_RATE = 48000
FUSED_TOLERANCE = 1e-5
BF16_TOLERANCE = 0.05


@pytest.fixture(scope='module')
def files(ravdess_files: list[Path]) -> list[Path]:
    """Three real utterances of different actors."""
    return ravdess_files[::len(ravdess_files) // 3][:3]


@pytest.fixture(scope='module')
def checkpoint(files: list[Path]) -> Checkpoint:
    return tiny_checkpoint(normalizer=real_normalizer(files))


@pytest.fixture(scope='module')
def model_path(checkpoint: Checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkpoint.save(tmp_path_factory.mktemp('inference') / 'model.pt')


@pytest.fixture(scope='module')
def recognizer(model_path: Path) -> EmotionRecognizer:
    return EmotionRecognizer.from_checkpoint(model_path, device='cpu')


def reference_probabilities(checkpoint: Checkpoint, path: Path) -> np.ndarray:
    """Softmax of the unfused PyTorch network on the checkpoint's own features."""
    features = torch.from_numpy(checkpoint.front_end().extract_file(path))[None]
    with torch.no_grad():
        return torch.softmax(checkpoint.build_model()(features), dim=1)[0].numpy()


def stereo_48k(path: Path) -> np.ndarray:
    """Return a real utterance as 48 kHz stereo float (left and right slightly different)."""
    mono = soxr.resample(load_audio(path), RATE, HIGH_RATE)
    return np.stack([mono, 0.9 * mono], axis=1).astype(np.float32)


def check_prediction(prediction: Prediction) -> None:
    values = np.array(list(prediction.probabilities.values()))
    assert tuple(prediction.probabilities) == LABELS
    assert abs(values.sum() - 1.0) < 1e-5 and np.all((values >= 0) & (values <= 1))
    assert prediction.label == LABELS[int(np.argmax(values))]
    assert prediction.confidence == prediction.probabilities[prediction.label] == values.max()


def test_resolve_device() -> None:
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert resolve_device('auto') == torch.device(expected)
    assert resolve_device('cpu') == torch.device('cpu')
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        resolve_device('gpu')
    with pytest.raises(ValueError, match="unsupported device 'meta'"):
        resolve_device('meta')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' requested but CUDA is not available"):
            resolve_device('cuda')


@pytest.mark.parametrize('device', ['auto', 'cpu'])
def test_one_utterance_matches_the_network(device: str, model_path: Path,
                                           checkpoint: Checkpoint, files: list[Path]) -> None:
    recognizer = EmotionRecognizer.from_checkpoint(model_path, device=device)
    assert recognizer.device == resolve_device(device)
    assert recognizer.labels == checkpoint.labels == LABELS
    assert not recognizer.bf16
    prediction = recognizer.predict_file(files[0])
    check_prediction(prediction)
    expected = reference_probabilities(checkpoint, files[0])
    assert np.allclose(list(prediction.probabilities.values()), expected, atol=FUSED_TOLERANCE)


def test_probabilities_follow_the_checkpoint_label_order(files: list[Path]) -> None:
    labels = ('neutral', 'calm', 'happy', 'sad')
    model = tiny_model(tiny_model_config(num_classes=len(labels)))
    with torch.no_grad():   # the third output wins whatever the input
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 1.0, 5.0, 2.0]))
    checkpoint = tiny_checkpoint(labels=labels, model=model)
    recognizer = EmotionRecognizer(checkpoint.build_model(), checkpoint.front_end(),
                                   checkpoint.labels, device='cpu')
    prediction = recognizer.predict_file(files[1])
    assert prediction.label == 'happy'
    assert list(prediction.probabilities) == list(labels)
    expected = torch.softmax(torch.tensor([0.0, 1.0, 5.0, 2.0]), dim=0).numpy()
    assert np.allclose(list(prediction.probabilities.values()), expected, atol=1e-6)


def test_a_batch_equals_one_by_one(recognizer: EmotionRecognizer, files: list[Path]) -> None:
    items = [(load_audio(path), RATE) for path in files]
    items.append((stereo_48k(files[0]), HIGH_RATE))
    batch = recognizer.predict_batch(items)
    assert len(batch) == len(items)
    for (waveform, rate), prediction in zip(items, batch, strict=True):
        check_prediction(prediction)
        single = recognizer.predict(waveform, rate)
        assert single.label == prediction.label
        assert np.allclose(list(single.probabilities.values()),
                           list(prediction.probabilities.values()), atol=FUSED_TOLERANCE)
    assert recognizer.predict_batch([]) == []


def test_int16_and_float_48k_stereo_give_the_16k_result(recognizer: EmotionRecognizer,
                                                         files: list[Path]) -> None:
    stereo = stereo_48k(files[2])
    as_int16 = np.round(stereo * 32767).astype(np.int16)
    reference = np.array(list(recognizer.predict_file(files[2]).probabilities.values()))
    for samples in (stereo, as_int16):
        prediction = recognizer.predict(samples, HIGH_RATE)
        check_prediction(prediction)
        # Same speech, resampled up and back down (and averaged to mono at 0.95 gain).
        assert np.allclose(list(prediction.probabilities.values()), reference, atol=0.05)
    from_float = recognizer.predict(stereo, HIGH_RATE).probabilities
    from_int16 = recognizer.predict(as_int16, HIGH_RATE).probabilities
    assert np.allclose(list(from_float.values()), list(from_int16.values()), atol=1e-3)


def test_any_length_is_cut_or_padded(recognizer: EmotionRecognizer, files: list[Path]) -> None:
    waveform = load_audio(files[0])
    for samples in (waveform[:RATE // 4], np.tile(waveform, 3)):
        check_prediction(recognizer.predict(samples, RATE))


def test_padding_column_is_what_pre_padding_gives(checkpoint: Checkpoint, files: list[Path]
                                                 ) -> None:
    front_end = checkpoint.front_end()
    column = front_end.padding_column()
    speech = load_audio(files[0])[RATE // 2:RATE // 2 + RATE // 4]
    short = front_end(speech / np.abs(speech).max() / 2, RATE)    # peak at half full scale
    assert column is not None and np.array_equal(short[:, 0], column)
    assert not np.array_equal(short[:, -1], column)
    # Padding sits on the 80 dB floor under the loudest bin only when that bin is loud enough
    # (power >= 1e-2): a whisper-quiet utterance pads with other values, and skips nothing.
    quiet = front_end(speech / np.abs(speech).max() * 1e-4, RATE)
    assert not np.array_equal(quiet[:, 0], column)
    post = FrontEnd(AudioConfig(duration_s=1.0, pad_mode='post'), checkpoint.feature_config,
                    checkpoint.front_end().normalizer)
    assert post.padding_column() is None


@pytest.mark.parametrize('bf16', [False, True], ids=['fp32', 'bf16'])
def test_skipping_padding_gives_the_whole_network_result(model_path: Path, files: list[Path],
                                                         bf16: bool) -> None:
    if bf16 and not bf16_supported(torch.device('cpu')):
        pytest.skip('this CPU has no native bfloat16 (AVX512-BF16 or AMX)')
    skipping = EmotionRecognizer.from_checkpoint(model_path, device='cpu', bf16=bf16)
    whole = EmotionRecognizer.from_checkpoint(model_path, device='cpu', bf16=bf16,
                                              skip_padding=False)
    assert skipping.skips_padding and not whole.skips_padding
    skipping.warm_up()
    for path in files:
        waveform = load_audio(path)
        # 0.2-0.9 s of speech: 1 s analysis windows start with up to 0.8 s of padding.
        for seconds, peak in ((0.2, 0.5), (0.5, 0.5), (0.9, 0.5), (0.5, 1e-4)):
            speech = waveform[RATE // 2:RATE // 2 + int(seconds * RATE)]
            features = skipping.features(speech / np.abs(speech).max() * peak, RATE)[np.newaxis]
            assert np.allclose(skipping.probabilities(features), whole.probabilities(features),
                               atol=FUSED_TOLERANCE)


def test_trailing_silence_is_classified_after_the_utterance(model_path: Path,
                                                            checkpoint: Checkpoint,
                                                            files: list[Path]) -> None:
    padded = EmotionRecognizer.from_checkpoint(model_path, device='cpu', trailing_silence_s=0.5)
    assert padded.trailing_silence_s == 0.5
    front_end = checkpoint.front_end()
    utterances = [load_audio(path)[RATE // 2:3 * RATE // 2] for path in files]
    for utterance in utterances:
        with_silence = np.concatenate([utterance, np.zeros(RATE // 2, dtype=np.float32)])
        assert np.array_equal(padded.features(utterance, RATE), front_end(with_silence, RATE))
    batch = padded.predict_batch([(utterance, RATE) for utterance in utterances])
    for item, utterance in zip(batch, utterances, strict=True):
        assert item.probabilities == pytest.approx(padded.predict(utterance, RATE).probabilities,
                                                   abs=FUSED_TOLERANCE)
    with pytest.raises(ValueError, match='trailing_silence_s'):
        EmotionRecognizer.from_checkpoint(model_path, device='cpu', trailing_silence_s=-1.0)


@pytest.mark.skipif(not bf16_supported(torch.device('cpu')),
                    reason='this CPU has no native bfloat16 (AVX512-BF16 or AMX)')
def test_bf16_on_cpu_is_close_to_fp32(model_path: Path, recognizer: EmotionRecognizer,
                                      files: list[Path]) -> None:
    fast = EmotionRecognizer.from_checkpoint(model_path, device='cpu', bf16=True)
    assert fast.bf16
    for path in files:
        prediction = fast.predict_file(path)
        check_prediction(prediction)
        assert np.allclose(list(prediction.probabilities.values()),
                           list(recognizer.predict_file(path).probabilities.values()),
                           atol=BF16_TOLERANCE)
    probabilities = fast.probabilities(np.zeros((2, 128, 126), dtype=np.float32))
    assert probabilities.dtype == np.float32 and probabilities.shape == (2, len(LABELS))


@pytest.mark.skipif(bf16_supported(torch.device('cpu')),
                    reason='this CPU supports bfloat16, so no fallback happens')
def test_bf16_without_support_falls_back_with_a_warning(model_path: Path) -> None:
    with pytest.warns(RuntimeWarning, match='no native bfloat16 support; running in float32'):
        recognizer = EmotionRecognizer.from_checkpoint(model_path, device='cpu', bf16=True)
    assert not recognizer.bf16


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
def test_cuda_gives_the_cpu_result(model_path: Path, recognizer: EmotionRecognizer,
                                   files: list[Path]) -> None:
    gpu = EmotionRecognizer.from_checkpoint(model_path, device='cuda')
    assert gpu.device.type == 'cuda'
    assert np.allclose(list(gpu.predict_file(files[0]).probabilities.values()),
                       list(recognizer.predict_file(files[0]).probabilities.values()),
                       atol=1e-4)


def test_bad_input_gives_clear_errors(recognizer: EmotionRecognizer, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='samples are empty'):
        recognizer.predict(np.zeros(0, dtype=np.float32), RATE)
    with pytest.raises(ValueError, match='NaN or infinity'):
        recognizer.predict(np.full(RATE, np.nan, dtype=np.float32), RATE)
    with pytest.raises(ValueError, match='must be int16 or floating point'):
        recognizer.predict(np.zeros(RATE, dtype=np.int32), RATE)
    with pytest.raises(FileNotFoundError, match='audio file not found'):
        recognizer.predict_file(tmp_path / 'absent.wav')
    not_audio = tmp_path / 'notes.wav'
    not_audio.write_text('not audio')
    with pytest.raises(ValueError, match='cannot read audio file'):
        recognizer.predict_file(not_audio)


def test_parts_that_do_not_fit_are_refused(checkpoint: Checkpoint) -> None:
    model = checkpoint.build_model()
    with pytest.raises(ValueError, match='2 labels for a model with 3 outputs'):
        EmotionRecognizer(model, checkpoint.front_end(), LABELS[:2], device='cpu')
    longer = FrontEnd(AudioConfig(duration_s=2.0), checkpoint.feature_config)
    with pytest.raises(ValueError, match=r'front end gives features \(128, 251\), the model '
                                         r'expects \(128, 126\)'):
        EmotionRecognizer(model, longer, LABELS, device='cpu')


def test_warm_up_and_the_model_left_untouched(checkpoint: Checkpoint) -> None:
    model = checkpoint.build_model()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    recognizer = EmotionRecognizer(model, checkpoint.front_end(), LABELS, device='cpu')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        recognizer.warm_up()
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)
