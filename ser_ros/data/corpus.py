"""Corpus-independent records: one :class:`Utterance` per labelled file, a :class:`Corpus` of them.

Loaders (:mod:`ser_ros.data.ravdess`, :mod:`ser_ros.data.iemocap`) produce a :class:`Corpus`;
splits, summaries and training only use the fields defined here, so a new corpus needs a loader
and nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GENDERS = ('F', 'M')
# Which Utterance field names the unit held out together by speaker-independent protocols.
FOLD_UNITS = ('speaker', 'session')


@dataclass(frozen=True)
class Utterance:
    """One labelled speech file and what is known about it.

    ``label`` is the class used for training (after merges such as calm -> neutral);
    ``emotion`` is the corpus's own label before merging (e.g. 'calm', 'exc').
    ``start_s`` / ``end_s`` give the utterance's place in its recording session (IEMOCAP);
    the file at ``path`` holds the utterance alone.
    """

    path: Path
    label: str
    speaker: str
    gender: str | None = None
    session: int | None = None
    emotion: str | None = None
    intensity: str | None = None
    statement: int | None = None
    repetition: int | None = None
    start_s: float | None = None
    end_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, 'path', Path(self.path))
        if not self.label:
            raise ValueError(f'{self.path}: empty label')
        if not self.speaker:
            raise ValueError(f'{self.path}: empty speaker')
        if self.gender is not None and self.gender not in GENDERS:
            raise ValueError(f'{self.path}: gender must be one of {GENDERS}, got {self.gender!r}')

    @property
    def name(self) -> str:
        """File name without folder and extension (the corpus's utterance id)."""
        return self.path.stem


@dataclass(frozen=True)
class Corpus:
    """An ordered, labelled list of utterances under one data root.

    ``labels`` is the ordered class list (index = model output); ``fold_unit`` names the
    :class:`Utterance` field whose values speaker-independent protocols hold out together
    (RAVDESS: 'speaker' = actor, IEMOCAP: 'session').
    """

    name: str
    root: Path
    labels: tuple[str, ...]
    utterances: tuple[Utterance, ...]
    fold_unit: str = 'speaker'
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'root', Path(self.root))
        object.__setattr__(self, 'labels', tuple(self.labels))
        object.__setattr__(self, 'utterances', tuple(self.utterances))
        if len(set(self.labels)) != len(self.labels) or not self.labels:
            raise ValueError(f'{self.name}: labels must be unique and non-empty, got {self.labels}')
        if self.fold_unit not in FOLD_UNITS:
            raise ValueError(f'{self.name}: fold_unit must be one of {FOLD_UNITS}, '
                             f'got {self.fold_unit!r}')
        unknown = sorted({item.label for item in self.utterances} - set(self.labels))
        if unknown:
            raise ValueError(f'{self.name}: utterance labels {unknown} are not in {self.labels}')
        missing_unit = [item.path for item in self.utterances
                        if getattr(item, self.fold_unit) is None]
        if missing_unit:
            raise ValueError(f'{self.name}: {len(missing_unit)} utterances have no '
                             f'{self.fold_unit}, e.g. {missing_unit[0]}')
        object.__setattr__(self, '_index', {label: i for i, label in enumerate(self.labels)})

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.utterances)

    def __getitem__(self, index: int) -> Utterance:
        return self.utterances[index]

    @property
    def paths(self) -> list[Path]:
        """Audio file of every utterance, in corpus order."""
        return [item.path for item in self.utterances]

    @property
    def targets(self) -> np.ndarray:
        """Class index (into ``labels``) of every utterance, as int64."""
        return np.array([self._index[item.label] for item in self.utterances], dtype=np.int64)

    @property
    def speakers(self) -> tuple[str, ...]:
        """Distinct speakers, sorted."""
        return tuple(sorted({item.speaker for item in self.utterances}))

    def units(self) -> list[str]:
        """Fold unit (speaker or session, see ``fold_unit``) of every utterance, as text."""
        return [str(getattr(item, self.fold_unit)) for item in self.utterances]

    def class_counts(self, indices: Sequence[int] | None = None) -> dict[str, int]:
        """Count utterances per class (all classes, in label order), optionally of a subset."""
        items = self.utterances if indices is None else [self.utterances[i] for i in indices]
        counts = Counter(item.label for item in items)
        return {label: counts.get(label, 0) for label in self.labels}

    def relative_name(self, item: Utterance) -> str:
        """File name relative to the data root, with '/' separators (for provenance records)."""
        try:
            return item.path.relative_to(self.root).as_posix()
        except ValueError:
            return item.path.as_posix()
