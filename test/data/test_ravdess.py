"""RAVDESS loader on the real corpus folder and on small edited copies of real files."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import soundfile
import soxr

from ser_ros.data.corpus import Corpus
from ser_ros.data.labels import RAVDESS_7, RAVDESS_8
from ser_ros.data.ravdess import load_ravdess, parse_ravdess_name

ACTORS = 20
PER_ACTOR = 60
HIGH_RATE = 48000


@pytest.fixture(scope='module')
def corpus7(ravdess_dir: Path) -> Corpus:
    return load_ravdess(ravdess_dir)


def copy_actor_files(source: Path, target: Path, actor: int, count: int) -> list[Path]:
    """Copy ``count`` files of one actor into ``target`` in the official layout."""
    folder = target / f'Actor_{actor:02d}'
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted((source / f'Actor_{actor:02d}').glob('03-01-*.flac'))[:count]
    return [Path(shutil.copy2(path, folder / path.name)) for path in files]


def test_real_folder_is_complete(corpus7: Corpus, ravdess_dir: Path,
                                 ravdess_files: list[Path]) -> None:
    on_disk = sorted(ravdess_dir.glob('Actor_*/*.*'))
    assert len(on_disk) == len(ravdess_files) == ACTORS * PER_ACTOR
    assert len(corpus7) == ACTORS * PER_ACTOR
    assert corpus7.paths == ravdess_files  # sorted by path, nothing skipped
    assert corpus7.speakers == tuple(f'Actor_{actor:02d}' for actor in range(1, ACTORS + 1))
    assert set(Counter(item.speaker for item in corpus7).values()) == {PER_ACTOR}
    assert corpus7.fold_unit == 'speaker' and corpus7.units() == [item.speaker for item in corpus7]
    genders = Counter(item.gender for item in corpus7)
    assert genders == {'M': ACTORS // 2 * PER_ACTOR, 'F': ACTORS // 2 * PER_ACTOR}
    assert {item.gender for item in corpus7 if item.speaker == 'Actor_07'} == {'M'}
    assert {item.gender for item in corpus7 if item.speaker == 'Actor_08'} == {'F'}


def test_seven_classes_merge_calm_into_neutral(corpus7: Corpus) -> None:
    assert corpus7.labels == RAVDESS_7 and 'calm' not in corpus7.labels
    counts = corpus7.class_counts()
    emotions = Counter(item.emotion for item in corpus7)
    assert emotions['neutral'] == 4 * ACTORS and emotions['calm'] == 8 * ACTORS
    assert counts['neutral'] == emotions['neutral'] + emotions['calm'] == 240
    assert all(counts[label] == 8 * ACTORS for label in RAVDESS_7 if label != 'neutral')
    assert {item.label for item in corpus7 if item.emotion == 'calm'} == {'neutral'}
    assert corpus7.targets.tolist() == [RAVDESS_7.index(item.label) for item in corpus7]


def test_eight_classes_keep_calm(ravdess_dir: Path, corpus7: Corpus) -> None:
    corpus8 = load_ravdess(ravdess_dir, classes=8)
    assert corpus8.labels == RAVDESS_8
    counts = corpus8.class_counts()
    assert counts['neutral'] == 80 and counts['calm'] == 160
    assert sum(counts.values()) == len(corpus7)
    assert [item.label for item in corpus8] == [item.emotion for item in corpus7]
    with pytest.raises(ValueError, match=r'\[7, 8\] classes, not 6'):
        load_ravdess(ravdess_dir, classes=6)


def test_fields_are_decoded_from_the_name(corpus7: Corpus) -> None:
    by_name = {item.name: item for item in corpus7}
    item = by_name['03-01-06-02-01-02-13']
    assert (item.label, item.emotion, item.intensity, item.statement, item.repetition,
            item.speaker, item.gender) == ('fearful', 'fearful', 'strong', 1, 2, 'Actor_13', 'M')
    # Neutral is recorded at normal intensity only.
    assert {item.intensity for item in corpus7 if item.emotion == 'neutral'} == {'normal'}
    parsed = parse_ravdess_name('Actor_02/03-01-02-01-02-01-02.WAV')
    assert (parsed.emotion, parsed.actor, parsed.gender) == ('calm', 2, 'F')


def test_any_sample_rate_and_extension(ravdess_dir: Path, tmp_path: Path) -> None:
    flacs = copy_actor_files(ravdess_dir, tmp_path, 1, 4)
    sources = sorted((ravdess_dir / 'Actor_02').glob('03-01-*.flac'))[:3]
    folder = tmp_path / 'Actor_02'
    folder.mkdir()
    wavs = []
    for index, source in enumerate(sources):
        samples, rate = soundfile.read(source, dtype='float32')
        upsampled = soxr.resample(samples, rate, HIGH_RATE)
        suffix = '.WAV' if index == 0 else '.wav'
        wavs.append(folder / (source.stem + suffix))
        soundfile.write(wavs[-1], upsampled, HIGH_RATE, subtype='PCM_16')

    corpus = load_ravdess(tmp_path)

    assert corpus.paths == sorted(flacs + wavs)
    assert corpus.speakers == ('Actor_01', 'Actor_02')
    assert [item.name for item in corpus if item.speaker == 'Actor_02'] == [s.stem for s in sources]
    rates = Counter(soundfile.info(str(path)).samplerate for path in corpus.paths)
    assert rates == {16000: 4, HIGH_RATE: 3}
    reference = load_ravdess(ravdess_dir)
    expected = {item.name: item.label for item in reference}
    assert all(item.label == expected[item.name] for item in corpus)


def test_other_files_are_ignored(ravdess_dir: Path, tmp_path: Path) -> None:
    copied = copy_actor_files(ravdess_dir, tmp_path, 3, 2)
    folder = tmp_path / 'Actor_03'
    speech = copied[0]
    (folder / 'notes.txt').write_text('not audio')
    (folder / f'._{speech.name}').write_bytes(b'\x00\x05\x16\x07')  # macOS AppleDouble file
    (folder / '.DS_Store').write_bytes(b'\x00')
    shutil.copy(speech, folder / '03-02-03-01-01-01-03.flac')  # song: another archive
    shutil.copy(speech, folder / '01-01-03-01-01-01-03.flac')  # audio-video modality
    (tmp_path / 'Actor_03_extra').mkdir()
    shutil.copy(speech, tmp_path / 'Actor_03_extra' / speech.name)  # not an actor folder
    shutil.copy(speech, tmp_path / speech.name)  # beside the actor folders
    (tmp_path / 'README.md').write_text('RAVDESS copy')

    assert load_ravdess(tmp_path).paths == copied


@pytest.mark.parametrize('bad_name', ['03-01-05-01-01-01.flac', '03-01-09-01-01-01-04.flac',
                                      '03-01-05-03-01-01-04.flac', 'recording 1.flac',
                                      '03-01-01-01-01-01-04 (copy).flac'])
def test_malformed_name_strict_or_skipped(ravdess_dir: Path, tmp_path: Path,
                                          bad_name: str) -> None:
    copied = copy_actor_files(ravdess_dir, tmp_path, 4, 3)
    shutil.copy(copied[0], tmp_path / 'Actor_04' / bad_name)

    with pytest.raises(ValueError, match=r'1 audio files .* malformed.*strict=False') as error:
        load_ravdess(tmp_path)
    assert bad_name in str(error.value)
    with pytest.warns(UserWarning, match=r'1 audio files .*skipped'):
        corpus = load_ravdess(tmp_path, strict=False)
    assert corpus.paths == copied


def test_file_in_the_wrong_actor_folder(ravdess_dir: Path, tmp_path: Path) -> None:
    copied = copy_actor_files(ravdess_dir, tmp_path, 5, 2)
    stray = copy_actor_files(ravdess_dir, tmp_path, 6, 1)[0]
    moved = tmp_path / 'Actor_05' / stray.name
    stray.rename(moved)

    with pytest.raises(ValueError, match=r"names actor 06 but lies in Actor_05"):
        load_ravdess(tmp_path)
    with pytest.warns(UserWarning, match='names actor 06 but lies in Actor_05'):
        corpus = load_ravdess(tmp_path, strict=False)
    assert corpus.paths == copied
    assert corpus.speakers == ('Actor_05',)


def test_same_utterance_twice_is_refused(ravdess_dir: Path, tmp_path: Path) -> None:
    flac = copy_actor_files(ravdess_dir, tmp_path, 7, 2)[1]
    samples, rate = soundfile.read(flac)
    soundfile.write(flac.with_suffix('.wav'), samples, rate)

    with pytest.raises(ValueError, match=f'repeats utterance {flac.stem}'):
        load_ravdess(tmp_path)
    with pytest.warns(UserWarning, match='repeats utterance'):
        corpus = load_ravdess(tmp_path, strict=False)
    assert len(corpus) == 2 and len({item.name for item in corpus}) == 2


def test_folder_without_actors_is_refused(ravdess_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='does not exist'):
        load_ravdess(tmp_path / 'missing')
    with pytest.raises(ValueError, match='no Actor_XX subfolders'):
        load_ravdess(ravdess_dir / 'Actor_01')  # one level too deep
    (tmp_path / 'Actor_01').mkdir()
    (tmp_path / 'Actor_01' / 'notes.txt').write_text('empty')
    with pytest.raises(ValueError, match='holds no audio-only speech files'):
        load_ravdess(tmp_path)

