"""One-file checkpoints: weights plus everything inference needs to rebuild its front end.

A checkpoint holds the network weights, the model, audio and feature configurations, the
normalisation statistics, the ordered labels and provenance (data set, split, seed, metrics,
code version, creation time). It is written with ``torch.save`` as a dictionary of tensors and
plain Python values, and read back with ``torch.load(..., weights_only=True)``, whose restricted
unpickler refuses any class or callable: loading a file never runs code from it.

PyTorch's zip reader does not check the CRCs of its records, so a flipped byte in the weights
would load silently; format version 2 therefore stores a SHA-256 digest of the content
(weights with their names, dtypes and shapes, and every other part) and loading verifies it.
Version 1 files, written before the digest existed, are still read, unverified.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import subprocess
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ser_ros import __version__
from ser_ros.core.audio import AudioConfig
from ser_ros.core.features import FeatureConfig, FrontEnd, Normalizer
from ser_ros.core.files import atomic_write
from ser_ros.core.model import ModelConfig, SerNet

FORMAT_NAME = 'ser_ros.checkpoint'
# ser_ros.core.ensemble's files (named here so that Checkpoint.load can say what it was given).
ENSEMBLE_FORMAT_NAME = 'ser_ros.ensemble'
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
DIGEST_KEY = 'sha256'
PACKAGE_NAME = 'ser_ros'
DEFAULT_MODEL_NAME = 'ser_ravdess_7class.pt'
SOURCE_MODELS_DIR = Path(__file__).resolve().parents[2] / 'models'
REQUIRED_KEYS = ('format', 'format_version', 'state_dict', 'model_config', 'audio_config',
                 'feature_config', 'normalizer', 'labels', 'provenance')
# Everything but the weights that the digest covers (as canonical JSON).
DIGESTED_KEYS = ('format', 'format_version', 'model_config', 'audio_config', 'feature_config',
                 'normalizer', 'labels', 'provenance')
ZIP_MAGIC = b'PK\x03\x04'
PICKLE_PROTOCOL_OPCODE = 0x80
UNSUPPORTED_GLOBAL = re.compile(r'Unsupported global: GLOBAL (\S+)')
UNPICKLER_ERROR = re.compile(r'WeightsUnpickler error:\s*(\S[^\n]*)')
ANSI_ESCAPE = re.compile(r'\x1b\[[0-9;]*m')
GIT_TIMEOUT_S = 5.0
COMMIT_VARIABLE = 'SER_ROS_GIT_COMMIT'
MAX_REASON_CHARS = 300


class CheckpointError(ValueError):
    """A file is not a valid ser_ros checkpoint, or its parts do not fit together."""


def default_model_path() -> Path:
    """Locate the shipped model: the installed package's share dir, else the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        pass
    else:
        try:
            share = Path(get_package_share_directory(PACKAGE_NAME, print_warning=False))
        except (LookupError, OSError, ValueError):
            pass
        else:
            candidate = share / 'models' / DEFAULT_MODEL_NAME
            if candidate.is_file():
                return candidate
    return SOURCE_MODELS_DIR / DEFAULT_MODEL_NAME


def git_commit() -> str | None:
    """Commit of the source tree this code runs from, or None outside a git checkout.

    ``SER_ROS_GIT_COMMIT`` names it where the tree is a copy without git (a lent machine).
    """
    if os.environ.get(COMMIT_VARIABLE):
        return os.environ[COMMIT_VARIABLE]
    try:
        result = subprocess.run(
            ['git', 'rev-parse', 'HEAD'], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def build_provenance(dataset: str, split: str, seed: int | None,
                     metrics: Mapping[str, float] | None = None, **extra: Any) -> dict[str, Any]:
    """Provenance record: where the weights came from and with which code."""
    record = {
        'dataset': dataset,
        'split': split,
        'seed': seed,
        'metrics': dict(metrics or {}),
        'code_version': __version__,
        'git_commit': git_commit(),
        'created': datetime.now(timezone.utc).isoformat(timespec='seconds'),
    }
    record.update(extra)
    return to_plain(record, 'provenance')


def to_plain(value: Any, where: str) -> Any:
    """Convert to the plain types the safe loader accepts (numpy values, tuples, paths)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_plain(item, f'{where}[{index}]') for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckpointError(f'{where}: keys must be strings, got {key!r}')
            plain[key] = to_plain(item, f'{where}.{key}')
        return plain
    raise CheckpointError(f'{where}: {type(value).__name__} cannot be stored in a checkpoint')


def content_digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a payload's weights (names, dtypes, shapes, bytes) and other parts."""
    digest = hashlib.sha256()
    state = payload['state_dict']
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(json.dumps([key, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    rest = {key: payload[key] for key in DIGESTED_KEYS}
    digest.update(json.dumps(rest, sort_keys=True).encode())
    return digest.hexdigest()


def _unreadable_reason(error: Exception) -> str:
    """Say why the safe loader failed, in words, for a CheckpointError."""
    if isinstance(error, pickle.UnpicklingError):
        text = str(error)
        found = UNSUPPORTED_GLOBAL.search(text)
        if found:
            return (f'refused: the file stores the Python object {found.group(1)!r}, which a '
                    'safe load does not restore (checkpoints hold only tensors and plain '
                    'values; this loader never runs code from a file)')
        found = UNPICKLER_ERROR.search(text)
        detail = f' ({found.group(1).strip()})' if found else ''
        return f'not a ser_ros checkpoint: its pickled content cannot be read safely{detail}'
    lines = ANSI_ESCAPE.sub('', str(error)).strip().splitlines()
    reason = lines[0][:MAX_REASON_CHARS] if lines else ''
    return (f'not a readable ser_ros checkpoint (corrupt, truncated or foreign file): '
            f'{type(error).__name__}: {reason}')


def _check_container(path: Path, source: str) -> None:
    """Refuse empty, truncated and non-zip files before handing them to torch.load."""
    with path.open('rb') as stream:
        head = stream.read(len(ZIP_MAGIC))
    if not head:
        raise CheckpointError(f'{source}: the file is empty, not a ser_ros checkpoint')
    if head == ZIP_MAGIC:
        if not zipfile.is_zipfile(path):
            raise CheckpointError(
                f'{source}: truncated or corrupt checkpoint: the zip archive has no intact '
                'central directory (was the file cut short while copying or writing?)'
            )
        return
    kind = ('a plain pickle' if head[0] == PICKLE_PROTOCOL_OPCODE
            else 'not a zip archive')
    raise CheckpointError(
        f'{source}: not a ser_ros checkpoint: {kind} (checkpoints are PyTorch zip archives '
        'written by Checkpoint.save)'
    )


def write_payload(payload: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a model file atomically (temporary file + rename): readers never see half a file."""
    with atomic_write(path) as stream:
        torch.save(dict(payload), stream)
    return Path(path)


def read_payload(path: str | os.PathLike[str]) -> Any:
    """Read a model file with the safe loader (no code runs); refuse unusable files in words."""
    source = str(path)
    file = Path(path)
    if not file.exists():
        raise CheckpointError(f'{source}: checkpoint file does not exist')
    if not file.is_file():
        raise CheckpointError(f'{source}: not a file')
    try:
        _check_container(file, source)
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of files it then refuses anyway.
            warnings.simplefilter('ignore', UserWarning)
            return torch.load(file, map_location='cpu', weights_only=True)
    except CheckpointError:
        raise
    except Exception as error:  # any failure of the safe loader means an unusable file
        raise CheckpointError(f'{source}: {_unreadable_reason(error)}') from error


@dataclass
class Checkpoint:
    """Weights with the configuration, statistics and labels that make them usable."""

    state_dict: dict[str, torch.Tensor]
    model_config: ModelConfig
    audio_config: AudioConfig
    feature_config: FeatureConfig
    normalizer: Normalizer | None
    labels: tuple[str, ...]
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_model(cls, model: SerNet, audio_config: AudioConfig, feature_config: FeatureConfig,
                   normalizer: Normalizer | None, labels: tuple[str, ...] | list[str],
                   provenance: Mapping[str, Any] | None = None) -> Checkpoint:
        """Capture a trained network (weights copied to CPU) with its front end and labels."""
        state = {key: value.detach().cpu().contiguous().clone()
                 for key, value in model.state_dict().items()}
        checkpoint = cls(state, model.config, audio_config, feature_config, normalizer,
                         tuple(labels), to_plain(dict(provenance or {}), 'provenance'))
        checkpoint.validate()
        return checkpoint

    def validate(self, source: str = 'checkpoint') -> None:
        """Check that labels, weights, features and statistics all fit the model config."""
        config = self.model_config
        labels = self.labels
        if not all(isinstance(label, str) and label for label in labels):
            raise CheckpointError(f'{source}: labels must be non-empty strings, got {labels!r}')
        if len(set(labels)) != len(labels):
            raise CheckpointError(f'{source}: labels are not unique: {list(labels)}')
        if len(labels) != config.num_classes:
            raise CheckpointError(
                f'{source}: {len(labels)} labels {list(labels)} but the classifier has '
                f'{config.num_classes} outputs'
            )
        if self.feature_config.num_features != config.num_features:
            raise CheckpointError(
                f'{source}: feature config {self.feature_config.name!r} gives '
                f'{self.feature_config.num_features} features, the model expects '
                f'{config.num_features}'
            )
        self._check_normalizer(source)
        self._check_frames(source)
        self._check_state_dict(source)

    def _check_normalizer(self, source: str) -> None:
        if self.normalizer is None:
            return
        if self.normalizer.num_features != self.model_config.num_features:
            raise CheckpointError(
                f'{source}: normaliser statistics cover {self.normalizer.num_features} feature '
                f'rows, the model expects {self.model_config.num_features}'
            )

    def _check_frames(self, source: str) -> None:
        shape = self.front_end().feature_shape
        expected = (self.model_config.num_features, self.model_config.num_frames)
        if shape != expected:
            raise CheckpointError(
                f'{source}: the front end gives features of shape {shape} for '
                f'{self.audio_config.duration_s} s of audio, the model expects {expected}'
            )

    def _check_state_dict(self, source: str) -> None:
        if not isinstance(self.state_dict, Mapping) or not all(
                isinstance(key, str) and isinstance(value, torch.Tensor)
                for key, value in self.state_dict.items()):
            raise CheckpointError(f'{source}: state_dict must map names to tensors')
        model = SerNet(self.model_config)
        expected = model.state_dict()
        missing = sorted(set(expected) - set(self.state_dict))
        unexpected = sorted(set(self.state_dict) - set(expected))
        if missing or unexpected:
            raise CheckpointError(
                f'{source}: weights do not match the model config: missing {missing[:5]}, '
                f'unexpected {unexpected[:5]}'
            )
        for key, value in expected.items():
            stored = self.state_dict[key]
            if stored.shape != value.shape:
                raise CheckpointError(
                    f'{source}: weight {key!r} has shape {tuple(stored.shape)}, the model config '
                    f'needs {tuple(value.shape)}'
                )
            if stored.is_floating_point() and not bool(torch.isfinite(stored).all()):
                raise CheckpointError(f'{source}: weight {key!r} holds NaN or infinite values')

    def to_payload(self) -> dict[str, Any]:
        """Build the dictionary written to disk: tensors and plain Python values only."""
        payload = {
            'format': FORMAT_NAME,
            'format_version': FORMAT_VERSION,
            'state_dict': {key: value.detach().cpu().contiguous()
                           for key, value in self.state_dict.items()},
            'model_config': self.model_config.to_dict(),
            'audio_config': to_plain(self.audio_config.to_dict(), 'audio_config'),
            'feature_config': to_plain(self.feature_config.to_dict(), 'feature_config'),
            'normalizer': (None if self.normalizer is None
                           else to_plain(self.normalizer.to_dict(), 'normalizer')),
            'labels': list(self.labels),
            'provenance': to_plain(self.provenance, 'provenance'),
        }
        payload[DIGEST_KEY] = content_digest(payload)
        return payload

    @classmethod
    def from_payload(cls, payload: Any, source: str = 'checkpoint') -> Checkpoint:
        """Rebuild and validate a checkpoint from a loaded dictionary."""
        if not isinstance(payload, Mapping):
            raise CheckpointError(
                f'{source}: not a ser_ros checkpoint (holds a {type(payload).__name__})'
            )
        if payload.get('format') == ENSEMBLE_FORMAT_NAME:
            raise CheckpointError(
                f'{source}: an ensemble of {len(payload.get("members") or [])} models, not a '
                'single checkpoint: this tool takes one network (ser_predict, ser_evaluate and '
                'emotion_node take ensembles; export its members, the files its provenance '
                'lists, one by one)'
            )
        if payload.get('format') != FORMAT_NAME:
            raise CheckpointError(
                f'{source}: not a ser_ros checkpoint (format {payload.get("format")!r}, '
                f'expected {FORMAT_NAME!r})'
            )
        version = payload.get('format_version')
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise CheckpointError(
                f'{source}: checkpoint format version {version!r} is not supported '
                f'(this code reads versions {", ".join(map(str, READABLE_VERSIONS))})'
            )
        expected_keys = REQUIRED_KEYS + ((DIGEST_KEY,) if version >= 2 else ())
        missing = [key for key in expected_keys if key not in payload]
        if missing:
            raise CheckpointError(f'{source}: checkpoint lacks {missing}')
        unknown = sorted(str(key) for key in payload if key not in expected_keys)
        if unknown:
            raise CheckpointError(f'{source}: checkpoint has unknown entries {unknown}')
        cls._verify_digest(payload, source)
        labels = payload['labels']
        if not isinstance(labels, list | tuple):
            raise CheckpointError(f'{source}: labels must be a list, got {type(labels).__name__}')
        provenance = payload['provenance']
        if not isinstance(provenance, Mapping):
            raise CheckpointError(f'{source}: provenance must be a dictionary')
        try:
            model_config = ModelConfig.from_dict(payload['model_config'])
            audio_config = AudioConfig.from_dict(payload['audio_config'])
            feature_config = FeatureConfig.from_dict(payload['feature_config'])
            normalizer = (None if payload['normalizer'] is None
                          else Normalizer.from_dict(payload['normalizer']))
        except CheckpointError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            raise CheckpointError(f'{source}: invalid configuration: {error}') from error
        state = payload['state_dict']
        checkpoint = cls(dict(state) if isinstance(state, Mapping) else state, model_config,
                         audio_config, feature_config, normalizer, tuple(labels),
                         dict(provenance))
        checkpoint.validate(source)
        return checkpoint

    @staticmethod
    def _verify_digest(payload: Mapping[str, Any], source: str) -> None:
        """Refuse a payload whose content differs from what its digest says was written."""
        state = payload['state_dict']
        if not isinstance(state, Mapping) or not all(
                isinstance(key, str) and isinstance(value, torch.Tensor)
                for key, value in state.items()):
            raise CheckpointError(f'{source}: state_dict must map names to tensors')
        if DIGEST_KEY not in payload:   # version 1: written before digests existed
            return
        try:
            actual = content_digest(payload)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f'{source}: content cannot be digested: {error}') from error
        if actual != payload[DIGEST_KEY]:
            raise CheckpointError(
                f'{source}: checksum mismatch: the content differs from what was written '
                f'(corrupted or altered file; stored sha256 {str(payload[DIGEST_KEY])[:16]}..., '
                f'content {actual[:16]}...)'
            )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (temporary file + rename), so readers never see half a file."""
        return write_payload(self.to_payload(), path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint:
        """Read and validate a checkpoint; never executes code stored in the file."""
        return cls.from_payload(read_payload(path), str(path))

    def build_model(self) -> SerNet:
        """Build the network in eval mode with the stored weights."""
        model = SerNet(self.model_config)
        model.load_state_dict(self.state_dict, strict=True)
        return model.eval()

    def front_end(self) -> FrontEnd:
        """Build the feature front end (resample, fix length, extract, normalise) of this model."""
        return FrontEnd(self.audio_config, self.feature_config, self.normalizer)

