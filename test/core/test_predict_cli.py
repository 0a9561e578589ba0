"""``ser_predict``: one JSON line per file, errors per file, clear exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
import torch

from ser_ros.cli.predict import EXIT_FILE_FAILED, EXIT_OK, EXIT_USAGE, main
from ser_ros.core.audio import load_audio
from ser_ros.core.checkpoint import default_model_path
from ser_ros.core.inference import EmotionRecognizer

from .test_checkpoint import LABELS, real_normalizer, tiny_checkpoint

SUBPROCESS_TIMEOUT_S = 120


@pytest.fixture(scope='module')
def files(ravdess_files: list[Path]) -> list[Path]:
    return ravdess_files[::len(ravdess_files) // 2][:2]


@pytest.fixture(scope='module')
def model_path(files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    checkpoint = tiny_checkpoint(normalizer=real_normalizer(files))
    return checkpoint.save(tmp_path_factory.mktemp('cli') / 'model.pt')


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict], str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def console_script() -> list[str]:
    """Return the installed ser_predict, else the module run by this interpreter."""
    script = Path(sys.executable).parent / 'ser_predict'
    return [str(script)] if script.is_file() else [sys.executable, '-m', 'ser_ros.cli.predict']


def check_line(line: dict, file: str) -> None:
    assert set(line) == {'file', 'label', 'probabilities'} and line['file'] == file
    assert list(line['probabilities']) == list(LABELS)
    values = np.array(list(line['probabilities'].values()))
    assert abs(values.sum() - 1.0) < 1e-5
    assert line['label'] == LABELS[int(np.argmax(values))]


def test_one_json_line_per_file(model_path: Path, files: list[Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    stereo = tmp_path / 'stereo_48k.wav'   # another rate, channel count and format
    mono = soxr.resample(load_audio(files[0]), 16000, 48000)
    soundfile.write(stereo, np.stack([mono, mono], axis=1), 48000, subtype='PCM_16')
    names = [str(files[0]), str(files[1]), str(stereo)]
    code, lines, err = run_main(['--model', str(model_path), '--device', 'cpu', *names], capsys)
    assert code == EXIT_OK and err == ''
    assert len(lines) == len(names)
    recognizer = EmotionRecognizer.from_checkpoint(model_path, device='cpu')
    for line, name in zip(lines, names, strict=True):
        check_line(line, name)
        expected = recognizer.predict_file(name)
        assert line['label'] == expected.label
        assert np.allclose(list(line['probabilities'].values()),
                           list(expected.probabilities.values()), atol=1e-6)
    assert np.allclose(list(lines[2]['probabilities'].values()),
                       list(lines[0]['probabilities'].values()), atol=0.05)


def test_a_bad_file_is_reported_and_the_rest_classified(
        model_path: Path, files: list[Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / 'notes.wav'
    text.write_text('not audio')
    empty = tmp_path / 'empty.wav'
    soundfile.write(empty, np.zeros(0, dtype=np.int16), 16000)
    names = [str(tmp_path / 'absent.flac'), str(files[0]), str(text), str(empty), str(files[1])]
    code, lines, _ = run_main(['--model', str(model_path), '--device', 'auto', *names], capsys)
    assert code == EXIT_FILE_FAILED
    assert [line['file'] for line in lines] == names
    assert 'audio file not found' in lines[0]['error']
    assert 'cannot read audio file' in lines[2]['error']
    assert 'no audio' in lines[3]['error']
    for index in (1, 4):
        check_line(lines[index], names[index])


def test_an_unusable_model_exits_2(model_path: Path, files: list[Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(model_path.read_bytes()[:1000])
    code, lines, err = run_main(['--model', str(truncated), str(files[0])], capsys)
    assert code == EXIT_USAGE and lines == []
    assert f'ser_predict: error: cannot load model {truncated}: ' in err
    assert 'truncated or corrupt checkpoint' in err
    if not torch.cuda.is_available():
        code, lines, err = run_main(['--model', str(model_path), '--device', 'cuda',
                                     str(files[0])], capsys)
        assert code == EXIT_USAGE and lines == []
        assert 'CUDA is not available' in err


def test_the_default_model_is_the_shipped_one(files: list[Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run_main([str(files[0])], capsys)
    shipped = default_model_path()
    if shipped.is_file():
        assert code == EXIT_OK and len(lines) == 1 and lines[0]['file'] == str(files[0])
    else:
        assert code == EXIT_USAGE and lines == []
        assert f'cannot load model {shipped}' in err and '--model PATH' in err


def test_console_script_fails_cleanly(tmp_path: Path, files: list[Path]) -> None:
    absent = tmp_path / 'absent.pt'
    result = subprocess.run([*console_script(), '--model', str(absent), str(files[0])],
                            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S,
                            check=False)
    assert result.returncode == EXIT_USAGE
    assert result.stdout == ''
    assert 'Traceback' not in result.stderr
    assert f'cannot load model {absent}: {absent}: checkpoint file does not exist' \
        in result.stderr


def test_trailing_silence_is_appended_to_each_clip(model_path: Path, files: list[Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run_main(['--model', str(model_path), '--device', 'cpu',
                               '--trailing-silence', '0.5', str(files[0])], capsys)
    assert code == EXIT_OK
    padded = EmotionRecognizer.from_checkpoint(model_path, device='cpu', trailing_silence_s=0.5)
    expected = padded.predict_file(files[0])
    assert np.allclose(list(lines[0]['probabilities'].values()),
                       list(expected.probabilities.values()), atol=1e-6)
    with pytest.raises(SystemExit) as raised:
        main(['--trailing-silence', '-1', str(files[0])])
    assert raised.value.code == EXIT_USAGE
    assert 'must be a number of seconds >= 0' in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main([])
    assert raised.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as raised:
        main(['--device', 'tpu', 'x.wav'])
    assert raised.value.code == EXIT_USAGE
    assert "invalid choice: 'tpu'" in capsys.readouterr().err
