"""Data-set summaries and the ``ser_dataset summary`` command, on real RAVDESS and the miniature."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from ser_ros.cli.dataset import main
from ser_ros.data.iemocap import load_iemocap
from ser_ros.data.ravdess import load_ravdess
from ser_ros.data.summary import CorpusSummary, audio_info, identical_files, summarize

from .miniature_iemocap import Miniature, write_miniature_iemocap

IDENTICAL_PAIR = ('Actor_07/03-01-03-01-02-01-07.flac', 'Actor_07/03-01-03-01-02-02-07.flac')
CONSOLE_TIMEOUT_S = 60


@pytest.fixture(scope='module')
def ravdess_summary(ravdess_dir: Path) -> CorpusSummary:
    return summarize(load_ravdess(ravdess_dir))


@pytest.fixture(scope='module')
def miniature(tmp_path_factory: pytest.TempPathFactory) -> Miniature:
    return write_miniature_iemocap(tmp_path_factory.mktemp('iemocap'))


def test_ravdess_counts(ravdess_summary: CorpusSummary) -> None:
    summary = ravdess_summary
    assert summary.count == 1200 and summary.corpus == 'ravdess'
    assert summary.classes == {'neutral': 240, 'happy': 160, 'sad': 160, 'angry': 160,
                               'fearful': 160, 'disgust': 160, 'surprised': 160}
    assert summary.class_sources['neutral'] == {'calm': 160, 'neutral': 80}
    assert summary.genders == {'F': 600, 'M': 600}
    assert len(summary.speakers) == 20 and len(summary.units) == 20
    actor7 = next(item for item in summary.speakers if item.speaker == 'Actor_07')
    assert (actor7.gender, actor7.count, actor7.classes['neutral']) == ('M', 60, 12)


def test_ravdess_durations_and_formats(ravdess_summary: CorpusSummary,
                                       ravdess_files: list[Path]) -> None:
    durations = []
    for path in ravdess_files:
        info = soundfile.info(str(path))
        durations.append(info.frames / info.samplerate)
    stats = ravdess_summary.durations
    assert stats.count == 1200
    assert stats.total_s == pytest.approx(sum(durations))
    assert (stats.min_s, stats.max_s) == (min(durations), max(durations))
    assert stats.median_s == pytest.approx(statistics.median(durations))
    assert 2.9 < stats.min_s < 3.0 and 5.2 < stats.max_s < 5.3  # as the data README says
    assert ravdess_summary.sample_rates == {16000: 1200}
    assert ravdess_summary.channels == {1: 1200}
    assert ravdess_summary.formats == {'FLAC': 1200}


def test_ravdess_identical_pair_is_found(ravdess_summary: CorpusSummary) -> None:
    assert ravdess_summary.identical == (IDENTICAL_PAIR,)


def test_identical_files_compares_content_not_size(ravdess_dir: Path, tmp_path: Path) -> None:
    source = ravdess_dir / IDENTICAL_PAIR[0]
    first, second = tmp_path / 'a.flac', tmp_path / 'b.flac'
    shutil.copy(source, first)
    shutil.copy(source, second)
    same_size = bytearray(source.read_bytes())
    same_size[-1] ^= 0xFF
    (tmp_path / 'c.flac').write_bytes(bytes(same_size))
    (tmp_path / 'd.flac').write_bytes(b'short')
    assert identical_files(sorted(tmp_path.iterdir())) == [[first, second]]
    assert identical_files([first, tmp_path / 'c.flac']) == []


def test_unreadable_audio_is_named(tmp_path: Path) -> None:
    bad = tmp_path / 'broken.wav'
    bad.write_bytes(b'RIFF not really a wave file')
    with pytest.raises(ValueError, match=r'1 audio files cannot be read: .*broken\.wav'):
        audio_info([bad])


def test_iemocap_summary(miniature: Miniature) -> None:
    summary = summarize(load_iemocap(miniature.root))
    kept = miniature.kept
    assert summary.fold_unit == 'session' and summary.units == {
        str(session): sum(turn.session == session for turn in kept) for session in (1, 2, 5)}
    assert summary.class_sources['happy'] == {
        code: sum(turn.code == code for turn in kept) for code in ('exc', 'hap')}
    assert [(item.speaker, item.unit) for item in summary.speakers] == [
        ('Ses01_F', '1'), ('Ses01_M', '1'), ('Ses02_F', '2'), ('Ses02_M', '2'),
        ('Ses05_F', '5'), ('Ses05_M', '5')]
    durations = [turn.end_s - turn.start_s for turn in kept]
    assert summary.durations.total_s == pytest.approx(sum(durations), abs=1e-3)
    assert summary.durations.min_s == pytest.approx(min(durations), abs=1e-4)
    assert summary.identical == ()


def test_cli_prints_table_and_writes_json(ravdess_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / 'reports' / 'ravdess.json'
    status = main(['summary', '--corpus', 'ravdess', '--root', str(ravdess_dir),
                   '--json', str(out)])
    text = capsys.readouterr().out

    assert status == 0
    lines = text.splitlines()
    assert lines[0] == 'ravdess: 1200 utterances, 20 speakers, 7 classes'
    assert any(line.split()[:3] == ['neutral', '240', '20.0'] and 'calm 160' in line
               for line in lines)
    assert any(line.split() == ['Actor_20', 'F', '60', '12', '8', '8', '8', '8', '8', '8']
               for line in lines)
    assert 'genders: F 600, M 600' in lines
    assert '  ' + ' = '.join(IDENTICAL_PAIR) in lines
    report = json.loads(out.read_text())
    assert report['n'] == 1200 and report['labels'][0] == 'neutral'
    assert report['classes']['neutral'] == 240
    assert report['speakers']['Actor_01'] == {
        'gender': 'M', 'speaker': 'Actor_01', 'n': 60,
        'classes': dict.fromkeys(report['labels'], 8) | {'neutral': 12}}
    assert report['sample_rates'] == {'16000': 1200}
    assert report['identical_files'] == [list(IDENTICAL_PAIR)]
    assert 2.9 < report['duration_s']['min'] < report['duration_s']['max'] < 5.3


def test_cli_eight_classes_and_iemocap(ravdess_dir: Path, miniature: Miniature,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['summary', '--corpus', 'ravdess', '--root', str(ravdess_dir), '--classes', '8',
                 '--no-identical']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[:2] == ['calm', '160'] for line in lines)
    assert any(line.split()[:2] == ['neutral', '80'] for line in lines)
    assert 'identical files: not checked' in lines

    assert main(['summary', '--corpus', 'iemocap', '--root', str(miniature.root)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f'iemocap: {len(miniature.kept)} utterances, 6 speakers, '
                           '3 sessions, 4 classes')
    assert 'speaker  gender  session' in text
    assert 'sessions: 1: ' in text


def test_cli_bad_input_is_one_line_and_status_2(ravdess_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['summary', '--corpus', 'ravdess', '--root', str(tmp_path / 'none')]) == 2
    error = capsys.readouterr().err
    assert error.startswith('ser_dataset: error: ravdess data folder') and error.count('\n') == 1

    assert main(['summary', '--corpus', 'iemocap', '--root', str(ravdess_dir)]) == 2
    assert 'no SessionN subfolders' in capsys.readouterr().err

    assert main(['summary', '--corpus', 'ravdess', '--root', str(ravdess_dir),
                 '--classes', '5']) == 2
    assert 'not 5' in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:
        main(['summary', '--corpus', 'crema-d', '--root', str(ravdess_dir)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'crema-d'" in capsys.readouterr().err


def test_cli_skip_malformed_warns(ravdess_dir: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / 'Actor_01'
    folder.mkdir()
    for path in sorted((ravdess_dir / 'Actor_01').glob('*.flac'))[:2]:
        shutil.copy(path, folder / path.name)
    shutil.copy(path, folder / 'take 2.flac')

    assert main(['summary', '--corpus', 'ravdess', '--root', str(tmp_path)]) == 2
    assert 'pass strict=False' in capsys.readouterr().err
    assert main(['summary', '--corpus', 'ravdess', '--root', str(tmp_path),
                 '--skip-malformed']) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith('ravdess: 2 utterances, 1 speakers')
    assert captured.err.startswith('ser_dataset: warning: 1 audio files') and 'take 2' in \
        captured.err


def test_console_script_writes_json_to_stdout(miniature: Miniature) -> None:
    script = Path(sys.executable).parent / 'ser_dataset'
    result = subprocess.run([str(script), 'summary', '--corpus', 'iemocap', '--root',
                             str(miniature.root), '--json', '-'], capture_output=True, text=True,
                            timeout=CONSOLE_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report['corpus'] == 'iemocap' and report['fold_unit'] == 'session'
    assert report['n'] == len(miniature.kept)
    assert report['labels'] == ['neutral', 'angry', 'happy', 'sad']
    assert report['speakers']['Ses05_M']['session'] == '5'
