"""TorchScript export of a trained network, with its labels and front end as metadata.

The exported file runs without ser_ros (e.g. from C++ with libtorch): it holds the traced
inference copy of the network (BatchNorm folded) and a JSON record with the labels, the model,
audio and feature configurations and the normalisation statistics needed to compute its input,
and ``trailing_silence_s``: the seconds of zeros to append to an utterance cut where its speech
ends before computing its features, as emotion_node does (the model learnt from recordings
that end in silence; without it, the shipped model's WA on vad_node's cuts falls from 72% to 50%).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ser_ros.core.checkpoint import FORMAT_VERSION, Checkpoint
from ser_ros.core.files import atomic_write
from ser_ros.core.model import fuse_for_inference

METADATA_FILE = 'ser_ros.json'
EXPORT_FORMAT = 'ser_ros.torchscript'


class ExportError(ValueError):
    """A file is not a ser_ros TorchScript export."""


@contextmanager
def quiet_jit() -> Iterator[None]:
    """Silence torch's TorchScript deprecation notices and the LSTM's benign tracer warnings.

    torch marks TorchScript deprecated in favour of torch.export, but a TorchScript file is
    still what libtorch (C++) loads; the LSTM's warnings concern a Python-side check of its
    weight layout, not the traced computation (the export tests run other batch sizes).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message=r'`torch\.jit\.\w+` is deprecated',
                                category=DeprecationWarning)
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning,
                                module=r'torch\.nn\.modules\.rnn')
        yield


@dataclass(frozen=True)
class ExportedModel:
    """A loaded TorchScript network with its labels and metadata."""

    module: torch.jit.ScriptModule
    labels: tuple[str, ...]
    metadata: dict[str, Any]

    def probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, C) for normalised features (B, F, T)."""
        with torch.inference_mode():
            return torch.softmax(self.module(features).float(), dim=1)


def export_torchscript(checkpoint: Checkpoint, path: str | os.PathLike[str],
                       trailing_silence_s: float = 0.0) -> Path:
    """Trace the checkpoint's network and write it with its metadata (atomically).

    ``trailing_silence_s`` is recorded for the host that computes the features.
    """
    if not trailing_silence_s >= 0:
        raise ValueError(f'trailing silence must be >= 0 s, got {trailing_silence_s}')
    config = checkpoint.model_config
    model = fuse_for_inference(checkpoint.build_model())
    example = torch.zeros(1, config.num_features, config.num_frames)
    with torch.no_grad(), quiet_jit():
        traced = torch.jit.trace(model, example)
    payload = checkpoint.to_payload()
    metadata = {key: payload[key] for key in ('model_config', 'audio_config', 'feature_config',
                                              'normalizer', 'labels', 'provenance')}
    metadata.update(format=EXPORT_FORMAT, format_version=FORMAT_VERSION,
                    trailing_silence_s=float(trailing_silence_s))
    with atomic_write(path) as stream, quiet_jit():
        torch.jit.save(traced, stream, _extra_files={METADATA_FILE: json.dumps(metadata)})
    return Path(path)


def load_torchscript(path: str | os.PathLike[str], device: str = 'cpu') -> ExportedModel:
    """Load an export written by :func:`export_torchscript` (eval mode, on ``device``).

    TorchScript files carry code for the TorchScript interpreter: load only trusted exports
    (checkpoints, by contrast, are safe to open whatever their origin).
    """
    extra = {METADATA_FILE: ''}
    try:
        with quiet_jit():
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except (RuntimeError, ValueError, OSError) as error:
        raise ExportError(f'{path}: not a loadable TorchScript file: {error}') from error
    try:
        metadata = json.loads(extra[METADATA_FILE])
    except json.JSONDecodeError as error:
        raise ExportError(f'{path}: TorchScript file without ser_ros metadata') from error
    if not isinstance(metadata, dict) or metadata.get('format') != EXPORT_FORMAT:
        raise ExportError(f'{path}: TorchScript file without ser_ros metadata')
    return ExportedModel(module.eval(), tuple(metadata['labels']), metadata)
