"""IEMOCAP loader on a generated miniature corpus in the official release layout and formats."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import soundfile

from ser_ros.data.iemocap import load_iemocap, parse_emo_evaluation, utterance_speaker
from ser_ros.data.labels import IEMOCAP_4

from .miniature_iemocap import HEADER, Miniature, write_miniature_iemocap

DROPPED_CODES = {'fru', 'sur', 'xxx', 'oth', 'fea', 'dis'}


@pytest.fixture(scope='module')
def miniature(tmp_path_factory: pytest.TempPathFactory) -> Miniature:
    """Sessions 1, 2 and 5, written once for the module (tests must not modify it)."""
    return write_miniature_iemocap(tmp_path_factory.mktemp('iemocap'))


@pytest.fixture
def own_copy(miniature: Miniature, tmp_path: Path) -> Miniature:
    """Copy the miniature privately, for a test that damages it."""
    root = tmp_path / 'IEMOCAP_full_release'
    shutil.copytree(miniature.root, root)
    turns = tuple(replace(turn, wav=root / turn.wav.relative_to(miniature.root))
                  for turn in miniature.turns)
    return Miniature(root=root, turns=turns)


def test_miniature_is_in_the_release_layout(miniature: Miniature) -> None:
    turn = miniature.turns[0]
    assert turn.wav == (miniature.root / 'Session1' / 'sentences' / 'wav' / 'Ses01F_impro01'
                        / 'Ses01F_impro01_F000.wav')
    text = miniature.label_file('Ses01F_impro01').read_text().splitlines()
    assert text[0] == HEADER and text[1] == ''
    assert text[2] == f'[{turn.start_s:.4f} - {turn.end_s:.4f}]\tSes01F_impro01_F000\tneu\t' \
                      '[1.5000, 2.0000, 2.5000]'
    assert text[3].startswith('C-E2:\t') and any(line.startswith('A-E3:\tval ') for line in text)
    info = soundfile.info(str(turn.wav))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, 'PCM_16')
    assert info.frames == round((turn.end_s - turn.start_s) * 16000)
    assert (miniature.root / 'Session5' / 'sentences' / 'wav' / 'Ses05M_script01_1b').is_dir()


def test_loads_exactly_the_four_class_turns(miniature: Miniature) -> None:
    corpus = load_iemocap(miniature.root)

    assert corpus.name == 'iemocap' and corpus.labels == IEMOCAP_4
    assert [item.name for item in corpus] == [turn.utterance for turn in miniature.kept]
    assert [item.label for item in corpus] == [turn.label for turn in miniature.kept]
    assert [item.path for item in corpus] == [turn.wav for turn in miniature.kept]
    assert {item.emotion for item in corpus} == {'neu', 'ang', 'hap', 'exc', 'sad'}
    assert all(item.path.is_file() for item in corpus)
    # Every dropped code was written, none was loaded.
    assert DROPPED_CODES <= {turn.code for turn in miniature.turns}
    assert len(corpus) == len(miniature.turns) - sum(
        turn.code in DROPPED_CODES for turn in miniature.turns)


def test_excited_is_merged_into_happy(miniature: Miniature) -> None:
    corpus = load_iemocap(miniature.root)
    happy = Counter(item.emotion for item in corpus if item.label == 'happy')
    written = Counter(turn.code for turn in miniature.turns if turn.code in ('hap', 'exc'))
    assert happy == written and set(happy) == {'hap', 'exc'}
    counts = corpus.class_counts()
    assert list(counts) == list(IEMOCAP_4)
    assert counts['happy'] == written['hap'] + written['exc']
    assert counts['neutral'] == sum(turn.code == 'neu' for turn in miniature.turns)


def test_speaker_and_gender_come_from_the_utterance_name(miniature: Miniature) -> None:
    corpus = load_iemocap(miniature.root)
    by_name = {item.name: item for item in corpus}

    # The dialog letter (F) is whose recording it was; the speaker is the letter of the turn.
    male_in_female_dialog = by_name['Ses01F_impro01_M000']
    assert (male_in_female_dialog.speaker, male_in_female_dialog.gender) == ('Ses01_M', 'M')
    female_in_male_dialog = by_name['Ses02M_script01_1_F001']
    assert (female_in_male_dialog.speaker, female_in_male_dialog.gender) == ('Ses02_F', 'F')
    for turn in miniature.kept:
        item = by_name[turn.utterance]
        assert (item.speaker, item.gender, item.session) == (turn.speaker, turn.gender,
                                                             turn.session)
    assert corpus.speakers == ('Ses01_F', 'Ses01_M', 'Ses02_F', 'Ses02_M', 'Ses05_F', 'Ses05_M')
    assert utterance_speaker('Ses05M_script01_1b_F012') == (5, 'F')
    with pytest.raises(ValueError, match='does not look like'):
        utterance_speaker('Ses01F_impro01')


def test_sessions_are_the_fold_unit(miniature: Miniature) -> None:
    corpus = load_iemocap(miniature.root)
    assert corpus.fold_unit == 'session'
    units = corpus.units()
    assert units == [str(turn.session) for turn in miniature.kept]
    assert set(units) == {'1', '2', '5'}
    # Holding out a session holds out both of its speakers, and no other.
    for session in ('1', '2', '5'):
        held_out = {item.speaker for item, unit in zip(corpus, units, strict=True)
                    if unit == session}
        assert held_out == {f'Ses0{session}_F', f'Ses0{session}_M'}


def test_turn_times_are_kept(miniature: Miniature) -> None:
    corpus = load_iemocap(miniature.root)
    for item, turn in zip(corpus, miniature.kept, strict=True):
        assert (item.start_s, item.end_s) == (turn.start_s, turn.end_s)
        info = soundfile.info(str(item.path))
        assert info.frames / info.samplerate == pytest.approx(item.end_s - item.start_s,
                                                              abs=1e-4)


def test_session_selection(miniature: Miniature) -> None:
    corpus = load_iemocap(miniature.root, sessions=(5, 2))
    assert set(corpus.units()) == {'2', '5'}
    assert len(corpus) == sum(turn.session in (2, 5) for turn in miniature.kept)
    with pytest.raises(ValueError, match=r'sessions \[3\] not found'):
        load_iemocap(miniature.root, sessions=(1, 3))


def test_parse_emo_evaluation_reads_summary_lines_only(miniature: Miniature) -> None:
    dialog = 'Ses05M_script01_1b'
    entries = parse_emo_evaluation(miniature.label_file(dialog))
    written = [turn for turn in miniature.turns if turn.dialog == dialog]
    assert [(entry.utterance, entry.code, entry.start_s, entry.end_s) for entry in entries] == [
        (turn.utterance, turn.code, turn.start_s, turn.end_s) for turn in written]


def test_only_four_classes_exist() -> None:
    with pytest.raises(ValueError, match='not 7'):
        load_iemocap('/nonexistent', classes=7)


def test_folder_without_sessions_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='does not exist'):
        load_iemocap(tmp_path / 'missing')
    (tmp_path / 'Session1x').mkdir()
    with pytest.raises(ValueError, match='no SessionN subfolders'):
        load_iemocap(tmp_path)


def test_session_without_label_files_is_refused(own_copy: Miniature) -> None:
    shutil.rmtree(own_copy.root / 'Session2' / 'dialog' / 'EmoEvaluation')
    with pytest.raises(ValueError, match='Session2 has no label files'):
        load_iemocap(own_copy.root)


def test_malformed_summary_line_names_file_and_line(own_copy: Miniature) -> None:
    path = own_copy.label_file('Ses01F_impro01')
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(' - ', ' ')  # '[6.1000 6.5000]' no longer parses
    path.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match=r'Ses01F_impro01\.txt:3: malformed EmoEvaluation line'):
        load_iemocap(own_copy.root)


def test_missing_audio_of_a_kept_turn_is_an_error(own_copy: Miniature) -> None:
    kept = own_copy.kept[3]
    kept.wav.unlink()
    with pytest.raises(ValueError, match=rf'1 labelled IEMOCAP utterances .*{kept.wav.name}'):
        load_iemocap(own_copy.root)


def test_missing_audio_of_a_dropped_turn_does_not_matter(own_copy: Miniature) -> None:
    dropped = [turn for turn in own_copy.turns if turn.label is None]
    for turn in dropped:
        turn.wav.unlink()
    assert len(load_iemocap(own_copy.root)) == len(own_copy.kept)


def test_turn_of_another_session_is_an_error(own_copy: Miniature) -> None:
    path = own_copy.label_file('Ses02F_impro01')
    path.write_text(path.read_text().replace('\tSes02F_impro01_F000\t', '\tSes01F_impro01_F000\t'))
    with pytest.raises(ValueError, match='belongs to session 1, not 2'):
        load_iemocap(own_copy.root)
