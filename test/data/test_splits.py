"""Splits on the real RAVDESS folder: sizes, stratification, disjointness, speaker independence."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ser_ros.data.ravdess import load_ravdess
from ser_ros.data.splits import (
    check_disjoint,
    content_groups,
    make_split,
    paper_split,
    speaker_split,
)


@pytest.fixture(scope='module')
def corpus(ravdess_dir):
    return load_ravdess(ravdess_dir)


@pytest.fixture(scope='module')
def groups(corpus):
    return content_groups(corpus)


def test_identical_actor07_files_share_a_group(corpus, groups):
    names = [item.path.name for item in corpus]
    first = names.index('03-01-03-01-02-01-07.flac')
    second = names.index('03-01-03-01-02-02-07.flac')
    assert groups[first] == groups[second]
    assert len(set(groups.tolist())) == len(corpus) - 1


def test_paper_split_sizes_are_stratified_and_disjoint(corpus, groups):
    split = paper_split(corpus, 0.2, 0.2, seed=42, groups=groups)
    check_disjoint(split, groups)
    assert len(split.train) + len(split.validation) + len(split.test) == len(corpus)
    assert abs(len(split.test) - 0.2 * len(corpus)) <= 2
    targets = corpus.targets
    overall = Counter(targets.tolist())
    in_test = Counter(targets[split.test].tolist())
    for label, count in overall.items():
        assert abs(in_test[label] - 0.2 * count) <= 2
    # The paper's protocol keeps speakers on both sides.
    speakers = np.asarray([item.speaker for item in corpus])
    assert set(speakers[split.test]) == set(speakers[split.train])


def test_paper_split_is_reproducible_and_seeded(corpus, groups):
    first = paper_split(corpus, seed=7, groups=groups)
    again = paper_split(corpus, seed=7, groups=groups)
    other = paper_split(corpus, seed=8, groups=groups)
    assert np.array_equal(first.test, again.test)
    assert not np.array_equal(first.test, other.test)


@pytest.mark.parametrize('fold', [0, 3])
def test_speaker_split_holds_out_whole_actors(corpus, fold):
    split = speaker_split(corpus, folds=5, fold=fold, seed=42)
    check_disjoint(split)
    speakers = np.asarray([item.speaker for item in corpus])
    train, validation, test = (set(speakers[part]) for part in
                               (split.train, split.validation, split.test))
    assert not train & test and not train & validation and not validation & test
    assert set(split.test_units) == test and len(test) == 4
    assert set(split.validation_units) == validation and validation


def test_speaker_folds_cover_every_actor_once(corpus):
    held_out = [unit for fold in range(5)
                for unit in speaker_split(corpus, folds=5, fold=fold).test_units]
    assert sorted(held_out) == sorted(corpus.speakers)


def test_bad_protocol_and_fold_are_refused(corpus):
    with pytest.raises(ValueError, match='unknown protocol'):
        make_split(corpus, 'random', seed=1)
    with pytest.raises(ValueError, match='folds need'):
        speaker_split(corpus, folds=50)
