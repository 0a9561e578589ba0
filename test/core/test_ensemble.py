"""Ensembles: one file of several checkpoints (own front ends), averaged probabilities."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ser_ros.cli import ensemble as ensemble_cli
from ser_ros.core.audio import load_audio
from ser_ros.core.checkpoint import (
    DEFAULT_MODEL_NAME,
    SOURCE_MODELS_DIR,
    Checkpoint,
    CheckpointError,
    build_provenance,
)
from ser_ros.core.ensemble import Ensemble, load_model
from ser_ros.core.features import FrontEnd, Normalizer, feature_preset
from ser_ros.core.inference import EmotionRecognizer, EnsembleRecognizer, load_recognizer
from ser_ros.data.corpus import Corpus, Utterance
from ser_ros.training.evaluate import evaluate_checkpoint

from .test_checkpoint import (
    LABELS,
    TINY_AUDIO,
    raw_payload,
    real_normalizer,
    tiny_checkpoint,
    tiny_model,
    tiny_model_config,
)

RATE = 16000
SHIPPED_ENSEMBLE = 'ser_ravdess_7class_ensemble.pt'
TOLERANCE = 1e-5


def iemocap_checkpoint(files: list[Path], seed: int = 1) -> Checkpoint:
    """Build a small member with the other front end (spectral set), as the probed ensemble."""
    features = feature_preset('iemocap')
    front_end = FrontEnd(TINY_AUDIO, features)
    num_features, num_frames = front_end.feature_shape
    config = tiny_model_config(len(LABELS), num_features=num_features, num_frames=num_frames,
                               window_frames=num_frames, window_hop=num_frames)
    raw = np.stack([front_end.extract_file(path, normalize=False) for path in files])
    return Checkpoint.from_model(tiny_model(config, seed), TINY_AUDIO, features,
                                 Normalizer.fit(raw), LABELS,
                                 build_provenance('ravdess', 'test', seed, note='tiny member'))


@pytest.fixture(scope='module')
def files(ravdess_files: list[Path]) -> list[Path]:
    """Four real utterances of different actors."""
    return ravdess_files[::len(ravdess_files) // 4][:4]


@pytest.fixture(scope='module')
def members(files: list[Path]) -> tuple[Checkpoint, ...]:
    return (tiny_checkpoint(normalizer=real_normalizer(files)),
            tiny_checkpoint(seed=3, normalizer=real_normalizer(files)),
            iemocap_checkpoint(files))


@pytest.fixture(scope='module')
def saved(members: tuple[Checkpoint, ...], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Ensemble(members, {'note': 'test'}).save(tmp_path_factory.mktemp('ensemble') / 'e.pt')


def test_round_trip_keeps_every_member_and_its_front_end(members: tuple[Checkpoint, ...],
                                                          saved: Path) -> None:
    loaded = load_model(saved)
    assert isinstance(loaded, Ensemble)
    assert loaded.labels == LABELS and loaded.provenance == {'note': 'test'}
    assert [m.feature_config.name for m in loaded.members] == ['mel128', 'mel128', 'iemocap']
    for original, member in zip(members, loaded.members, strict=True):
        assert member.to_payload()['sha256'] == original.to_payload()['sha256']


def test_a_single_checkpoint_loads_as_itself(members: tuple[Checkpoint, ...],
                                             tmp_path: Path) -> None:
    path = members[0].save(tmp_path / 'one.pt')
    assert isinstance(load_model(path), Checkpoint)
    assert isinstance(load_recognizer(path, device='cpu'), EmotionRecognizer)


def test_single_checkpoint_readers_say_what_they_were_given(saved: Path) -> None:
    with pytest.raises(CheckpointError, match='an ensemble of 3 models, not a single checkpoint'):
        Checkpoint.load(saved)


def counted(features: Callable[..., Any], number: int, calls: list[int]) -> Callable[..., Any]:
    """Wrap a member's ``features`` so that each call appends ``number`` to ``calls``."""
    def wrapped(*args: Any) -> Any:
        calls.append(number)
        return features(*args)
    return wrapped


def test_probabilities_are_the_mean_of_the_members(members: tuple[Checkpoint, ...], saved: Path,
                                                   files: list[Path]) -> None:
    recognizer = load_recognizer(saved, device='cpu', trailing_silence_s=0.5)
    assert isinstance(recognizer, EnsembleRecognizer)
    assert recognizer.labels == LABELS and recognizer.trailing_silence_s == 0.5
    singles = [EmotionRecognizer(m.build_model(), m.front_end(), m.labels, device='cpu',
                                 trailing_silence_s=0.5) for m in members]
    waveforms = [load_audio(path, RATE) for path in files]
    expected = np.mean([[list(single.predict(w, RATE).probabilities.values())
                         for w in waveforms] for single in singles], axis=0)
    one_by_one = [recognizer.predict(w, RATE) for w in waveforms]
    batched = recognizer.predict_batch([(w, RATE) for w in waveforms])
    for row, single, batch in zip(expected, one_by_one, batched, strict=True):
        np.testing.assert_allclose(list(single.probabilities.values()), row, atol=TOLERANCE)
        np.testing.assert_allclose(list(batch.probabilities.values()), row, atol=1e-4)
        assert single.label == LABELS[int(np.argmax(row))]
    # The two mel128 members have the same front end: one extraction serves both.
    calls: list[int] = []
    for number, member in enumerate(recognizer.members):
        member.features = counted(member.features, number, calls)
    try:
        shared = recognizer.features(waveforms[0], RATE)
    finally:
        for member in recognizer.members:
            del member.features
    assert calls == [0, 2] and shared[0] is shared[1] and shared[2].shape != shared[0].shape
    from_file = recognizer.predict_file(files[0])
    np.testing.assert_allclose(list(from_file.probabilities.values()), expected[0], atol=1e-4)
    # The spread between members is real: averaging is not a no-op on these weights.
    assert not np.allclose(expected[0], list(singles[0].predict(waveforms[0], RATE)
                                                .probabilities.values()), atol=1e-3)


def test_members_with_another_label_order_are_refused(files: list[Path]) -> None:
    other = tiny_checkpoint(labels=('happy', 'angry', 'sad'), normalizer=real_normalizer(files))
    with pytest.raises(CheckpointError, match='one label order'):
        Ensemble((tiny_checkpoint(normalizer=real_normalizer(files)), other))
    with pytest.raises(CheckpointError, match='at least 2 members'):
        Ensemble((other,))


def test_altered_files_are_refused(saved: Path, tmp_path: Path) -> None:
    payload = raw_payload(saved)
    payload['provenance'] = {'note': 'edited'}
    torch.save(payload, tmp_path / 'provenance.pt')
    with pytest.raises(CheckpointError, match='checksum mismatch'):
        load_model(tmp_path / 'provenance.pt')
    payload = raw_payload(saved)
    name = sorted(payload['members'][1]['state_dict'])[0]
    payload['members'][1]['state_dict'][name] = payload['members'][1]['state_dict'][name] + 1
    torch.save(payload, tmp_path / 'weights.pt')
    with pytest.raises(CheckpointError, match='member 1: checksum mismatch'):
        load_model(tmp_path / 'weights.pt')
    torch.save({'format': 'ser_ros.ensemble', 'format_version': 9}, tmp_path / 'v9.pt')
    with pytest.raises(CheckpointError, match='version 9 is not supported'):
        load_model(tmp_path / 'v9.pt')


def test_evaluation_predicts_the_mean_of_the_members(members: tuple[Checkpoint, ...],
                                                     saved: Path, files: list[Path]) -> None:
    corpus = Corpus('test', files[0].parents[1], LABELS, tuple(
        Utterance(path, LABELS[number % len(LABELS)], f'speaker{number}')
        for number, path in enumerate(files)))
    ensemble = load_model(saved)
    evaluation = evaluate_checkpoint(ensemble, corpus)
    singles = [evaluate_checkpoint(member, corpus) for member in members]
    assert evaluation.report.n == len(files)
    recognizer = load_recognizer(saved, device='cpu', skip_padding=False)
    expected = [LABELS.index(recognizer.predict_file(path).label) for path in files]
    assert evaluation.predictions.tolist() == expected
    assert evaluation.features.shape == singles[0].features.shape


def test_cli_writes_an_ensemble_and_refuses_a_lone_member(members: tuple[Checkpoint, ...],
                                                          tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    paths = [member.save(tmp_path / f'm{number}.pt') for number, member in enumerate(members)]
    out = tmp_path / 'ensemble.pt'
    assert ensemble_cli.main(['--out', str(out), *map(str, paths)]) == 0
    written = load_model(out)
    assert isinstance(written, Ensemble) and len(written.members) == len(members)
    assert written.provenance['members'] == [str(path) for path in paths]
    assert 'mel128, mel128, iemocap' in capsys.readouterr().out
    assert ensemble_cli.main(['--out', str(tmp_path / 'lone.pt'), str(paths[0])]) == 2
    assert 'at least 2 members' in capsys.readouterr().err
    assert not (tmp_path / 'lone.pt').exists()


def test_the_shipped_ensemble_answers_in_the_default_models_labels() -> None:
    """models/: three networks of the paper (two front ends), labelled as the default model."""
    default = Checkpoint.load(SOURCE_MODELS_DIR / DEFAULT_MODEL_NAME)
    shipped = load_model(SOURCE_MODELS_DIR / SHIPPED_ENSEMBLE)
    assert isinstance(shipped, Ensemble) and len(shipped.members) == 3
    assert shipped.labels == default.labels
    assert [member.feature_config.name for member in shipped.members] == \
        ['mel128', 'mel128', 'iemocap']
