"""Train / validation / test splits: the paper's random split and speaker-independent folds.

Both keep groups of identical recordings on one side (RAVDESS holds two byte-identical files
of actor 07), and both carve the validation set out of the training part: the test set is
never used for early stopping or model choice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from ser_ros.data.corpus import Corpus

PROTOCOLS = ('paper', 'speaker')
HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Split:
    """Indices into a corpus for each part, plus what produced them."""

    protocol: str
    seed: int
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    test_units: tuple[str, ...] = ()
    validation_units: tuple[str, ...] = ()

    def describe(self, corpus: Corpus) -> dict[str, Any]:
        """JSON-able record of the split (sizes, held-out units, test files)."""
        return {
            'protocol': self.protocol,
            'seed': self.seed,
            'sizes': {'train': len(self.train), 'validation': len(self.validation),
                      'test': len(self.test)},
            'test_units': list(self.test_units),
            'validation_units': list(self.validation_units),
            'test_files': [corpus.relative_name(corpus[i]) for i in self.test],
            'validation_files': [corpus.relative_name(corpus[i]) for i in self.validation],
        }


def content_groups(corpus: Corpus) -> np.ndarray:
    """Group id per utterance: utterances with byte-identical files share one id."""
    ids: dict[str, int] = {}
    groups = []
    for item in corpus:
        digest = hashlib.sha256()
        with open(item.path, 'rb') as handle:
            for block in iter(lambda: handle.read(HASH_CHUNK_BYTES), b''):
                digest.update(block)
        groups.append(ids.setdefault(digest.hexdigest(), len(ids)))
    return np.asarray(groups, dtype=np.int64)


def _folds(count: float) -> int:
    folds = round(1.0 / count)
    if folds < 2:
        raise ValueError(f'a held-out fraction of {count} leaves no training data; use < 0.5')
    return folds


def _one_fold(targets: np.ndarray, groups: np.ndarray, folds: int, fold: int,
              seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into the given arrays) of the rest and of fold ``fold`` of ``folds``."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    placeholder = np.zeros(len(targets))
    for number, (rest, held_out) in enumerate(splitter.split(placeholder, targets, groups)):
        if number == fold:
            return np.sort(rest), np.sort(held_out)
    raise ValueError(f'fold {fold} is not in 0..{folds - 1}')


def paper_split(corpus: Corpus, test_fraction: float = 0.2, validation_fraction: float = 0.2,
                seed: int = 42, groups: np.ndarray | None = None) -> Split:
    """Random stratified split (speakers on both sides), as in the paper, with a validation part.

    ``test_fraction`` of the corpus is the test set; ``validation_fraction`` of the rest is the
    validation set. Identical recordings stay together.
    """
    targets = corpus.targets
    groups = content_groups(corpus) if groups is None else groups
    rest, test = _one_fold(targets, groups, _folds(test_fraction), 0, seed)
    train_pos, val_pos = _one_fold(targets[rest], groups[rest], _folds(validation_fraction), 0,
                                   seed + 1)
    return Split('paper', seed, rest[train_pos], rest[val_pos], test)


def speaker_split(corpus: Corpus, folds: int = 5, fold: int = 0,
                  validation_fraction: float = 0.2, seed: int = 42) -> Split:
    """Speaker-independent fold: test speakers (or sessions) never occur in training.

    The fold units (RAVDESS actors, IEMOCAP sessions) are dealt into ``folds`` folds; fold
    ``fold`` is the test set. Validation units are held out from the remaining ones, so early
    stopping is also judged on unseen speakers.
    """
    units = np.asarray(corpus.units())
    distinct = sorted(set(units.tolist()))
    if folds < 2 or folds > len(distinct):
        raise ValueError(f'{corpus.name}: {folds} folds need 2..{len(distinct)} '
                         f'{corpus.fold_unit}s')
    unit_ids = np.asarray([distinct.index(unit) for unit in units])
    targets = corpus.targets
    rest, test = _one_fold(targets, unit_ids, folds, fold, seed)
    val_folds = min(_folds(validation_fraction), len(set(unit_ids[rest].tolist())))
    train_pos, val_pos = _one_fold(targets[rest], unit_ids[rest], val_folds, 0, seed + 1)
    train, validation = rest[train_pos], rest[val_pos]
    return Split('speaker', seed, train, validation, test,
                 test_units=tuple(sorted(set(units[test].tolist()))),
                 validation_units=tuple(sorted(set(units[validation].tolist()))))


def make_split(corpus: Corpus, protocol: str, seed: int, test_fraction: float = 0.2,
               validation_fraction: float = 0.2, folds: int = 5, fold: int = 0) -> Split:
    """Split by protocol name ('paper' or 'speaker')."""
    if protocol == 'paper':
        return paper_split(corpus, test_fraction, validation_fraction, seed)
    if protocol == 'speaker':
        return speaker_split(corpus, folds, fold, validation_fraction, seed)
    raise ValueError(f'unknown protocol {protocol!r}; known protocols are {PROTOCOLS}')


def check_disjoint(split: Split, groups: Sequence[int] | None = None) -> None:
    """Raise if an index, or a group of identical recordings, sits in two parts."""
    parts = {'train': set(split.train.tolist()), 'validation': set(split.validation.tolist()),
             'test': set(split.test.tolist())}
    names = list(parts)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if parts[first] & parts[second]:
                raise ValueError(f'split parts {first} and {second} overlap')
            if groups is not None:
                shared = ({groups[j] for j in parts[first]} & {groups[j] for j in parts[second]})
                if shared:
                    raise ValueError(f'identical recordings in both {first} and {second}')


def split_part_indices(corpus: Corpus, split_path: str | PathLike[str], part: str) -> list[int]:
    """Corpus indices of the ``part`` ('test' or 'validation') files a run's split.json lists."""
    record = json.loads(Path(split_path).read_text())
    wanted = record.get(f'{part}_files')
    if not isinstance(wanted, list):
        raise ValueError(f'{split_path} has no list {part}_files')
    by_name = {corpus.relative_name(item): i for i, item in enumerate(corpus)}
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise ValueError(f'{len(missing)} files of {split_path} are not in the data folder, '
                         f'e.g. {missing[0]}')
    return [by_name[name] for name in wanted]
