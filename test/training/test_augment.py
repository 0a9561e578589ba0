"""SpecAugment-style perturbation of feature batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ser_ros.training.augment import AugmentConfig, augment_batch, mix_batch


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
                                 {'freq_warp': 0.5}, {'freq_warp': -0.1}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match='training.augment'):
        AugmentConfig.from_dict(bad)
