"""Training-time augmentation of normalised feature batches (SpecAugment-style) and mixup.

RAVDESS has 24 actors reading two sentences in a studio; the robot hears other people, rooms
and microphones. Masking random time spans and frequency bands, and shifting speech in time,
keeps the network from leaning on a few bins or on where speech sits in the 5 s window.
Masked values are 0, the training mean after normalisation. Stretching the frequency axis by a
random factor per utterance moves formants and pitch as another speaker's vocal tract would
(vocal-tract length perturbation, applied to the mel bands). Mixup trains on weighted sums of
two utterances with the same weights on their labels, which smooths the decision boundaries of
a network trained on few speakers.

RAVDESS is recorded in a studio: between words its spectrogram sits on the 80 dB floor, where
a ward has televisions, trolleys and other patients. :class:`NoiseMixer` adds noise (white,
pink, babble of other training utterances) to a share of the training examples at a random
signal-to-noise ratio, in the power domain of the mel features: the spectrogram the front end
would have computed from the noisy recording, up to the cross terms of speech and noise, which
average out over a band. Leading padding stays digital silence, as the emotion node pads
VAD-cut speech with zeros.

The robot does not hear whole recordings but what vad_node cuts from them (speech and 100 ms
before it, padded with zeros): with ``vad_cut_probability`` a share of the examples is replaced
by the features of that cut (``ser_ros.training.vad_cuts``), before any other perturbation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import librosa
import numpy as np
import torch

MAX_FREQ_WARP = 0.5
FLOAT_FIELDS = ('freq_warp', 'noise_probability', 'noise_snr_min_db', 'noise_snr_max_db',
                'vad_cut_probability')
PROBABILITY_FIELDS = ('noise_probability', 'vad_cut_probability')
BOOL_FIELDS = ('noisy_cuts',)
# Frames within this many dB of an utterance's loudest frame count as its speech when the SNR
# is measured (as bench/noise_robustness.py measures it on waveforms).
SPEECH_RANGE_DB = 35.0
# The noise bank: babble mixes this many training utterances (bag_tools mixes as many voices).
BABBLE_TALKERS = 6
BABBLE_ENTRIES = 4
DB_PER_DECADE = 10.0


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
    # Share of examples that get noise (NoiseMixer), at an SNR drawn uniformly in dB.
    noise_probability: float = 0.0
    noise_snr_min_db: float = 0.0
    noise_snr_max_db: float = 30.0
    # Feature sets NoiseMixer cannot mix into (not mel in dB): noisy recordings made per file
    # (ser_ros.training.noisy_copies), one of which replaces a noisy example.
    noise_copies: int = 4
    # Share of examples replaced by what vad_node cuts from the same recording.
    vad_cut_probability: float = 0.0
    # With noisy copies: cut a noisy example too, with vad_cut_probability, as vad_node cuts
    # the noisy recording (mel features mix their noise into the cuts already).
    noisy_cuts: bool = False

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in BOOL_FIELDS:
                if not isinstance(value, bool):
                    raise ValueError(f'training.augment.{item.name} must be true or false, '
                                     f'got {value!r}')
            elif item.name in FLOAT_FIELDS:
                if (isinstance(value, bool) or not isinstance(value, (int, float))
                        or not math.isfinite(value)):
                    raise ValueError(f'training.augment.{item.name} must be a number, '
                                     f'got {value!r}')
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f'training.augment.{item.name} must be an integer >= 0, '
                                 f'got {value!r}')
        if not 0.0 <= self.freq_warp < MAX_FREQ_WARP:
            raise ValueError(f'training.augment.freq_warp must be a number in '
                             f'[0, {MAX_FREQ_WARP}), got {self.freq_warp!r}')
        for name in PROBABILITY_FIELDS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'training.augment.{name} must be in [0, 1], '
                                 f'got {getattr(self, name)!r}')
        if self.noisy_cuts and not (self.noise_probability and self.vad_cut_probability):
            raise ValueError('training.augment.noisy_cuts needs noise_probability and '
                             'vad_cut_probability above 0')
        if self.noise_snr_min_db > self.noise_snr_max_db:
            raise ValueError(f'training.augment.noise_snr_min_db ({self.noise_snr_min_db}) '
                             f'exceeds noise_snr_max_db ({self.noise_snr_max_db})')

    @property
    def enabled(self) -> bool:
        """Whether any perturbation is configured."""
        return bool(self.time_masks or self.freq_masks or self.max_shift or self.freq_warp
                    or self.noise_probability or self.vad_cut_probability)

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


def _unit_power(power: np.ndarray) -> np.ndarray:
    return power / power.mean()


def noise_bank(raw_features: Callable[[np.ndarray], np.ndarray], num_samples: int,
               speech: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Mel power spectrograms (K, F, T) of noise, each of mean 1, for :class:`NoiseMixer`.

    ``raw_features`` is the front end without normalisation (dB under the loudest bin) and
    ``num_samples`` its input length; ``speech`` holds raw training features (N, F, T), whose
    sums make the babble. White noise is flat, pink noise falls 3 dB per octave (fans, air
    conditioning, traffic).
    """
    white = rng.standard_normal(num_samples)
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
    spectrum[0] = 0.0
    pink = np.fft.irfft(spectrum, num_samples)
    entries = [_unit_power(librosa.db_to_power(raw_features(
        (signal / np.abs(signal).max()).astype(np.float32)))) for signal in (white, pink)]
    talkers = np.stack([_unit_power(librosa.db_to_power(item)) for item in speech])
    for _ in range(BABBLE_ENTRIES):
        chosen = rng.choice(len(talkers), size=min(BABBLE_TALKERS, len(talkers)), replace=False)
        shifts = rng.integers(0, talkers.shape[2], size=len(chosen))
        entries.append(_unit_power(sum(np.roll(talkers[i], shift, axis=1)
                                       for i, shift in zip(chosen, shifts, strict=True))))
    return torch.from_numpy(np.stack(entries).astype(np.float32))


class NoiseMixer:
    """Adds noise to normalised mel features as if it had been in the recording (see above).

    ``mean`` and ``std`` are the normaliser's (per row), ``bank`` comes from
    :func:`noise_bank`, ``floor_db`` is the feature set's ``top_db``.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, bank: torch.Tensor,
                 floor_db: float) -> None:
        self.mean = torch.tensor(np.asarray(mean), dtype=torch.float32).view(1, -1, 1)
        self.std = torch.tensor(np.asarray(std), dtype=torch.float32).view(1, -1, 1)
        self.bank = bank
        self.floor_db = float(floor_db)

    def for_rows(self, index: torch.Tensor) -> NoiseMixer:
        """Return the noise of a batch of training examples: this mixer, whichever they are."""
        return self

    def __call__(self, features: torch.Tensor, config: AugmentConfig,
                 generator: torch.Generator) -> torch.Tensor:
        """Return ``features`` with noise in ``config.noise_probability`` of the examples."""
        chosen = torch.rand(len(features), generator=generator) < config.noise_probability
        if not chosen.any():
            return features
        raw = features[chosen] * self.std + self.mean                    # dB, <= 0
        power = torch.pow(10.0, raw.clamp(min=-self.floor_db) / DB_PER_DECADE)
        count, _, frames = raw.shape
        # Leading padding (every band on the floor) is digital silence: no noise there.
        silent = (raw <= -self.floor_db + 1e-3).all(dim=1)              # (n, T)
        content = torch.cumsum(~silent, dim=1) > 0
        frame_power = power.mean(dim=1)                                   # (n, T)
        loudest = frame_power.amax(dim=1, keepdim=True)
        speaking = frame_power >= loudest * 10.0 ** (-SPEECH_RANGE_DB / DB_PER_DECADE)
        speech_power = (frame_power * speaking).sum(dim=1) / speaking.sum(dim=1)
        low, high = config.noise_snr_min_db, config.noise_snr_max_db
        snr_db = low + (high - low) * torch.rand(count, generator=generator)
        entry = torch.randint(0, len(self.bank), (count,), generator=generator)
        offset = torch.randint(0, self.bank.shape[2], (count,), generator=generator)
        columns = (offset.view(-1, 1) + torch.arange(frames).view(1, -1)) % self.bank.shape[2]
        noise = self.bank[entry.view(-1, 1), :, columns].transpose(1, 2)  # (n, F, T)
        gain = (speech_power / 10.0 ** (snr_db / DB_PER_DECADE)).view(-1, 1, 1)
        mixed = power + gain * noise * content.unsqueeze(1)
        loudest_bin = mixed.amax(dim=(1, 2), keepdim=True)
        mixed_db = (DB_PER_DECADE * torch.log10(mixed / loudest_bin)).clamp(min=-self.floor_db)
        result = features.clone()
        result[chosen] = (mixed_db - self.mean) / self.std
        return result


class CopyNoise:
    """Noise as noisy recordings made beforehand: normalised features (copies, N, F, T).

    Row ``i`` of the copies belongs to training example ``i``; :meth:`for_rows` picks a batch's.
    ``cut_copies``, of the same shape, are the same copies as vad_node cuts them
    (``training.augment.noisy_cuts``).
    """

    def __init__(self, copies: torch.Tensor, cut_copies: torch.Tensor | None = None) -> None:
        if copies.dim() != 4 or len(copies) == 0:
            raise ValueError(f'noisy copies must be (copies, N, F, T), got {tuple(copies.shape)}')
        if cut_copies is not None and cut_copies.shape != copies.shape:
            raise ValueError(f'cut noisy copies {tuple(cut_copies.shape)} do not match the '
                             f'copies {tuple(copies.shape)}')
        self.copies = copies
        self.cut_copies = cut_copies

    def for_rows(self, index: torch.Tensor) -> CopyNoise:
        """Return the copies of the batch of training examples ``index``."""
        return CopyNoise(self.copies[:, index],
                         None if self.cut_copies is None else self.cut_copies[:, index])

    def __call__(self, features: torch.Tensor, config: AugmentConfig,
                 generator: torch.Generator) -> torch.Tensor:
        """Return ``features`` with ``config.noise_probability`` of them swapped for a copy.

        With cut copies, a swapped example is a cut copy with ``config.vad_cut_probability``.
        """
        if self.copies.shape[1:] != features.shape:
            raise ValueError(f'noisy copies {tuple(self.copies.shape[1:])} do not match the '
                             f'batch {tuple(features.shape)}')
        chosen = torch.rand(len(features), generator=generator) < config.noise_probability
        which = torch.randint(0, len(self.copies), (len(features),), generator=generator)
        rows = torch.arange(len(features))
        picked = self.copies[which, rows]
        if self.cut_copies is not None:
            cut = torch.rand(len(features), generator=generator) < config.vad_cut_probability
            picked = torch.where(cut.view(-1, 1, 1), self.cut_copies[which, rows], picked)
        return torch.where(chosen.view(-1, 1, 1), picked, features)


NoiseSource = NoiseMixer | CopyNoise


def augment_batch(features: torch.Tensor, config: AugmentConfig,
                  generator: torch.Generator, noise: NoiseSource | None = None,
                  cuts: torch.Tensor | None = None) -> torch.Tensor:
    """Return a perturbed copy of a (B, F, T) batch; the input is left unchanged.

    Noise (``config.noise_probability``) needs ``noise``: the run's mixer, or the batch's
    noisy copies (``CopyNoise.for_rows``);
    VAD cuts (``config.vad_cut_probability``) need ``cuts``, the batch's recordings as
    vad_node cuts them (normalised features of the same shape).
    """
    if not config.enabled:
        return features
    if config.vad_cut_probability:
        if cuts is None or cuts.shape != features.shape:
            raise ValueError('training.augment.vad_cut_probability needs the VAD-cut features '
                             'of the batch, of its shape')
        chosen = torch.rand(len(features), generator=generator) < config.vad_cut_probability
        features = torch.where(chosen.view(-1, 1, 1), cuts, features)
    if config.noise_probability:
        if noise is None:
            raise ValueError('training.augment.noise_probability needs a NoiseMixer or '
                             'noisy copies')
        features = noise(features, config, generator)
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
