"""Frame classifiers for the segmenter: label each short frame of audio speech or not.

Two detectors, each with the frame lengths and rates it takes (``DETECTORS``):

- ``webrtcvad``: the WebRTC GMM detector; 10, 20 or 30 ms frames at 8, 16, 32 or 48 kHz;
  ``aggressiveness`` 0-3. Cheap (about 3 ms of CPU per second of audio).
- ``silero``: Silero VAD v5+ (the ``silero-vad`` package, TorchScript model shipped in its
  wheel); exactly 32 ms frames (512 samples at 16 kHz, 256 at 8 kHz); a frame is speech when
  the model's probability is >= ``threshold``. The model is recurrent: ``reset()`` it at the
  start of a new stream. Better in noise and with background voices, about 20 times the CPU
  of webrtcvad (docs/peers.md).

Both take mono float32 frames in [-1, 1] of exactly ``frame_samples`` samples.

torch threads: importing ``silero_vad`` sets torch to one intra-op thread for the whole
process; the previous count is restored right after the import. Each Silero call then runs
on one thread and restores the caller's count: the model is far too small to gain from more
threads, and with busy cores a second thread made a call 20-70 times slower (0.4-0.7 ms
against 15-50 ms per 32 ms frame on 2 loaded cores). The count is process-wide, so another
thread's torch work that starts during a Silero call (under 1 ms, 31 calls per second) runs
on one thread too; nothing else changes for it.
"""

from __future__ import annotations

import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import webrtcvad

from ser_ros.core.pcm import encode_s16le

MS_PER_SECOND = 1000
WARM_UP_CALLS = 3


@dataclass(frozen=True)
class DetectorSpec:
    """What one detector takes: its name, sample rates (Hz) and frame lengths (ms)."""

    name: str
    rates: tuple[int, ...]
    frame_ms: tuple[int, ...]
    why: str = ''

    def check(self, rate: int, frame_ms: int) -> None:
        """Raise ValueError naming ``vad_rate`` or ``frame_ms`` when this detector refuses it."""
        for name, value, allowed in (('vad_rate', rate, self.rates),
                                     ('frame_ms', frame_ms, self.frame_ms)):
            if isinstance(value, bool) or value not in allowed:
                because = f' ({self.why})' if self.why else ''
                what = (str(allowed[0]) if len(allowed) == 1 else
                        'one of ' + ', '.join(map(str, allowed)))
                raise ValueError(f'{name} must be {what} with detector {self.name!r}{because}, '
                                 f'got {value!r}')


WEBRTCVAD = DetectorSpec('webrtcvad', (8000, 16000, 32000, 48000), (10, 20, 30))
SILERO = DetectorSpec('silero', (8000, 16000), (32,),
                      'Silero VAD takes 512 samples at 16 kHz or 256 at 8 kHz per call')
DETECTORS: dict[str, DetectorSpec] = {spec.name: spec for spec in (WEBRTCVAD, SILERO)}
WEBRTCVAD_AGGRESSIVENESS = (0, 1, 2, 3)


def check_detector(name: str) -> DetectorSpec:
    """Return the spec of detector ``name``; ValueError naming ``detector`` if unknown."""
    if not isinstance(name, str) or name not in DETECTORS:
        raise ValueError(f'detector must be one of {", ".join(DETECTORS)}, got {name!r}')
    return DETECTORS[name]


def check_threshold(threshold: float) -> float:
    """Return a Silero speech threshold as float; ValueError unless 0 < threshold < 1."""
    if (isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number))
            or not 0.0 < float(threshold) < 1.0):
        raise ValueError(f'silero_threshold must be a number within 0..1 (exclusive), '
                         f'got {threshold!r}')
    return float(threshold)


class DetectorUnavailableError(ValueError):
    """The chosen detector cannot run here (its package is missing)."""


class FrameClassifier(ABC):
    """Labels fixed frames of one stream speech or not; ``reset()`` starts a new stream."""

    spec: DetectorSpec

    def __init__(self, rate: int, frame_ms: int) -> None:
        self.spec.check(rate, frame_ms)
        self.rate = int(rate)
        self.frame_ms = int(frame_ms)
        self.frame_samples = self.rate * self.frame_ms // MS_PER_SECOND

    @abstractmethod
    def is_speech(self, frame: np.ndarray) -> bool:
        """Whether ``frame`` (float32, exactly ``frame_samples`` long) is speech."""

    @abstractmethod
    def reset(self) -> None:
        """Forget the stream so far (a new stream starts with the next frame)."""

    def _check_frame(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim != 1 or len(frame) != self.frame_samples:
            raise ValueError(f'{self.spec.name} frames must be {self.frame_samples} mono samples '
                             f'({self.frame_ms} ms at {self.rate} Hz), got shape {frame.shape}')
        return frame


class WebrtcvadClassifier(FrameClassifier):
    """webrtcvad at ``aggressiveness`` 0 (keeps the most as speech) .. 3 (the strictest)."""

    spec = WEBRTCVAD

    def __init__(self, rate: int = 16000, frame_ms: int = 20, aggressiveness: int = 2) -> None:
        super().__init__(rate, frame_ms)
        if isinstance(aggressiveness, bool) or aggressiveness not in WEBRTCVAD_AGGRESSIVENESS:
            raise ValueError('aggressiveness must be one of 0, 1, 2, 3, '
                             f'got {aggressiveness!r}')
        self.aggressiveness = int(aggressiveness)
        self.reset()

    def is_speech(self, frame: np.ndarray) -> bool:
        """Whether webrtcvad labels the frame voiced."""
        return self._vad.is_speech(encode_s16le(self._check_frame(frame)), self.rate)

    def reset(self) -> None:
        """Start a fresh webrtcvad instance (its noise estimates belong to the old stream)."""
        self._vad = webrtcvad.Vad(self.aggressiveness)


class SileroClassifier(FrameClassifier):
    """Silero VAD: speech when the model's probability of a 32 ms frame is >= ``threshold``."""

    spec = SILERO

    def __init__(self, rate: int = 16000, threshold: float = 0.5) -> None:
        super().__init__(rate, SILERO.frame_ms[0])
        self.threshold = check_threshold(threshold)
        self._torch, self._model = _load_silero()
        # TorchScript profiles its first calls (~65 ms together): do them now, not on speech.
        silence = np.zeros(self.frame_samples, dtype=np.float32)
        for _ in range(WARM_UP_CALLS):
            self.probability(silence)
        self.reset()

    def probability(self, frame: np.ndarray) -> float:
        """Speech probability of the next frame of the stream (advances the model's state)."""
        torch = self._torch
        tensor = torch.from_numpy(np.ascontiguousarray(self._check_frame(frame),
                                                       dtype=np.float32))[None]
        with _one_thread(torch), torch.inference_mode():
            return float(self._model(tensor, self.rate).item())

    def is_speech(self, frame: np.ndarray) -> bool:
        """Whether the speech probability of the frame reaches ``threshold``."""
        return self.probability(frame) >= self.threshold

    def reset(self) -> None:
        """Clear the model's recurrent state and audio context."""
        self._model.reset_states()


def make_classifier(detector: str = 'webrtcvad', rate: int = 16000, frame_ms: int = 20,
                    aggressiveness: int = 2, silero_threshold: float = 0.5) -> FrameClassifier:
    """Build the classifier of ``detector``; the options of the other detector are ignored."""
    if check_detector(detector) is SILERO:
        SILERO.check(rate, frame_ms)
        return SileroClassifier(rate, silero_threshold)
    return WebrtcvadClassifier(rate, frame_ms, aggressiveness)


_THREADS_LOCK = threading.Lock()


@contextmanager
def _one_thread(torch: Any) -> Iterator[None]:
    """Run torch on one intra-op thread inside the block; restore the caller's count after."""
    with _THREADS_LOCK:
        saved = torch.get_num_threads()
        if saved != 1:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if saved != 1:
                torch.set_num_threads(saved)


def _load_silero() -> tuple[Any, Any]:
    """Import silero_vad (keeping torch's thread count) and load its TorchScript model."""
    import torch

    threads = torch.get_num_threads()
    try:
        import silero_vad
    except ImportError as error:
        raise DetectorUnavailableError(
            "detector 'silero' needs the silero-vad package (pip install --no-deps "
            f'silero-vad==6.2.3; see requirements/bench.in): {error}') from None
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    with _one_thread(torch), warnings.catch_warnings():
        # silero_vad 6.2 loads with importlib.resources.path and torch.jit.load, both deprecated.
        warnings.simplefilter('ignore', DeprecationWarning)
        model = silero_vad.load_silero_vad(onnx=False)
    return torch, model
