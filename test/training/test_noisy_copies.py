"""Noise for feature sets it cannot be mixed into: noisy recordings made once per training file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from ser_ros.cli.train import main as train_main
from ser_ros.core.audio import load_audio
from ser_ros.core.checkpoint import Checkpoint
from ser_ros.core.mixing import speech_bounds
from ser_ros.training.augment import SPEECH_RANGE_DB, AugmentConfig, CopyNoise
from ser_ros.training.noisy_copies import CutNoisyCopy, NoisyCopy, noisy_copies
from ser_ros.training.vad_cuts import VadCutter, vad_node_config

from .test_run import _args

RATE = 16000
SNR_DB = 20.0
IEMOCAP_TINY = ['features.preset=iemocap', 'model.window_frames=32', 'model.window_hop=32',
                'model.shared_blocks=0', 'training.augment.noise_probability=1.0',
                'training.augment.noise_copies=2', 'training.max_epochs=2']


@pytest.fixture(scope='module')
def recordings(ravdess_files: list[Path]) -> list[np.ndarray]:
    return [load_audio(path, RATE) for path in ravdess_files[:4]]


def copy_maker(recordings: list[np.ndarray], copy: int = 0, seed: int = 7) -> NoisyCopy:
    babble = np.concatenate(recordings[2:])
    return NoisyCopy(copy, seed, SNR_DB, SNR_DB, ('a.wav', 'b.wav'), babble)


def test_a_copy_has_the_asked_snr_over_the_speech(recordings: list[np.ndarray]) -> None:
    clean = recordings[0]
    noisy, rate = copy_maker(recordings)(clean, RATE)
    assert rate == RATE and noisy.shape == clean.shape and noisy.dtype == np.float32
    # add_noise may scale the sum down to avoid clipping: undo that before measuring.
    scale = float(np.dot(noisy, clean) / np.dot(clean, clean))
    noise = noisy / scale - clean
    first, last = speech_bounds(clean, RATE, SPEECH_RANGE_DB)
    speech_power = np.mean(clean[first:last].astype(np.float64) ** 2)
    measured = 10 * np.log10(speech_power / np.mean(noise.astype(np.float64) ** 2))
    assert measured == pytest.approx(SNR_DB, abs=0.5)


def test_copies_are_reproducible_and_differ_from_each_other(recordings: list[np.ndarray]) -> None:
    clean = recordings[1]
    first, _ = copy_maker(recordings, copy=0)(clean, RATE)
    again, _ = copy_maker(recordings, copy=0)(clean, RATE)
    other, _ = copy_maker(recordings, copy=1)(clean, RATE)
    reseeded, _ = copy_maker(recordings, copy=0, seed=8)(clean, RATE)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other) and not np.allclose(first, reseeded)
    assert copy_maker(recordings, copy=1).describe() != copy_maker(recordings).describe()


def test_a_silent_recording_is_left_silent(recordings: list[np.ndarray]) -> None:
    silence = np.zeros(RATE, dtype=np.float32)
    heard, rate = copy_maker(recordings)(silence, RATE)
    assert rate == RATE and not np.any(heard)


def test_babble_needs_some_speech(tmp_path: Path) -> None:
    silent = tmp_path / 'silent.wav'
    soundfile.write(silent, np.zeros(RATE, dtype=np.float32), RATE)
    with pytest.raises(ValueError, match='all silent'):
        noisy_copies([silent], 1, 0, 0.0, 30.0, RATE)


def test_babble_is_made_of_training_recordings_only(ravdess_files: list[Path]) -> None:
    train = ravdess_files[:20]
    copies = noisy_copies(train, 3, 5, 0.0, 30.0, RATE)
    assert [copy.copy for copy in copies] == [0, 1, 2]
    assert set(copies[0].babble_sources) <= {path.name for path in train}
    with pytest.raises(ValueError, match='noise_copies must be >= 1'):
        noisy_copies(train, 0, 5, 0.0, 30.0, RATE)


def test_copy_noise_swaps_examples_for_their_own_copies() -> None:
    examples, copies = 6, 3
    clean = torch.zeros(examples, 2, 4)
    # Copy k of example i is filled with 10 * i + k + 1.
    values = (10 * torch.arange(examples).view(1, -1) + torch.arange(copies).view(-1, 1) + 1)
    noise = CopyNoise(values.float().view(copies, examples, 1, 1).expand(-1, -1, 2, 4).clone())
    index = torch.tensor([4, 1, 5])
    generator = torch.Generator().manual_seed(0)
    always = noise.for_rows(index)(clean[index], AugmentConfig(noise_probability=1.0), generator)
    for row, example in enumerate(index.tolist()):
        assert int(always[row, 0, 0]) - 10 * example - 1 in range(copies)
        assert torch.all(always[row] == always[row, 0, 0])
    never = noise.for_rows(index)(clean[index], AugmentConfig(noise_probability=0.0), generator)
    assert torch.equal(never, clean[index])
    with pytest.raises(ValueError, match='do not match'):
        noise(clean[index], AugmentConfig(noise_probability=1.0), generator)


def test_copy_noise_cuts_noisy_examples_with_the_cut_probability() -> None:
    examples, copies = 40, 2
    whole = torch.ones(copies, examples, 2, 3)
    cut = torch.full((copies, examples, 2, 3), 2.0)
    noise = CopyNoise(whole, cut)
    clean = torch.zeros(examples, 2, 3)
    generator = torch.Generator().manual_seed(0)

    def swapped(cut_probability: float) -> torch.Tensor:
        config = AugmentConfig(noise_probability=1.0, vad_cut_probability=cut_probability)
        return noise(clean, config, generator)[:, 0, 0]

    assert torch.all(swapped(0.0) == 1.0)
    assert torch.all(swapped(1.0) == 2.0)
    half = swapped(0.5)
    assert {1.0, 2.0} == set(half.tolist())
    # Without cut copies the random stream is the one recipes trained before used.
    plain = CopyNoise(whole)(clean, AugmentConfig(noise_probability=0.5),
                             torch.Generator().manual_seed(3))
    with_cuts = noise(clean, AugmentConfig(noise_probability=0.5),
                      torch.Generator().manual_seed(3))
    assert torch.equal(plain, with_cuts)
    with pytest.raises(ValueError, match='do not match'):
        CopyNoise(whole, cut[:1])


def test_noisy_cuts_need_noise_and_cuts() -> None:
    with pytest.raises(ValueError, match='true or false'):
        AugmentConfig(noise_probability=0.5, vad_cut_probability=0.5, noisy_cuts='yes')
    with pytest.raises(ValueError, match='needs noise_probability and vad_cut_probability'):
        AugmentConfig(noise_probability=0.5, noisy_cuts=True)


def test_a_cut_copy_is_what_the_vad_cuts_from_the_noisy_recording(
        recordings: list[np.ndarray]) -> None:
    noisy = copy_maker(recordings)
    cutter = VadCutter(vad_node_config(), trailing_silence_s=0.5)
    cut_copy = CutNoisyCopy(noisy, cutter)
    samples, rate = cut_copy(recordings[0], RATE)
    expected, expected_rate = cutter(*noisy(recordings[0], RATE))
    assert rate == expected_rate and np.array_equal(samples, expected)
    assert len(samples) < len(recordings[0]) + 0.5 * RATE
    described = cut_copy.describe()
    assert described['noisy'] == noisy.describe() and described['vadcut'] == cutter.describe()
    assert cut_copy.name not in (noisy.name, cutter.name)


def test_noisy_cuts_train_and_are_refused_where_noise_is_mixed(small_corpus, tmp_path,
                                                               capsys) -> None:
    cache = tmp_path / 'cache'
    cuts = ['training.augment.vad_cut_probability=0.5']
    run = tmp_path / 'noisy_cuts'
    assert train_main(_args(small_corpus, run, cache, *IEMOCAP_TINY, *cuts,
                            'training.augment.noisy_cuts=true')) == 0
    assert len(list(cache.glob('iemocap-noisy-vadcut-*.npy'))) == 2
    capsys.readouterr()
    # Its weights depend on the cut copies: the same folder does not resume without them.
    assert train_main(_args(small_corpus, run, cache, *IEMOCAP_TINY, *cuts)) == 2
    assert 'another configuration' in capsys.readouterr().err
    code = train_main(_args(small_corpus, tmp_path / 'mel', cache, *cuts,
                            'training.augment.noise_probability=0.5',
                            'training.augment.noisy_cuts=true', 'training.max_epochs=1'))
    assert code == 2 and 'mixes noise into the VAD cuts already' in capsys.readouterr().err


def test_noise_trains_a_non_mel_model_and_resumes_to_the_same_weights(small_corpus, tmp_path,
                                                                    capsys) -> None:
    cache = tmp_path / 'cache'
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    assert train_main(_args(small_corpus, straight, cache, *IEMOCAP_TINY)) == 0
    assert train_main(_args(small_corpus, resumed, cache, *IEMOCAP_TINY,
                            'training.time_budget_s=0.001')) == 0
    assert train_main(_args(small_corpus, resumed, cache, *IEMOCAP_TINY)) == 0
    history = json.loads((resumed / 'history.json').read_text())
    assert [record['epoch'] for record in history['history']] == [1, 2]
    first = Checkpoint.load(straight / 'model.pt')
    second = Checkpoint.load(resumed / 'model.pt')
    assert first.front_end().features.name == 'iemocap'
    for key, value in first.state_dict.items():
        assert torch.equal(value, second.state_dict[key]), key
    described = json.loads((straight / 'noisy_copies.json').read_text())['noisy_copies']
    assert [item['copy'] for item in described] == [0, 1]
    # The noisy features were cached next to the clean ones, one file per copy.
    assert len(list(cache.glob('iemocap-noisy-*.npy'))) == 2

    # Without noise the same run learns other weights; with other copies it does not resume.
    quiet = tmp_path / 'quiet'
    assert train_main(_args(small_corpus, quiet, cache, *IEMOCAP_TINY,
                            'training.augment.noise_probability=0.0')) == 0
    third = Checkpoint.load(quiet / 'model.pt')
    assert any(not torch.equal(value, third.state_dict[key])
               for key, value in first.state_dict.items())
    assert not (quiet / 'noisy_copies.json').exists()
    capsys.readouterr()
    code = train_main(_args(small_corpus, straight, cache, *IEMOCAP_TINY,
                            'training.augment.noise_copies=3'))
    assert code == 2 and 'another configuration' in capsys.readouterr().err

