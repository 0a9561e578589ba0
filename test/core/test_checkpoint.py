"""Checkpoints: exact round trip, and refusal of tampered, truncated, foreign and mismatched files.

The small-model helpers here are shared with the inference, export and CLI tests.
"""

from __future__ import annotations

import json
import pickle
import random
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ser_ros import __version__
from ser_ros.core.audio import AudioConfig
from ser_ros.core.checkpoint import (
    DEFAULT_MODEL_NAME,
    DIGEST_KEY,
    FORMAT_NAME,
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    build_provenance,
    content_digest,
    default_model_path,
)
from ser_ros.core.features import FrontEnd, Normalizer, feature_preset
from ser_ros.core.model import ModelConfig, SerNet

TINY_AUDIO = AudioConfig(duration_s=1.0)        # 1 s -> 126 mel128 frames
TINY_FRAMES = 126
LABELS = ('angry', 'happy', 'sad')
ZIP_LOCAL_HEADER_SIZE = 30
BYTE_FLIPS = 60


def tiny_model_config(num_classes: int = len(LABELS), **changes: Any) -> ModelConfig:
    """Full-variant network shrunk to milliseconds: 2 conv blocks, 8 BLSTM units, 1 s input."""
    values = {'num_features': 128, 'num_frames': TINY_FRAMES, 'conv_blocks': 2,
              'filters': (4, 8), 'window_frames': 64, 'window_hop': 32, 'lstm_units': 8,
              'attention_units': 8, **changes}
    return ModelConfig(num_classes=num_classes, **values)


def tiny_model(config: ModelConfig | None = None, seed: int = 0) -> SerNet:
    """Random weights with BatchNorm statistics moved off identity, in eval mode."""
    torch.manual_seed(seed)
    model = SerNet(config or tiny_model_config())
    model.train()
    with torch.no_grad():
        model(torch.randn(4, model.num_features, model.num_frames) * 3 + 1)
    return model.eval()


def real_normalizer(files: Sequence[Path], audio: AudioConfig = TINY_AUDIO) -> Normalizer:
    """Statistics of mel128 features of a few real utterances."""
    front_end = FrontEnd(audio, feature_preset('mel128'))
    return Normalizer.fit(np.stack([front_end.extract_file(path) for path in files]))


def tiny_checkpoint(labels: Sequence[str] = LABELS, seed: int = 0,
                    normalizer: Normalizer | None = None,
                    model: SerNet | None = None) -> Checkpoint:
    """Small checkpoint of a random network with mel128 features over 1 s."""
    if normalizer is None:
        normalizer = Normalizer(np.linspace(-60.0, -20.0, 128), np.full(128, 12.0))
    model = model or tiny_model(tiny_model_config(len(labels)), seed)
    return Checkpoint.from_model(
        model, TINY_AUDIO, feature_preset('mel128'), normalizer, labels,
        build_provenance('ravdess', 'test', seed, {'ua': 0.5}, note='tiny test model'))


@pytest.fixture(scope='module')
def checkpoint() -> Checkpoint:
    return tiny_checkpoint()


@pytest.fixture(scope='module')
def saved(checkpoint: Checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkpoint.save(tmp_path_factory.mktemp('checkpoint') / 'model.pt')


def raw_payload(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location='cpu', weights_only=True)


def write_payload(payload: dict[str, Any], path: Path, redigest: bool = True) -> Path:
    """Save a (modified) payload as a file; with ``redigest`` its checksum is made valid."""
    if redigest and DIGEST_KEY in payload:
        try:
            payload = {**payload, DIGEST_KEY: content_digest(payload)}
        except (AttributeError, TypeError):   # weights that are not tensors: digest stays stale
            pass
    torch.save(payload, path)
    return path


def same_content(first: Checkpoint, second: Checkpoint) -> bool:
    return (first.state_dict.keys() == second.state_dict.keys()
            and all(torch.equal(first.state_dict[key], second.state_dict[key])
                    for key in first.state_dict)
            and first.model_config == second.model_config
            and first.front_end() == second.front_end()
            and first.labels == second.labels and first.provenance == second.provenance)


def test_round_trip_gives_identical_outputs(checkpoint: Checkpoint, saved: Path,
                                            ravdess_files: list[Path]) -> None:
    loaded = Checkpoint.load(saved)
    assert same_content(loaded, checkpoint)
    assert loaded.labels == LABELS
    assert loaded.audio_config == TINY_AUDIO
    assert loaded.normalizer == checkpoint.normalizer
    assert loaded.provenance['note'] == 'tiny test model'
    assert loaded.provenance['metrics'] == {'ua': 0.5}
    assert loaded.provenance['code_version'] == __version__
    features = np.stack([loaded.front_end().extract_file(path) for path in ravdess_files[:2]])
    assert np.array_equal(features, np.stack([checkpoint.front_end().extract_file(path)
                                              for path in ravdess_files[:2]]))
    batch = torch.from_numpy(features)
    with torch.no_grad():
        assert torch.equal(loaded.build_model()(batch), checkpoint.build_model()(batch))
    assert not loaded.build_model().training


def test_file_holds_only_plain_values_and_a_digest(saved: Path) -> None:
    payload = raw_payload(saved)
    assert payload['format'] == FORMAT_NAME and payload['format_version'] == FORMAT_VERSION
    assert len(payload[DIGEST_KEY]) == 64 and payload[DIGEST_KEY] == content_digest(payload)
    rest = {key: value for key, value in payload.items() if key != 'state_dict'}
    assert json.loads(json.dumps(rest)) == rest
    assert all(isinstance(value, torch.Tensor) for value in payload['state_dict'].values())
    assert [entry.name for entry in saved.parent.iterdir()] == [saved.name]   # no temp files


def test_save_replaces_a_file_atomically(checkpoint: Checkpoint, tmp_path: Path) -> None:
    target = tmp_path / 'sub' / 'model.pt'
    tiny_checkpoint(seed=1).save(target)
    checkpoint.save(target)
    assert same_content(Checkpoint.load(target), checkpoint)
    assert sorted(entry.name for entry in target.parent.iterdir()) == ['model.pt']


def largest_record_offset(path: Path) -> int:
    """Byte offset of the middle of the biggest tensor's data inside the zip archive."""
    with zipfile.ZipFile(path) as archive:
        storages = [info for info in archive.infolist() if '/data/' in info.filename]
        entry = max(storages, key=lambda info: info.file_size)
    header = path.read_bytes()[entry.header_offset:entry.header_offset + ZIP_LOCAL_HEADER_SIZE]
    name_length = int.from_bytes(header[26:28], 'little')
    extra_length = int.from_bytes(header[28:30], 'little')
    start = entry.header_offset + ZIP_LOCAL_HEADER_SIZE + name_length + extra_length
    return start + entry.file_size // 2


def test_a_flipped_weight_byte_is_refused(saved: Path, tmp_path: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[largest_record_offset(saved)] ^= 0x10
    tampered = tmp_path / 'tampered.pt'
    tampered.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match='checksum mismatch: the content differs from '
                                              'what was written'):
        Checkpoint.load(tampered)


def test_flipped_bytes_anywhere_are_refused_or_harmless(checkpoint: Checkpoint, saved: Path,
                                                        tmp_path: Path) -> None:
    """PyTorch's zip reader skips CRCs; nothing flipped may load as different weights."""
    data = saved.read_bytes()
    rng = random.Random(0)
    refused = 0
    for _ in range(BYTE_FLIPS):
        position = rng.randrange(len(data))
        flipped = bytearray(data)
        flipped[position] ^= 1 << rng.randrange(8)
        path = tmp_path / 'flipped.pt'
        path.write_bytes(bytes(flipped))
        try:
            loaded = Checkpoint.load(path)
        except CheckpointError:
            refused += 1
            continue
        assert same_content(loaded, checkpoint), f'byte {position} changed the content silently'
    assert refused >= BYTE_FLIPS // 2


def test_edited_content_with_a_stale_digest_is_refused(saved: Path, tmp_path: Path) -> None:
    payload = raw_payload(saved)
    payload['labels'] = ['angry', 'happy', 'fearful']
    with pytest.raises(CheckpointError, match='checksum mismatch'):
        Checkpoint.load(write_payload(payload, tmp_path / 'edited.pt', redigest=False))
    payload = raw_payload(saved)
    payload['state_dict']['classifier.bias'] += 1.0
    with pytest.raises(CheckpointError, match='checksum mismatch'):
        Checkpoint.load(write_payload(payload, tmp_path / 'edited.pt', redigest=False))


@pytest.mark.parametrize('keep', [0.5, 0.99, 10])
def test_a_truncated_file_is_refused(saved: Path, tmp_path: Path, keep: float) -> None:
    data = saved.read_bytes()
    size = int(len(data) * keep) if keep < 1 else int(keep)
    path = tmp_path / 'truncated.pt'
    path.write_bytes(data[:size])
    with pytest.raises(CheckpointError, match='truncated or corrupt checkpoint'):
        Checkpoint.load(path)


class Payload:
    """A class whose unpickling would create a file: a safe load must never call it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


def test_a_pickled_object_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / 'code-ran'
    path = tmp_path / 'evil.pt'
    torch.save({'format': FORMAT_NAME, 'format_version': FORMAT_VERSION,
                'labels': Payload(marker)}, path)
    with pytest.raises(CheckpointError, match=r'refused: the file stores the Python object '
                                              r"'.+', which a safe load does not restore"):
        Checkpoint.load(path)
    plain_pickle = tmp_path / 'evil.pkl'
    plain_pickle.write_bytes(pickle.dumps({'weights': Payload(marker)}))
    with pytest.raises(CheckpointError, match='not a ser_ros checkpoint: a plain pickle'):
        Checkpoint.load(plain_pickle)
    assert not marker.exists()


@pytest.mark.parametrize(('content', 'message'), [
    ({'weights': torch.zeros(3)}, r"not a ser_ros checkpoint \(format None, expected "
                                  r"'ser_ros.checkpoint'\)"),
    ([torch.zeros(3)], r'not a ser_ros checkpoint \(holds a list\)'),
    ({'format': FORMAT_NAME, 'format_version': 99}, 'format version 99 is not supported'),
    ({'format': FORMAT_NAME, 'format_version': FORMAT_VERSION},
     r"checkpoint lacks \['state_dict', 'model_config'"),
], ids=['plain-dict', 'list', 'future-version', 'no-content'])
def test_a_foreign_torch_file_is_refused(tmp_path: Path, content: Any, message: str) -> None:
    path = tmp_path / 'foreign.pt'
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.load(path)


@pytest.mark.parametrize(('data', 'message'), [
    (b'', 'the file is empty'),
    (bytes(range(256)) * 8, 'not a ser_ros checkpoint: not a zip archive'),
    (b'RIFF\x24\x00\x00\x00WAVEfmt ', 'not a zip archive'),
], ids=['empty', 'random', 'wav-header'])
def test_a_foreign_file_is_refused(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / 'foreign.pt'
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.load(path)


def test_a_zip_that_is_not_a_torch_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / 'archive.pt'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('readme.txt', 'not weights')
    with pytest.raises(CheckpointError, match=r'^.*archive\.pt: not a readable ser_ros '
                                              r'checkpoint \(corrupt, truncated or foreign'):
        Checkpoint.load(path)


def test_missing_path_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match='checkpoint file does not exist'):
        Checkpoint.load(tmp_path / 'absent.pt')
    with pytest.raises(CheckpointError, match='not a file'):
        Checkpoint.load(tmp_path)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        payload[key] = value
    return change


def _four_classes_three_outputs(payload: dict[str, Any]) -> None:
    payload['labels'] = [*LABELS, 'neutral']
    payload['model_config']['num_classes'] = 4


def _drop_weight(payload: dict[str, Any]) -> None:
    del payload['state_dict']['blstm.weight_hh_l0']


def _nan_weight(payload: dict[str, Any]) -> None:
    payload['state_dict']['classifier.weight'][0, 0] = float('nan')


def _two_seconds(payload: dict[str, Any]) -> None:
    payload['audio_config']['duration_s'] = 2.0


def _wrong_statistics(payload: dict[str, Any]) -> None:
    payload['normalizer'] = {'mean': [0.0] * 46, 'std': [1.0] * 46}


def _unknown_model_key(payload: dict[str, Any]) -> None:
    payload['model_config']['heads'] = 4


@pytest.mark.parametrize(('change', 'message'), [
    (_set('labels', [*LABELS, 'neutral']),
     r"4 labels \['angry', 'happy', 'sad', 'neutral'\] but the classifier has 3 outputs"),
    (_set('labels', ['angry', 'happy']), r'2 labels .* but the classifier has 3 outputs'),
    (_four_classes_three_outputs,
     r"weight 'classifier.weight' has shape \(3, 32\), the model config needs \(4, 32\)"),
    (_set('labels', ['angry', 'angry', 'sad']), 'labels are not unique'),
    (_set('labels', ['angry', '', 'sad']), 'labels must be non-empty strings'),
    (_drop_weight, r"weights do not match the model config: missing \['blstm.weight_hh_l0'\]"),
    (_nan_weight, "weight 'classifier.weight' holds NaN"),
    (_set('feature_config', feature_preset('iemocap').to_dict()),
     "feature config 'iemocap' gives 46 features, the model expects 128"),
    (_two_seconds, r'front end gives features of shape \(128, 251\) for 2.0 s of audio, '
                   r'the model expects \(128, 126\)'),
    (_wrong_statistics, 'normaliser statistics cover 46 feature rows, the model expects 128'),
    (_unknown_model_key, r"invalid configuration: ModelConfig: unknown keys \['heads'\]"),
    (_set('extra', 1), r"unknown entries \['extra'\]"),
    (_set('provenance', ['not', 'a', 'dict']), 'provenance must be a dictionary'),
    (_set('state_dict', {'x': 1}), 'state_dict must map names to tensors'),
    (_set('state_dict', [1.0]), 'state_dict must map names to tensors'),
], ids=['more-labels', 'fewer-labels', 'config-vs-weights', 'duplicate-labels', 'empty-label',
        'missing-weight', 'nan-weight', 'other-features', 'other-duration', 'statistics',
        'model-key', 'extra-entry', 'provenance', 'state-dict', 'state-list'])
def test_mismatched_parts_are_refused(saved: Path, tmp_path: Path,
                                      change: Callable[[dict[str, Any]], None],
                                      message: str) -> None:
    payload = raw_payload(saved)
    change(payload)
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.load(write_payload(payload, tmp_path / 'mismatched.pt'))


def test_version_1_files_without_a_digest_still_load(checkpoint: Checkpoint, saved: Path,
                                                     tmp_path: Path) -> None:
    payload = raw_payload(saved)
    del payload[DIGEST_KEY]
    payload['format_version'] = 1
    assert same_content(Checkpoint.load(write_payload(payload, tmp_path / 'v1.pt')), checkpoint)
    payload['format_version'] = FORMAT_VERSION   # a current file must carry its digest
    with pytest.raises(CheckpointError, match=rf"lacks \['{DIGEST_KEY}'\]"):
        Checkpoint.load(write_payload(payload, tmp_path / 'v2.pt'))


def test_from_model_checks_what_it_captures() -> None:
    model = tiny_model()
    with pytest.raises(CheckpointError, match='provenance.when: object cannot be stored'):
        Checkpoint.from_model(model, TINY_AUDIO, feature_preset('mel128'), None, LABELS,
                              {'when': object()})
    with pytest.raises(CheckpointError, match='2 labels'):
        Checkpoint.from_model(model, TINY_AUDIO, feature_preset('mel128'), None, LABELS[:2])
    with pytest.raises(CheckpointError, match='front end gives features of shape'):
        Checkpoint.from_model(model, AudioConfig(), feature_preset('mel128'), None, LABELS)
    bare = Checkpoint.from_model(model, TINY_AUDIO, feature_preset('mel128'), None, LABELS,
                                 {'seed': np.int64(3), 'split': Path('a/b')})
    assert bare.provenance == {'seed': 3, 'split': 'a/b'}
    assert bare.front_end().normalizer is None


def test_provenance_and_default_path() -> None:
    record = build_provenance('ravdess', 'speaker-independent', 7, {'ua': np.float32(0.5)})
    assert record['dataset'] == 'ravdess' and record['seed'] == 7
    assert record['metrics'] == {'ua': 0.5} and record['code_version'] == __version__
    assert json.loads(json.dumps(record)) == record
    assert default_model_path().name == DEFAULT_MODEL_NAME
