"""Emotion recognition from waveforms with a checkpoint: front end + network + softmax.

The recogniser builds its front end from the checkpoint (never from defaults), runs an
inference copy of the network (BatchNorm folded, channels-last) under ``torch.inference_mode``
and returns probabilities in the checkpoint's label order. An ensemble file
(``ser_ros.core.ensemble``) gets one recogniser per member and the mean of their probabilities.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ser_ros.core.audio import append_silence, load_audio
from ser_ros.core.checkpoint import Checkpoint
from ser_ros.core.ensemble import Ensemble, load_model
from ser_ros.core.features import FrontEnd
from ser_ros.core.heap import retain_freed_memory
from ser_ros.core.model import PaddingResponse, SerNet, fuse_for_inference

DEVICE_CHOICES = ('auto', 'cpu', 'cuda')
WARM_UP_RUNS = 2


def prediction(labels: Sequence[str], probabilities: np.ndarray) -> Prediction:
    """Make the Prediction of one row of probabilities in ``labels`` order."""
    values = {label: float(p) for label, p in zip(labels, probabilities, strict=True)}
    return Prediction(labels[int(np.argmax(probabilities))], values)


@dataclass(frozen=True)
class Prediction:
    """The most probable label and every label's probability (checkpoint order)."""

    label: str
    probabilities: dict[str, float]

    @property
    def confidence(self) -> float:
        """Probability of the predicted label."""
        return self.probabilities[self.label]


def resolve_device(device: str) -> torch.device:
    """Map 'auto' | 'cpu' | 'cuda[:N]' to a torch device; asking for absent CUDA is an error."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f'unknown device {device!r}: use one of {DEVICE_CHOICES}') from error
    if resolved.type not in ('cpu', 'cuda'):
        raise ValueError(f'unsupported device {device!r}: use one of {DEVICE_CHOICES}')
    if resolved.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(
            f'device {device!r} requested but CUDA is not available to this torch build '
            f'({torch.__version__}); use --device cpu or auto'
        )
    return resolved


def bf16_supported(device: torch.device) -> bool:
    """Whether the device computes bfloat16 natively (CPU: AVX512-BF16 or AMX)."""
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    # torch exposes these capability probes only as private helpers; absent means 'no'.
    probes = ('_is_avx512_bf16_supported', '_is_amx_tile_supported')
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


class EmotionRecognizer:
    """Waveform -> emotion probabilities with one checkpoint's front end and network.

    ``skip_padding`` reuses the network's response to leading padding (see PaddingResponse):
    the same results up to float rounding, about a third less network time on VAD-cut speech.
    ``trailing_silence_s`` of zeros are appended to every utterance before its features: the
    training recordings end in silence, a VAD's cut ends where the speech does
    (docs/model_notes.md, "silence after the VAD's cut").
    """

    def __init__(self, model: SerNet, front_end: FrontEnd, labels: Sequence[str],
                 device: str = 'auto', bf16: bool = False, skip_padding: bool = True,
                 trailing_silence_s: float = 0.0) -> None:
        if not math.isfinite(trailing_silence_s) or trailing_silence_s < 0:
            raise ValueError(f'trailing_silence_s must be finite and >= 0, '
                             f'got {trailing_silence_s}')
        self._trailing_silence_s = float(trailing_silence_s)
        self._device = resolve_device(device)
        if bf16 and not bf16_supported(self._device):
            warnings.warn(
                f'bf16 requested but {self._device.type} has no native bfloat16 support; '
                'running in float32', RuntimeWarning, stacklevel=2,
            )
            bf16 = False
        self._bf16 = bf16
        if self._device.type == 'cpu':
            retain_freed_memory()
        self._model = fuse_for_inference(model).to(self._device)
        front_end = front_end.with_encoder_device(device)
        self._front_end = front_end
        self._labels = tuple(labels)
        if len(self._labels) != model.config.num_classes:
            raise ValueError(
                f'{len(self._labels)} labels for a model with {model.config.num_classes} outputs'
            )
        if front_end.feature_shape != (model.config.num_features, model.config.num_frames):
            raise ValueError(
                f'front end gives features {front_end.feature_shape}, the model expects '
                f'{(model.config.num_features, model.config.num_frames)}'
            )
        # Only the conv blocks can skip padding; the probe costs one extraction at start-up.
        column = (front_end.padding_column() if skip_padding and model.config.uses_conv
                  else None)
        self._padding: PaddingResponse | None = None
        if column is not None:
            with torch.inference_mode(), self._autocast():
                self._padding = self._model.padding_response(
                    torch.from_numpy(column).to(self._device))

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: str = 'auto',
                        bf16: bool = False, skip_padding: bool = True,
                        trailing_silence_s: float = 0.0) -> EmotionRecognizer:
        """Load a checkpoint (validated, no code execution) and build its recogniser."""
        checkpoint = Checkpoint.load(path)
        return cls(checkpoint.build_model(), checkpoint.front_end(), checkpoint.labels,
                   device=device, bf16=bf16, skip_padding=skip_padding,
                   trailing_silence_s=trailing_silence_s)

    @property
    def labels(self) -> tuple[str, ...]:
        """Class labels in the order of the network outputs."""
        return self._labels

    @property
    def device(self) -> torch.device:
        """Device the network runs on."""
        return self._device

    @property
    def bf16(self) -> bool:
        """Whether inference runs under bfloat16 autocast."""
        return self._bf16

    @property
    def trailing_silence_s(self) -> float:
        """Seconds of silence appended to every utterance before its features."""
        return self._trailing_silence_s

    @property
    def front_end(self) -> FrontEnd:
        """Audio handling, features and normalisation of this model."""
        return self._front_end

    @property
    def sample_rate(self) -> int:
        """Sample rate the front end works at (files are read at it)."""
        return self._front_end.audio.sample_rate

    @property
    def skips_padding(self) -> bool:
        """Whether the network skips windows of leading padding (see ``skip_padding``)."""
        return self._padding is not None

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self._device.type, dtype=torch.bfloat16, enabled=self._bf16)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (B, C) for normalised features (B, F, T)."""
        batch = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        with torch.inference_mode(), self._autocast():
            logits = self._model(batch.to(self._device), self._padding)
            probabilities = torch.softmax(logits.float(), dim=1)
        return probabilities.cpu().numpy()

    def _prediction(self, probabilities: np.ndarray) -> Prediction:
        return prediction(self._labels, probabilities)

    @staticmethod
    def stack(items: Sequence[np.ndarray]) -> np.ndarray:
        """One batch for ``probabilities`` from several utterances' ``features``."""
        return np.stack(items)

    def features(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        """Normalised network input (F, T) of one utterance, as the model was trained."""
        if self._trailing_silence_s:
            waveform = append_silence(waveform, sample_rate, self._trailing_silence_s)
        return self._front_end(waveform, sample_rate)

    def predict(self, waveform: np.ndarray, sample_rate: int) -> Prediction:
        """Classify one utterance (any rate and length; resampled, cut or padded as trained)."""
        features = self.features(waveform, sample_rate)
        return self._prediction(self.probabilities(features[np.newaxis])[0])

    def predict_batch(self, items: Sequence[tuple[np.ndarray, int]]) -> list[Prediction]:
        """Classify several (waveform, sample_rate) utterances in one network call."""
        if not items:
            return []
        features = np.stack([self.features(waveform, rate) for waveform, rate in items])
        return [self._prediction(row) for row in self.probabilities(features)]

    def predict_file(self, path: str | os.PathLike[str]) -> Prediction:
        """Classify an audio file (any format soundfile reads)."""
        return self.predict(load_audio(path, sample_rate=self.sample_rate), self.sample_rate)

    def warm_up(self, runs: int = WARM_UP_RUNS) -> None:
        """Run silence through the whole path so the first real call is not slow."""
        audio = self._front_end.audio
        silence = np.zeros(audio.num_samples, dtype=np.float32)
        for _ in range(runs):
            self.predict(silence, audio.sample_rate)
        if self._padding is None:
            return
        column = self._padding.column.float().cpu().numpy()[:, np.newaxis]
        frames = self._front_end.feature_shape[1]
        for length in self._model.padding_lengths():
            if length >= frames:
                break
            features = np.repeat(column, frames, axis=1)
            features[:, length:] += 1.0        # anything but padding
            for _ in range(runs):
                self.probabilities(features[np.newaxis])


class EnsembleRecognizer:
    """Waveform -> the mean of several recognisers' probabilities (an ensemble's members).

    Same interface as :class:`EmotionRecognizer`; ``features`` gives one array per member
    (each member has its own front end) and ``probabilities`` takes what ``stack`` makes of them.
    """

    def __init__(self, members: Sequence[EmotionRecognizer]) -> None:
        self._members = tuple(members)
        if len(self._members) < 2:
            raise ValueError(f'an ensemble needs at least 2 members, got {len(self._members)}')
        if any(member.labels != self._members[0].labels for member in self._members):
            raise ValueError('ensemble members must share one label order')
        # Members with equal front ends and silence share one extraction: the index of the
        # first member whose features each member takes.
        self._feature_source = [
            next(first for first, earlier in enumerate(self._members)
                 if earlier.front_end == member.front_end
                 and earlier.trailing_silence_s == member.trailing_silence_s)
            for member in self._members]

    @classmethod
    def from_ensemble(cls, ensemble: Ensemble, **options: Any) -> EnsembleRecognizer:
        """One EmotionRecognizer per member, with the same ``options`` for each."""
        return cls([EmotionRecognizer(member.build_model(), member.front_end(), member.labels,
                                      **options) for member in ensemble.members])

    @property
    def members(self) -> tuple[EmotionRecognizer, ...]:
        """The member recognisers, in the ensemble file's order."""
        return self._members

    @property
    def labels(self) -> tuple[str, ...]:
        """Class labels in the order of the averaged probabilities."""
        return self._members[0].labels

    @property
    def device(self) -> torch.device:
        """Device the networks run on."""
        return self._members[0].device

    @property
    def bf16(self) -> bool:
        """Whether inference runs under bfloat16 autocast."""
        return self._members[0].bf16

    @property
    def trailing_silence_s(self) -> float:
        """Seconds of silence appended to every utterance before its features."""
        return self._members[0].trailing_silence_s

    @property
    def skips_padding(self) -> bool:
        """Whether every member skips windows of leading padding."""
        return all(member.skips_padding for member in self._members)

    def features(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, ...]:
        """Each member's normalised network input of one utterance (shared where equal)."""
        extracted: dict[int, np.ndarray] = {}
        for source in self._feature_source:
            if source not in extracted:
                extracted[source] = self._members[source].features(waveform, sample_rate)
        return tuple(extracted[source] for source in self._feature_source)

    @staticmethod
    def stack(items: Sequence[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
        """One batch per member from several utterances' ``features``."""
        return tuple(np.stack(column) for column in zip(*items, strict=True))

    def probabilities(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Mean class probabilities (B, C) of the members, one (B, F, T) batch each."""
        if len(features) != len(self._members):
            raise ValueError(f'{len(features)} feature batches for {len(self._members)} members')
        return np.mean([member.probabilities(batch)
                        for member, batch in zip(self._members, features, strict=True)], axis=0)

    def predict(self, waveform: np.ndarray, sample_rate: int) -> Prediction:
        """Classify one utterance (any rate and length)."""
        batch = self.stack([self.features(waveform, sample_rate)])
        return prediction(self.labels, self.probabilities(batch)[0])

    def predict_batch(self, items: Sequence[tuple[np.ndarray, int]]) -> list[Prediction]:
        """Classify several (waveform, sample_rate) utterances in one call per member."""
        if not items:
            return []
        batch = self.stack([self.features(waveform, rate) for waveform, rate in items])
        return [prediction(self.labels, row) for row in self.probabilities(batch)]

    def predict_file(self, path: str | os.PathLike[str]) -> Prediction:
        """Classify an audio file (each member resamples it to its own rate)."""
        rate = self._members[0].sample_rate
        return self.predict(load_audio(path, sample_rate=rate), rate)

    def warm_up(self, runs: int = WARM_UP_RUNS) -> None:
        """Warm every member up."""
        for member in self._members:
            member.warm_up(runs)


Recognizer = EmotionRecognizer | EnsembleRecognizer


def load_recognizer(path: str | os.PathLike[str], device: str = 'auto', bf16: bool = False,
                    skip_padding: bool = True, trailing_silence_s: float = 0.0) -> Recognizer:
    """Load a checkpoint or an ensemble file as its recogniser (validated; runs no code)."""
    options = {'device': device, 'bf16': bf16, 'skip_padding': skip_padding,
               'trailing_silence_s': trailing_silence_s}
    model = load_model(path)
    if isinstance(model, Ensemble):
        return EnsembleRecognizer.from_ensemble(model, **options)
    return EmotionRecognizer(model.build_model(), model.front_end(), model.labels, **options)
