"""SpecAugment-style perturbation of feature batches."""

from __future__ import annotations

import pytest
import torch

from ser_ros.training.augment import AugmentConfig, augment_batch


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


@pytest.mark.parametrize('bad', [{'time_masks': -1}, {'freq_width': 1.5}, {'unknown': 1}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match='training.augment'):
        AugmentConfig.from_dict(bad)
