"""Training-time augmentation of normalised feature batches (SpecAugment-style) and mixup.

RAVDESS has 24 actors reading two sentences in a studio; the robot hears other people, rooms
and microphones. Masking random time spans and frequency bands, and shifting speech in time,
keeps the network from leaning on a few bins or on where speech sits in the 5 s window.
Masked values are 0, the training mean after normalisation. Stretching the frequency axis by a
random factor per utterance moves formants and pitch as another speaker's vocal tract would
(vocal-tract length perturbation, applied to the mel bands). Mixup trains on weighted sums of
two utterances with the same weights on their labels, which smooths the decision boundaries of
a network trained on few speakers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

MAX_FREQ_WARP = 0.5


@dataclass(frozen=True)
class AugmentConfig:
    """How much to perturb each training example; all zero = no augmentation."""

    time_masks: int = 0
    time_width: int = 0
    freq_masks: int = 0
    freq_width: int = 0
    max_shift: int = 0
    # Largest relative stretch of the frequency axis (0.1: factors 0.9-1.1).
    freq_warp: float = 0.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == 'freq_warp':
                if (isinstance(value, bool) or not isinstance(value, (int, float))
                        or not 0.0 <= value < MAX_FREQ_WARP):
                    raise ValueError(f'training.augment.freq_warp must be a number in '
                                     f'[0, {MAX_FREQ_WARP}), got {value!r}')
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
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


def _warp_frequency(batch: torch.Tensor, max_warp: float,
                    generator: torch.Generator) -> torch.Tensor:
    """Each example's rows resampled at f / a, a drawn uniformly from 1 +- max_warp."""
    size, num_features, num_frames = batch.shape
    factors = 1.0 + (2.0 * torch.rand(size, 1, generator=generator) - 1.0) * max_warp
    source = (torch.arange(num_features, dtype=torch.float32) / factors).clamp(0, num_features - 1)
    low = source.floor().long()
    high = (low + 1).clamp(max=num_features - 1)
    fraction = (source - low).unsqueeze(2).to(batch.dtype)

    def rows(index: torch.Tensor) -> torch.Tensor:
        return batch.gather(1, index.unsqueeze(2).expand(size, num_features, num_frames))

    return rows(low) * (1.0 - fraction) + rows(high) * fraction


def augment_batch(features: torch.Tensor, config: AugmentConfig,
                  generator: torch.Generator) -> torch.Tensor:
    """Return a perturbed copy of a (B, F, T) batch; the input is left unchanged."""
    if not config.enabled:
        return features
    batch, num_features, num_frames = features.shape
    result = (_warp_frequency(features, config.freq_warp, generator) if config.freq_warp
              else features.clone())
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


def mix_batch(features: torch.Tensor, targets: torch.Tensor, alpha: float,
              generator: torch.Generator,
              rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup: ``(w * x + (1 - w) * x[partner], targets[partner], w)``, w ~ Beta(alpha, alpha).

    The loss is ``w * loss(targets) + (1 - w) * loss(partner targets)``. With alpha 0 the batch
    comes back unchanged with w = 1. The larger weight always goes to ``targets``.
    """
    if alpha <= 0.0 or len(features) < 2:
        return features, targets, 1.0
    weight = float(rng.beta(alpha, alpha))
    weight = max(weight, 1.0 - weight)
    partner = torch.randperm(len(features), generator=generator)
    mixed = weight * features + (1.0 - weight) * features[partner]
    return mixed, targets[partner], weight
