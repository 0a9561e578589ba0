"""Training-time augmentation of normalised feature batches (SpecAugment-style).

RAVDESS has 24 actors reading two sentences in a studio; the robot hears other people, rooms
and microphones. Masking random time spans and frequency bands, and shifting speech in time,
keeps the network from leaning on a few bins or on where speech sits in the 5 s window.
Masked values are 0, the training mean after normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch


@dataclass(frozen=True)
class AugmentConfig:
    """How much to perturb each training example; all zero = no augmentation."""

    time_masks: int = 0
    time_width: int = 0
    freq_masks: int = 0
    freq_width: int = 0
    max_shift: int = 0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f'training.augment.{item.name} must be an integer >= 0, '
                                 f'got {value!r}')

    @property
    def enabled(self) -> bool:
        """Whether any perturbation is configured."""
        return any(asdict(self).values())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> AugmentConfig:
        """Build from the experiment's ``training.augment`` mapping (None: no augmentation)."""
        data = dict(data or {})
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f'training.augment: unknown keys {unknown}; known {sorted(known)}')
        return cls(**data)


def _masks(batch: int, length: int, count: int, width: int,
           generator: torch.Generator) -> torch.Tensor:
    """Boolean (batch, length) mask that is True inside ``count`` random spans per row."""
    mask = torch.zeros(batch, length, dtype=torch.bool)
    if count == 0 or width == 0:
        return mask
    positions = torch.arange(length)
    for _ in range(count):
        widths = torch.randint(0, width + 1, (batch, 1), generator=generator)
        starts = (torch.rand(batch, 1, generator=generator) * (length - widths + 1)).long()
        mask |= (positions >= starts) & (positions < starts + widths)
    return mask


def augment_batch(features: torch.Tensor, config: AugmentConfig,
                  generator: torch.Generator) -> torch.Tensor:
    """Return a perturbed copy of a (B, F, T) batch; the input is left unchanged."""
    if not config.enabled:
        return features
    batch, num_features, num_frames = features.shape
    result = features.clone()
    if config.max_shift:
        shifts = torch.randint(-config.max_shift, config.max_shift + 1, (batch,),
                               generator=generator)
        for row, shift in enumerate(shifts.tolist()):
            if shift:
                result[row] = torch.roll(result[row], shift, dims=1)
    time_mask = _masks(batch, num_frames, config.time_masks, config.time_width, generator)
    freq_mask = _masks(batch, num_features, config.freq_masks, config.freq_width, generator)
    result.masked_fill_(time_mask[:, None, :] | freq_mask[:, :, None], 0.0)
    return result
