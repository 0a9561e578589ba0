"""SpecAugment-style perturbation of feature batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ser_ros.core.audio import AudioConfig, load_audio
from ser_ros.core.features import FrontEnd, Normalizer, feature_preset
from ser_ros.training.augment import (
    AugmentConfig,
    NoiseMixer,
    augment_batch,
    mix_batch,
    noise_bank,
)

FLOOR_DB = 80.0
RATE = 16000


def _batch() -> torch.Tensor:
    return torch.randn(8, 20, 50, generator=torch.Generator().manual_seed(0)) + 5.0


def test_disabled_config_returns_the_batch_unchanged():
    batch = _batch()
    assert augment_batch(batch, AugmentConfig(), torch.Generator()) is batch


def test_masks_zero_whole_bands_and_spans_and_leave_the_input_alone():
    batch = _batch()
    original = batch.clone()
    config = AugmentConfig(time_masks=1, time_width=10, freq_masks=1, freq_width=5)
    out = augment_batch(batch, config, torch.Generator().manual_seed(1))
    assert torch.equal(batch, original)
    zero = out == 0
    # Every zero lies in a fully zeroed row (band) or column (frame) of its example.
    rows, columns = zero.all(dim=2), zero.all(dim=1)
    assert torch.equal(zero, rows[:, :, None] | columns[:, None, :])
    assert rows.sum(dim=1).max() <= 5 and columns.sum(dim=1).max() <= 10
    assert zero.any()


def test_shift_rolls_time_only_and_is_seeded():
    batch = _batch()
    config = AugmentConfig(max_shift=7)
    first = augment_batch(batch, config, torch.Generator().manual_seed(3))
    again = augment_batch(batch, config, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    for row in range(len(batch)):
        assert any(torch.equal(first[row], torch.roll(batch[row], shift, dims=1))
                   for shift in range(-7, 8))


def test_frequency_warp_moves_a_band_up_or_down_and_keeps_time_alone():
    # One lit band per example: after the warp its energy sits within +-10% of its position.
    batch = torch.zeros(16, 40, 6)
    batch[:, 20, :] = 1.0
    out = augment_batch(batch, AugmentConfig(freq_warp=0.1), torch.Generator().manual_seed(2))
    assert out.shape == batch.shape
    centre = (out[:, :, 0] * torch.arange(40)).sum(dim=1) / out[:, :, 0].sum(dim=1)
    assert torch.all((centre - 20).abs() <= 2.0 + 1e-4)
    assert (centre - 20).abs().max() > 0.5            # not the identity
    assert torch.allclose(out, out[:, :, :1].expand_as(out))   # every frame warped alike


def test_mixup_mixes_pairs_with_the_larger_weight_on_the_own_label():
    features, targets = _batch(), torch.arange(8)
    same = mix_batch(features, targets, 0.0, torch.Generator(), np.random.default_rng(0))
    assert same[0] is features and same[1] is targets and same[2] == 1.0
    mixed, partner, weight = mix_batch(features, targets, 0.4, torch.Generator().manual_seed(1),
                                       np.random.default_rng(1))
    assert 0.5 <= weight <= 1.0
    assert torch.allclose(mixed, weight * features + (1 - weight) * features[partner])
    assert sorted(partner.tolist()) == list(range(8))


@pytest.mark.parametrize('bad', [{'time_masks': -1}, {'freq_width': 1.5}, {'unknown': 1},
                                 {'freq_warp': 0.5}, {'freq_warp': -0.1},
                                 {'noise_probability': 1.5}, {'noise_probability': 'half'},
                                 {'noise_snr_min_db': 20.0, 'noise_snr_max_db': 10.0},
                                 {'noise_snr_max_db': float('inf')},
                                 {'vad_cut_probability': 1.5}, {'vad_cut_probability': True}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match='training.augment'):
        AugmentConfig.from_dict(bad)


@pytest.fixture(scope='module')
def speech_and_mixer(ravdess_files):
    """Real mel128 features of short speech (pre-padded to 2 s) and a mixer for them."""
    front_end = FrontEnd(AudioConfig(duration_s=2.0), feature_preset('mel128'))
    raw = np.stack([front_end.raw_features(load_audio(path)[RATE // 2:RATE + RATE // 4], RATE)
                    for path in ravdess_files[::150][:8]])
    normalizer = Normalizer.fit(raw)
    bank = noise_bank(lambda y: front_end.raw_features(y, RATE), front_end.audio.num_samples,
                      raw, np.random.default_rng(0))
    mixer = NoiseMixer(normalizer.mean, normalizer.std, bank, FLOOR_DB)
    return torch.from_numpy(normalizer(raw)), normalizer, bank, mixer


def _noise_config(snr_db: float, probability: float = 1.0) -> AugmentConfig:
    return AugmentConfig(noise_probability=probability, noise_snr_min_db=snr_db,
                         noise_snr_max_db=snr_db)


def test_noise_bank_entries_have_unit_power_and_pink_falls_with_frequency(speech_and_mixer):
    _, _, bank, _ = speech_and_mixer
    assert bank.shape[1:] == (128, 251) and len(bank) == 6   # white, pink, 4 babble
    assert torch.allclose(bank.mean(dim=(1, 2)), torch.ones(len(bank)))
    white, pink = bank[0].mean(dim=1), bank[1].mean(dim=1)
    assert pink[:16].mean() > 4 * pink[-16:].mean()
    assert white[:16].mean() < 4 * white[-16:].mean()


def test_noise_fills_the_quiet_parts_more_the_lower_the_snr(speech_and_mixer):
    features, normalizer, _, mixer = speech_and_mixer

    def raw(batch):
        return batch.numpy() * normalizer.std[None, :, None] + normalizer.mean[None, :, None]

    levels = []
    for snr_db in (30.0, 10.0, 0.0):
        out = mixer(features, _noise_config(snr_db), torch.Generator().manual_seed(1))
        mixed = raw(out)
        assert mixed.max() <= 1e-4 and mixed.min() >= -FLOOR_DB - 1e-3
        # 0.75 s of pre-padding (~94 frames) stays digital silence, exactly.
        assert torch.equal(out[:, :, :90], features[:, :, :90])
        levels.append(float(np.median(mixed[:, :, 100:])))
    assert float(np.median(raw(features)[:, :, 100:])) < levels[0] < levels[1] < levels[2]


def test_noise_goes_to_the_configured_share_and_is_seeded(speech_and_mixer):
    features, _, _, mixer = speech_and_mixer
    assert mixer(features, _noise_config(10.0, 0.0), torch.Generator()) is features
    config = _noise_config(10.0, 0.5)
    first = mixer(features, config, torch.Generator().manual_seed(4))
    again = mixer(features, config, torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    changed = (first != features).flatten(1).any(dim=1)
    assert 0 < int(changed.sum()) < len(features)
    with pytest.raises(ValueError, match='needs a NoiseMixer'):
        augment_batch(features, config, torch.Generator())
    assert not torch.equal(augment_batch(features, config, torch.Generator().manual_seed(4),
                                         mixer), features)


def test_vad_cuts_replace_the_configured_share_of_the_batch():
    generator = torch.Generator().manual_seed(0)
    whole = torch.randn(64, 8, 20, generator=generator)
    cuts = torch.randn(64, 8, 20, generator=generator)
    everything = AugmentConfig(vad_cut_probability=1.0)
    assert torch.equal(augment_batch(whole, everything, torch.Generator(), cuts=cuts), cuts)
    half = AugmentConfig(vad_cut_probability=0.5)
    mixed = augment_batch(whole, half, torch.Generator().manual_seed(3), cuts=cuts)
    assert torch.equal(mixed, augment_batch(whole, half, torch.Generator().manual_seed(3),
                                            cuts=cuts))
    from_cuts = (mixed == cuts).flatten(1).all(dim=1)
    from_whole = (mixed == whole).flatten(1).all(dim=1)
    assert bool((from_cuts ^ from_whole).all()) and 16 < int(from_cuts.sum()) < 48
    with pytest.raises(ValueError, match='needs the VAD-cut features'):
        augment_batch(whole, half, torch.Generator())
    with pytest.raises(ValueError, match='needs the VAD-cut features'):
        augment_batch(whole, half, torch.Generator(), cuts=cuts[:, :, :10])
