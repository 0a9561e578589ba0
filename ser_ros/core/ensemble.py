"""Ensembles: several checkpoints in one file, whose probabilities are averaged.

Models trained on the same data with different front ends make different mistakes; the mean
of their softmax outputs is right more often than any one of them (docs/model_notes.md,
"ensembles of models already trained"). An ensemble file holds each member's whole checkpoint
payload (weights, front end, statistics, labels, provenance and digest), so every member keeps
its own front end; the members must share the label order. Like a checkpoint it is read with
``torch.load(..., weights_only=True)`` and its content is covered by a SHA-256 digest.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser_ros.core.checkpoint import (
    DIGEST_KEY,
    ENSEMBLE_FORMAT_NAME,
    Checkpoint,
    CheckpointError,
    read_payload,
    to_plain,
    write_payload,
)

FORMAT_VERSION = 1
MIN_MEMBERS = 2
KEYS = ('format', 'format_version', 'members', 'provenance', DIGEST_KEY)


@dataclass
class Ensemble:
    """Checkpoints with one label order whose averaged probabilities are the prediction."""

    members: tuple[Checkpoint, ...]
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.members = tuple(self.members)
        self.validate()

    @property
    def labels(self) -> tuple[str, ...]:
        """Class labels in the order of every member's outputs."""
        return self.members[0].labels

    def validate(self, source: str = 'ensemble') -> None:
        """Check the member count and that every member has the same labels, in one order."""
        if len(self.members) < MIN_MEMBERS:
            raise CheckpointError(f'{source}: an ensemble needs at least {MIN_MEMBERS} members, '
                                  f'got {len(self.members)}')
        for number, member in enumerate(self.members):
            if member.labels != self.labels:
                raise CheckpointError(
                    f'{source}: member {number} has labels {list(member.labels)}, member 0 '
                    f'{list(self.labels)}: probabilities can only be averaged over one label '
                    'order')

    def to_payload(self) -> dict[str, Any]:
        """Build the dictionary written to disk: the members' payloads and a digest."""
        payload = {'format': ENSEMBLE_FORMAT_NAME, 'format_version': FORMAT_VERSION,
                   'members': [member.to_payload() for member in self.members],
                   'provenance': to_plain(self.provenance, 'provenance')}
        payload[DIGEST_KEY] = _digest(payload)
        return payload

    @classmethod
    def from_payload(cls, payload: Any, source: str = 'ensemble') -> Ensemble:
        """Rebuild and validate an ensemble (and each member) from a loaded dictionary."""
        if not isinstance(payload, Mapping) or payload.get('format') != ENSEMBLE_FORMAT_NAME:
            raise CheckpointError(f'{source}: not a ser_ros ensemble')
        if payload.get('format_version') != FORMAT_VERSION:
            raise CheckpointError(f'{source}: ensemble format version '
                                  f'{payload.get("format_version")!r} is not supported (this '
                                  f'code reads version {FORMAT_VERSION})')
        missing = [key for key in KEYS if key not in payload]
        unknown = sorted(str(key) for key in payload if key not in KEYS)
        if missing or unknown:
            raise CheckpointError(f'{source}: ensemble lacks {missing}, has unknown entries '
                                  f'{unknown}')
        members, provenance = payload['members'], payload['provenance']
        if not isinstance(members, list) or not isinstance(provenance, Mapping):
            raise CheckpointError(f'{source}: members must be a list, provenance a dictionary')
        try:
            actual = _digest(payload)
        except (TypeError, ValueError, KeyError) as error:
            raise CheckpointError(f'{source}: content cannot be digested: {error}') from error
        if actual != payload[DIGEST_KEY]:
            raise CheckpointError(f'{source}: checksum mismatch: the content differs from what '
                                  'was written (corrupted or altered file)')
        checkpoints = tuple(Checkpoint.from_payload(member, f'{source} member {number}')
                            for number, member in enumerate(members))
        ensemble = cls.__new__(cls)
        ensemble.members, ensemble.provenance = checkpoints, dict(provenance)
        ensemble.validate(source)
        return ensemble

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically, like a checkpoint."""
        return write_payload(self.to_payload(), path)


def _digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 over the members' own digests (each covers its member) and the provenance."""
    members = [member[DIGEST_KEY] for member in payload['members']]
    rest = {'format': payload['format'], 'format_version': payload['format_version'],
            'members': members, 'provenance': payload['provenance']}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


Model = Checkpoint | Ensemble


def load_model(path: str | os.PathLike[str]) -> Model:
    """Read a checkpoint or an ensemble file (validated; never runs code from the file)."""
    payload = read_payload(path)
    if isinstance(payload, Mapping) and payload.get('format') == ENSEMBLE_FORMAT_NAME:
        return Ensemble.from_payload(payload, str(path))
    return Checkpoint.from_payload(payload, str(path))


def members_of(model: Model) -> Sequence[Checkpoint]:
    """List the checkpoints whose probabilities make the model's (itself, or its members)."""
    return model.members if isinstance(model, Ensemble) else (model,)
