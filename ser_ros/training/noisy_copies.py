"""Noisy copies of training recordings, for front ends whose features noise cannot be mixed into.

:class:`~ser_ros.training.augment.NoiseMixer` adds noise to mel spectrograms directly, fresh
each epoch. Other feature sets (the paper's ``iemocap`` set: spectral centroid, roll-off,
MFCCs...) are not sums of band powers, so noise has to go into the recording itself. Each
training recording gets ``noise_copies`` noisy versions, made once: white noise or babble of
other training speakers, at an SNR drawn uniformly between ``noise_snr_min_db`` and
``noise_snr_max_db`` and measured against the speech alone (``ser_ros.core.mixing``, as
``ser_bag build`` and the noise benchmarks mix). Their features are cached like the clean
ones; training swaps an example for one of its copies with ``noise_probability``.
With ``noisy_cuts``, each copy is also cut as vad_node would cut the noisy recording
(:class:`CutNoisyCopy`), so that noise and the VAD's cut meet in training as on the ward.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser_ros.core.audio import load_audio
from ser_ros.core.mixing import BABBLE_VERSION, NOISE_KINDS, add_noise, speech_bounds
from ser_ros.training.augment import SPEECH_RANGE_DB
from ser_ros.training.vad_cuts import VadCutter

# Training recordings whose speech, end to end, the babble is made of.
BABBLE_RECORDINGS = 12
SEED_RANGE = 2**31


@dataclass(frozen=True)
class NoisyCopy:
    """One noisy version of any recording (picklable for worker processes).

    The noise depends only on ``seed``, ``copy`` and the samples themselves, so the same file
    gets the same copy in every run and fold that share the settings.
    """

    copy: int
    seed: int
    snr_min_db: float
    snr_max_db: float
    babble_sources: tuple[str, ...]
    babble: np.ndarray = field(repr=False, compare=False)

    name = 'noisy'

    def __call__(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Return the recording with noise over its whole length, and its rate.

        A silent recording comes back as it is: without speech there is no SNR to set.
        """
        samples = np.asarray(waveform, dtype=np.float32)
        if not np.any(samples):
            return samples, sample_rate
        rng = np.random.default_rng([self.seed, self.copy, zlib.crc32(samples.tobytes())])
        kind = NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))]
        snr_db = float(rng.uniform(self.snr_min_db, self.snr_max_db))
        spans = [speech_bounds(samples, sample_rate, SPEECH_RANGE_DB)]
        noisy = add_noise(samples, spans, snr_db, kind, seed=int(rng.integers(SEED_RANGE)),
                          talkers=self.babble)
        return noisy, sample_rate

    def describe(self) -> dict[str, Any]:
        """Everything the copy depends on (part of the feature cache key and run fingerprint)."""
        return {'copy': self.copy, 'seed': self.seed, 'snr_db': [self.snr_min_db, self.snr_max_db],
                'kinds': list(NOISE_KINDS), 'speech_trim_db': SPEECH_RANGE_DB,
                'babble_sources': list(self.babble_sources), 'babble_version': BABBLE_VERSION}


@dataclass(frozen=True)
class CutNoisyCopy:
    """A noisy copy of a recording as vad_node cuts it (picklable for worker processes)."""

    noisy: NoisyCopy
    cutter: VadCutter

    name = 'noisy-vadcut'

    def __call__(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Return what emotion_node would classify of the noisy recording, and its rate."""
        return self.cutter(*self.noisy(waveform, sample_rate))

    def describe(self) -> dict[str, Any]:
        """Everything the cut copy depends on (part of the feature cache key)."""
        return {self.noisy.name: self.noisy.describe(), self.cutter.name: self.cutter.describe()}


def babble_speech(paths: Sequence[Path], sample_rate: int) -> np.ndarray:
    """Return the speech of ``paths`` end to end (silent margins trimmed): the babble's voices.

    Silent recordings add nothing; all of them silent is an error.
    """
    parts = []
    for path in paths:
        samples = load_audio(path, sample_rate)
        if np.any(samples):
            first, last = speech_bounds(samples, sample_rate, SPEECH_RANGE_DB)
            parts.append(samples[first:last])
    if not parts:
        raise ValueError(f'no speech for babble noise in {len(paths)} training recordings '
                         f'(all silent)')
    return np.concatenate(parts)


def noisy_copies(train_paths: Sequence[Path], copies: int, seed: int, snr_min_db: float,
                 snr_max_db: float, sample_rate: int) -> list[NoisyCopy]:
    """Return the ``copies`` transforms of one run, babble made of its own training recordings."""
    if copies < 1:
        raise ValueError(f'training.augment.noise_copies must be >= 1 for this feature set, '
                         f'got {copies}')
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(train_paths), min(BABBLE_RECORDINGS, len(train_paths)),
                               replace=False))
    sources = [Path(train_paths[index]) for index in chosen]
    babble = babble_speech(sources, sample_rate)
    names = tuple(path.name for path in sources)
    return [NoisyCopy(copy, seed, snr_min_db, snr_max_db, names, babble)
            for copy in range(copies)]
