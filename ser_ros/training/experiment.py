"""Experiment configuration: one YAML file per experiment, overridable from the command line.

A file has the sections ``data``, ``protocol``, ``audio``, ``features``, ``model``,
``training`` and ``output``. ``audio`` and ``model`` take the fields of
:class:`~ser_ros.core.audio.AudioConfig` and :class:`~ser_ros.core.model.ModelConfig` (the model's
input size and class count are filled in from the data). Overrides are ``section.key=value``
strings whose value is parsed as YAML, e.g. ``training.max_epochs=5`` or
``features.exclude=[rms]``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ser_ros.data.registry import CORPORA
from ser_ros.training.augment import AugmentConfig
from ser_ros.training.fit import LR_SCHEDULES

SECTIONS = ('data', 'protocol', 'audio', 'features', 'model', 'training', 'output')
PROTOCOLS = ('paper', 'speaker')
DEVICES = ('auto', 'cpu', 'cuda')
BF16_MODES = ('auto', 'on', 'off')
MONITORS = ('val_loss', 'val_ua')


def _from_section(cls: type, section: str, values: Mapping[str, Any]) -> Any:
    known = {item.name for item in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f'experiment: unknown keys in section {section!r}: {unknown}; '
                         f'known keys are {sorted(known)}')
    return cls(**values)


@dataclass(frozen=True)
class DataSection:
    """Which corpus, where, and with how many classes."""

    corpus: str = 'ravdess'
    root: str = '../shared/data/ravdess-16k'
    classes: int = 7

    def __post_init__(self) -> None:
        if self.corpus not in CORPORA:
            raise ValueError(f'data.corpus must be one of {CORPORA}, got {self.corpus!r}')


@dataclass(frozen=True)
class ProtocolSection:
    """How utterances are split into train / validation / test."""

    name: str = 'paper'
    seed: int = 42
    test_fraction: float = 0.2
    validation_fraction: float = 0.2
    folds: int = 5
    fold: int = 0

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ValueError(f'protocol.name must be one of {PROTOCOLS}, got {self.name!r}')
        for key in ('test_fraction', 'validation_fraction'):
            if not 0.0 < getattr(self, key) < 1.0:
                raise ValueError(f'protocol.{key} must be in (0, 1), got {getattr(self, key)}')
        if not 0 <= self.fold < self.folds:
            raise ValueError(f'protocol.fold must be in 0..{self.folds - 1}, got {self.fold}')


@dataclass(frozen=True)
class FeatureSection:
    """Named feature preset, optionally with feature groups left out (Table II)."""

    preset: str = 'mel128'
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainingSection:
    """Optimisation settings (the paper's: Adam 1e-3, batch 16, 200 epochs, patience 30)."""

    learning_rate: float = 1e-3
    batch_size: int = 16
    max_epochs: int = 200
    patience: int = 30
    monitor: str = 'val_loss'
    device: str = 'auto'
    bf16: str = 'auto'
    seed: int = 42
    threads: int = 0
    augment: Mapping[str, Any] = field(default_factory=dict)
    # Stop (as if patience ran out) after the first epoch that ends past this many seconds of
    # training; 0: no limit. For lent machines with a time limit and for smoke runs.
    time_budget_s: float = 0.0
    # Learning-rate schedule: constant (the paper); plateau: times lr_factor after lr_patience
    # epochs without improvement of the monitored value; cosine: anneal over max_epochs. Both
    # stop at min_learning_rate.
    lr_schedule: str = 'constant'
    lr_patience: int = 0
    lr_factor: float = 0.5
    min_learning_rate: float = 1e-5
    # Regularisers beyond the paper, 0 = off (see ser_ros.training.fit).
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        AugmentConfig.from_dict(self.augment)   # refuse bad augmentation settings early
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f'training.lr_schedule must be one of {LR_SCHEDULES}, '
                             f'got {self.lr_schedule!r}')
        if self.lr_patience < 0 or not 0.0 < self.lr_factor < 1.0:
            raise ValueError('training.lr_patience must be >= 0 and training.lr_factor in '
                             f'(0, 1), got {self.lr_patience} and {self.lr_factor}')
        if (self.lr_schedule == 'plateau') != (self.lr_patience > 0):
            raise ValueError('training.lr_patience applies to lr_schedule plateau only, which '
                             f'needs it >= 1: got lr_schedule {self.lr_schedule!r} with '
                             f'lr_patience {self.lr_patience}')
        for key, low, high in (('weight_decay', 0.0, 1.0), ('label_smoothing', 0.0, 1.0),
                               ('ema_decay', 0.0, 1.0)):
            if not low <= getattr(self, key) < high:
                raise ValueError(f'training.{key} must be in [{low}, {high}), '
                                 f'got {getattr(self, key)}')
        if self.mixup_alpha < 0:
            raise ValueError(f'training.mixup_alpha must be >= 0, got {self.mixup_alpha}')
        if self.time_budget_s < 0:
            raise ValueError(f'training.time_budget_s must be >= 0, got {self.time_budget_s}')
        if self.learning_rate <= 0:
            raise ValueError(f'training.learning_rate must be > 0, got {self.learning_rate}')
        for key in ('batch_size', 'max_epochs', 'patience'):
            if getattr(self, key) < 1:
                raise ValueError(f'training.{key} must be >= 1, got {getattr(self, key)}')
        if self.monitor not in MONITORS:
            raise ValueError(f'training.monitor must be one of {MONITORS}, got {self.monitor!r}')
        if self.device not in DEVICES:
            raise ValueError(f'training.device must be one of {DEVICES}, got {self.device!r}')
        if self.bf16 not in BF16_MODES:
            raise ValueError(f'training.bf16 must be one of {BF16_MODES}, got {self.bf16!r}')


@dataclass(frozen=True)
class OutputSection:
    """Where runs and the feature cache go."""

    run_dir: str = 'runs/experiment'
    cache_dir: str = '.cache/features'


@dataclass(frozen=True)
class Experiment:
    """A whole experiment; ``audio`` and ``model`` stay plain mappings until the data is known."""

    name: str
    data: DataSection = field(default_factory=DataSection)
    protocol: ProtocolSection = field(default_factory=ProtocolSection)
    audio: Mapping[str, Any] = field(default_factory=dict)
    features: FeatureSection = field(default_factory=FeatureSection)
    model: Mapping[str, Any] = field(default_factory=dict)
    training: TrainingSection = field(default_factory=TrainingSection)
    output: OutputSection = field(default_factory=OutputSection)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Experiment:
        """Build from a parsed YAML mapping; unknown sections or keys are refused."""
        data = dict(data)
        name = data.pop('experiment', None)
        if not isinstance(name, str) or not name:
            raise ValueError("experiment: the file needs a top-level 'experiment: <name>'")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ValueError(f'experiment: unknown sections {unknown}; known are {SECTIONS}')
        features = dict(data.get('features') or {})
        features['exclude'] = tuple(features.get('exclude') or ())
        return cls(
            name=name,
            data=_from_section(DataSection, 'data', data.get('data') or {}),
            protocol=_from_section(ProtocolSection, 'protocol', data.get('protocol') or {}),
            audio=dict(data.get('audio') or {}),
            features=_from_section(FeatureSection, 'features', features),
            model=dict(data.get('model') or {}),
            training=_from_section(TrainingSection, 'training', data.get('training') or {}),
            output=_from_section(OutputSection, 'output', data.get('output') or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping in the YAML file's shape (what a run records as its configuration)."""
        result: dict[str, Any] = {'experiment': self.name}
        for section in SECTIONS:
            value = getattr(self, section)
            value = asdict(value) if hasattr(value, '__dataclass_fields__') else dict(value)
            result[section] = json.loads(json.dumps(value))
        return result

    def fingerprint(self, inputs: Mapping[str, Any] | None = None) -> str:
        """Hash of what shapes each epoch's weights: a resumed run must match it.

        ``inputs`` adds what the run reads from elsewhere (the segmenter settings of its
        VAD-cut examples, from config/ser.yaml).

        Left out: where outputs go, thread count, and the stopping rule (max_epochs,
        patience), which only decide when to stop; so a run can be resumed with a larger
        budget, or ended early by rerunning it with max_epochs = the epochs already run.
        The time budget is left out for the same reason. A cosine schedule is the exception:
        its rates depend on max_epochs, so there max_epochs counts.
        """
        relevant = self.to_dict()
        relevant.pop('output')
        for key in ('patience', 'threads', 'time_budget_s'):
            relevant['training'].pop(key)
        if self.training.lr_schedule != 'cosine':
            relevant['training'].pop('max_epochs')
        if inputs:
            relevant['inputs'] = dict(inputs)
        text = json.dumps(relevant, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``section.key=value`` override applied."""
    result = copy.deepcopy(dict(data))
    for override in overrides:
        path, separator, raw_value = override.partition('=')
        if not separator or not path:
            raise ValueError(f'override {override!r} is not of the form section.key=value')
        keys = path.split('.')
        target = result
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ValueError(f'override {override!r}: {key!r} is not a section')
        target[keys[-1]] = yaml.safe_load(raw_value)
    return result


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base`` (mappings merge, other values replace)."""
    result = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _read_layers(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a file and, under its ``base:`` key, the file it extends (relative to it)."""
    if path.resolve() in seen:
        raise ValueError(f'experiment file {path} extends itself through base:')
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ValueError(f'cannot read experiment file {path}: {error}') from error
    except yaml.YAMLError as error:
        raise ValueError(f'experiment file {path} is not valid YAML: {error}') from error
    if not isinstance(data, dict):
        raise ValueError(f'experiment file {path} must hold a mapping of sections')
    base = data.pop('base', None)
    if base is None:
        return data
    parent = _read_layers(path.parent / str(base), (*seen, path.resolve()))
    return _merge(parent, data)


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> Experiment:
    """Read an experiment YAML file (and the ``base:`` file it extends), apply overrides."""
    return Experiment.from_dict(apply_overrides(_read_layers(Path(path)), overrides))
