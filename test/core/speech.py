"""Real-speech helpers shared by the segmenter and voice-activity tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

RATE = 16000
CHUNK = 320  # 20 ms at 16 kHz, as the microphone publishes


def read(path: Path) -> np.ndarray:
    """Mono float32 samples of a 16 kHz file."""
    samples, rate = soundfile.read(path, dtype='float32')
    assert rate == RATE
    return samples


def speech_extent(samples: np.ndarray) -> tuple[float, float]:
    """Start and end (s) of the 20 ms frames within 30 dB of the loudest one."""
    frames = samples[:len(samples) // CHUNK * CHUNK].reshape(-1, CHUNK)
    level = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - 30)
    return loud[0] * CHUNK / RATE, (loud[-1] + 1) * CHUNK / RATE
