"""A folder per emotion (any corpus): labels from folder names, speakers from subfolders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from core.test_checkpoint import real_normalizer, tiny_checkpoint

from ser_ros.cli.dataset import main as dataset_main
from ser_ros.cli.evaluate import main as evaluate_main
from ser_ros.data.folders import folder_label, load_folders
from ser_ros.data.labels import IEMOCAP_4, RAVDESS_7, RAVDESS_8
from ser_ros.data.ravdess import parse_ravdess_name
from ser_ros.data.registry import load_corpus

# RAVDESS emotion -> the folder name another corpus might use for it.
FOLDER_NAMES = {'angry': 'Anger', 'happy': 'happiness', 'sad': 'sad', 'calm': 'calm',
                'fearful': 'fear', 'surprised': 'pleasant_surprise'}


@pytest.fixture(scope='module')
def sorted_folders(ravdess_files: list[Path], tmp_path_factory: pytest.TempPathFactory
                   ) -> tuple[Path, dict[Path, str]]:
    """Real RAVDESS files sorted into emotion folders: actors 1-2 by speaker, 3 flat."""
    root = tmp_path_factory.mktemp('folders')
    emotions = {}
    for path in ravdess_files:
        name = parse_ravdess_name(path.stem)
        if name.actor > 3 or name.emotion not in FOLDER_NAMES or name.repetition != 1:
            continue
        folder = root / FOLDER_NAMES[name.emotion]
        if name.actor < 3:
            folder = folder / f'speaker{name.actor}'
        folder.mkdir(parents=True, exist_ok=True)
        copy = Path(shutil.copy2(path, folder / path.name))
        emotions[copy] = name.emotion
    (root / 'Anger' / 'notes.txt').write_text('not audio')
    (root / '.hidden').mkdir()
    return root, emotions


def test_folder_names_map_onto_each_label_set() -> None:
    assert folder_label('Anger', RAVDESS_7) == 'angry'
    assert folder_label('calm', RAVDESS_7) == 'neutral'
    assert folder_label('calm', RAVDESS_8) == 'calm'
    assert folder_label('excited', IEMOCAP_4) == 'happy'
    assert folder_label('pleasant-surprise', RAVDESS_7) == 'surprised'
    assert folder_label('surprise', IEMOCAP_4) is None
    assert folder_label('contempt', RAVDESS_8) is None


def test_labels_and_speakers_come_from_the_folders(sorted_folders) -> None:
    root, emotions = sorted_folders
    corpus = load_corpus('folders', root)
    assert corpus.labels == RAVDESS_7 and len(corpus) == len(emotions)
    for item in corpus:
        emotion = emotions[item.path]
        assert item.label == ('neutral' if emotion == 'calm' else emotion)
        actor = parse_ravdess_name(item.path.stem).actor
        assert item.speaker == (f'speaker{actor}' if actor < 3 else 'unknown')
    eight = load_folders(root, classes=8)
    assert {item.label for item in eight} == set(emotions.values())


def test_bad_layouts_are_refused_with_the_layout(sorted_folders, tmp_path: Path) -> None:
    root, emotions = sorted_folders
    with pytest.raises(ValueError, match=r"folders \['fear', 'pleasant_surprise'\] name no "
                                         r"emotion of the 4-class set"):
        load_folders(root, classes=4)
    deep = tmp_path / 'deep' / 'angry' / 'speaker1' / 'take1'
    deep.mkdir(parents=True)
    shutil.copy2(next(iter(emotions)), deep / 'a.wav')
    with pytest.raises(ValueError, match='nested deeper than <emotion>/<speaker>/'):
        load_folders(tmp_path / 'deep')
    (tmp_path / 'empty' / 'sad').mkdir(parents=True)
    with pytest.raises(ValueError, match='no audio files'):
        load_folders(tmp_path / 'empty')


def test_summary_and_evaluation_read_the_folders(sorted_folders, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root, emotions = sorted_folders
    assert dataset_main(['summary', '--corpus', 'folders', '--root', str(root), '--json',
                         '-']) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary['n'] == len(emotions) and summary['corpus'] == 'folders'
    model = tiny_checkpoint(labels=RAVDESS_7, normalizer=real_normalizer(list(emotions)[:3]))
    out = tmp_path / 'report.json'
    assert evaluate_main(['--model', str(model.save(tmp_path / 'model.pt')), '--corpus',
                          'folders', '--data', str(root), '--json', str(out), '--device', 'cpu',
                          '--jobs', '1']) == 0
    report = json.loads(out.read_text())
    assert report['n'] == len(emotions) and report['labels'] == list(RAVDESS_7)
    # No disgust folder: its recall is undefined and left out of UA, not counted as 0.
    assert 'disgust' not in report['per_class_recall']
    assert set(report['per_class_recall']) == {'neutral', 'happy', 'sad', 'angry', 'fearful',
                                              'surprised'}
