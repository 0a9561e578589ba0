"""Where the speech of a recording is, and background noise laid over it at a given SNR.

Shared by ``ser_bag build`` (test bags) and the noise benchmarks: the SNR is measured against
the power of the speech alone, so a file's silent margins do not change it. Noise is white
(Gaussian) or babble (shifted copies of speech summed: talkers in the background).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NOISE_KINDS = ('white', 'babble')
TRIM_FRAME_MS = 10
TRIM_MIN_RUN = 5
BABBLE_VOICES = 6
# Version of the babble generator: part of what noisy training copies are cached under.
# 2: each voice starts anywhere in the talkers' speech (1 took only its first `length`
# samples, so one or two recordings talked however many were given).
BABBLE_VERSION = 2
_PEAK = 0.99


def speech_bounds(samples: np.ndarray, sample_rate: int, trim_db: float) -> tuple[int, int]:
    """First and one-past-last sample of the runs of frames within `trim_db` of the loudest.

    `trim_db` <= 0 keeps the whole signal. Raises ValueError for a silent signal.
    """
    if len(samples) == 0 or not np.any(samples):
        raise ValueError('the audio is empty or silent: no speech to place')
    if trim_db <= 0:
        return 0, len(samples)
    frame = max(1, sample_rate * TRIM_FRAME_MS // 1000)
    count = len(samples) // frame
    if count == 0:
        return 0, len(samples)
    power = np.mean(samples[:count * frame].reshape(count, frame).astype(np.float64) ** 2,
                    axis=1)
    level = 10 * np.log10(np.maximum(power, 1e-20))
    loud = level >= level.max() - trim_db
    # Only runs of TRIM_MIN_RUN loud frames count: a click in the room tone is not speech.
    run = np.convolve(loud, np.ones(TRIM_MIN_RUN, dtype=int), mode='valid') == TRIM_MIN_RUN
    starts = np.flatnonzero(run)
    if len(starts) == 0:
        starts = np.flatnonzero(loud)
        first, last = starts[0], starts[-1]
    else:
        first, last = starts[0], starts[-1] + TRIM_MIN_RUN - 1
    return int(first * frame), int(min(len(samples), (last + 1) * frame))


def make_noise(kind: str, length: int, rng: np.random.Generator,
               speech: np.ndarray | None = None) -> np.ndarray:
    """Unit-power noise of `length` samples: white (Gaussian) or babble (shifted speech sum)."""
    if kind == 'white':
        noise = rng.standard_normal(length)
    elif kind == 'babble':
        if speech is None or not np.any(speech):
            raise ValueError('babble noise needs speech to mix')
        source = speech.astype(np.float64)
        noise = np.zeros(length)
        for _ in range(BABBLE_VOICES):
            start = int(rng.integers(0, len(source)))
            noise += source[(start + np.arange(length)) % len(source)]
    else:
        raise ValueError(f'unknown noise kind {kind!r}; choose one of {NOISE_KINDS}')
    power = float(np.mean(noise ** 2))
    return noise / np.sqrt(power) if power > 0 else noise


def normalize(speech: np.ndarray, level_db: float) -> np.ndarray:
    """Scale speech to an RMS of `level_db` dBFS (less if its peak would clip)."""
    rms = float(np.sqrt(np.mean(speech.astype(np.float64) ** 2)))
    peak = float(np.max(np.abs(speech)))
    if rms == 0:
        return speech
    gain = min(10 ** (level_db / 20) / rms, _PEAK / peak)
    return (speech * gain).astype(np.float32)


def add_noise(stream: np.ndarray, spans: Sequence[tuple[int, int]], snr_db: float,
              kind: str = 'white', seed: int = 0, talkers: np.ndarray | None = None
              ) -> np.ndarray:
    """Stream plus `kind` noise whose power is `snr_db` below the mean power of the speech.

    Babble mixes shifted copies of `talkers` (default: the stream's own speech).
    """
    if not spans:
        raise ValueError('no speech spans to measure the SNR against')
    speech = np.concatenate([stream[a:b] for a, b in spans]).astype(np.float64)
    speech_power = float(np.mean(speech ** 2))
    if speech_power <= 0:
        raise ValueError('the speech is silent: the SNR is undefined')
    noise = make_noise(kind, len(stream), np.random.default_rng(seed),
                       speech if talkers is None else talkers)
    noisy = stream + noise * np.sqrt(speech_power / 10 ** (snr_db / 10))
    peak = float(np.max(np.abs(noisy)))
    # Scale down rather than clip, so the SNR stays what was asked for.
    return (noisy * (_PEAK / peak) if peak > _PEAK else noisy).astype(np.float32)
