"""The model benchmarks still run: bench/run --quick for inference, train_epoch, noise_robustness.

Quick numbers mean nothing (5 timed calls, 2 training steps on a shared machine); what is
checked is that every setting docs/benchmarks.md reports is timed, including the TorchScript
file that ser_export writes, and that the values are consistent with each other.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ros.harness import child_environment

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN = REPO_ROOT / 'bench' / 'run'
MODEL_BENCHMARKS = ('inference', 'train_epoch', 'noise_robustness')
RUN_TIMEOUT_S = 240
SHIPPED_LAYOUT = 2
EPOCH_UTTERANCES = 960


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_quick_model_benchmarks_time_every_setting(ravdess_dir: Path) -> None:
    environment = child_environment()
    environment['SER_DATA_ROOT'] = str(ravdess_dir.parent)
    command = [sys.executable, str(RUN), '--quick', '--only', ','.join(MODEL_BENCHMARKS)]
    result = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True,
                            text=True, timeout=RUN_TIMEOUT_S, check=False)
    report = f'$ {" ".join(command)}\n[exit {result.returncode}]\n{result.stderr[-4000:]}'
    assert result.returncode == 0, report
    lines = [line for line in result.stdout.splitlines() if line.startswith('{')]
    assert len(lines) == 1, report
    combined = json.loads(lines[0])
    assert combined['ran'] == list(MODEL_BENCHMARKS) and combined['failed'] == []

    inference = combined['results']['inference']
    precisions = {'fp32', 'bf16'} if inference['bf16_skipped'] is None else {'fp32'}
    timed = {(row['shared_blocks'], row['fusion'], row['precision'])
             for row in inference['results']}
    for fusion in ('fused', 'unfused', 'fused_skip_padding', 'torchscript'):
        assert {(SHIPPED_LAYOUT, fusion, p) for p in precisions} <= timed, timed
    for row in inference['results']:
        for part in ('features_ms', 'network_ms', 'total_ms'):
            assert 0 < row[part]['p50'] <= row[part]['p95'], (row, part)
        assert row['total_ms']['mean'] == pytest.approx(
            row['features_ms']['mean'] + row['network_ms']['mean'], abs=0.05)

    epoch = combined['results']['train_epoch']
    assert epoch['epoch_utterances'] == EPOCH_UTTERANCES
    assert {(row['model'], row['precision']) for row in epoch['results']} >= {
        ('shipped', 'fp32')}
    for row in epoch['results']:
        steps = EPOCH_UTTERANCES / epoch['batch_size']
        assert row['epoch_s'] == pytest.approx(row['step_s'] * steps, rel=0.01, abs=0.1), row

    noise = combined['results']['noise_robustness']
    assert noise['part'] == 'test' and noise['files'] > 0
    assert [(row['noise'], row['snr_db']) for row in noise['results']] == [
        (None, None), ('white', 20.0), ('babble', 20.0)]
    assert all(0 <= row[key] <= 100 for row in noise['results'] for key in ('wa', 'ua'))


@pytest.mark.timeout(RUN_TIMEOUT_S)
def test_noise_robustness_scores_what_the_vad_cuts(ravdess_dir: Path) -> None:
    command = [sys.executable, str(REPO_ROOT / 'bench' / 'noise_robustness.py'), '--quick',
               '--vad-cut', '--noise', 'white', '--snr', '20', '--data', str(ravdess_dir)]
    result = subprocess.run(command, cwd=REPO_ROOT, env=child_environment(), capture_output=True,
                            text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    assert report['vad_cut'] is True and report['files'] > 0
    assert [(row['noise'], row['snr_db']) for row in report['results']] == [
        (None, None), ('white', 20.0)]
    clean = report['results'][0]
    # Clean RAVDESS sentences in a second of silence: the VAD finds every one.
    assert clean['missed'] == 0 and sum(clean['answers'].values()) == report['files']
    assert 'longest VAD cut' in result.stderr


@pytest.mark.timeout(RUN_TIMEOUT_S)
def test_noise_robustness_scores_each_trailing_silence(ravdess_dir: Path) -> None:
    command = [sys.executable, str(REPO_ROOT / 'bench' / 'noise_robustness.py'), '--quick',
               '--vad-cut', '--noise', '--trailing-silence', '0', '1', '--data',
               str(ravdess_dir)]
    result = subprocess.run(command, cwd=REPO_ROOT, env=child_environment(), capture_output=True,
                            text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    assert report['trailing_silence_s'] == [0.0, 1.0]
    assert [(row['noise'], row['trailing_silence_s']) for row in report['results']] == [
        (None, 0.0), (None, 1.0)]


def _noise_robustness_module():
    spec = importlib.util.spec_from_file_location(
        'noise_robustness', REPO_ROOT / 'bench' / 'noise_robustness.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_babble_talkers_are_the_next_pool_files_never_the_file_itself() -> None:
    bench = _noise_robustness_module()
    voices = bench.BABBLE_VOICES
    talkers = bench.babble_talkers([0, 3, 6], [1, 3, 5], lambda position: np.array([position]))
    # Cyclic from where each file is or would be in the pool, skipping the file itself.
    assert talkers[0].tolist() == [1, 3, 5, 1, 3, 5][:voices]
    assert talkers[1].tolist() == [5, 1, 5, 1, 5, 1][:voices]
    assert talkers[2].tolist() == [1, 3, 5, 1, 3, 5][:voices]
    with pytest.raises(ValueError, match='at least 2 files'):
        bench.babble_talkers([0], [0], lambda position: np.array([position]))


@pytest.mark.timeout(RUN_TIMEOUT_S)
def test_noise_robustness_babble_of_chosen_emotions(ravdess_dir: Path) -> None:
    command = [sys.executable, str(REPO_ROOT / 'bench' / 'noise_robustness.py'), '--quick',
               '--noise', 'babble', '--snr', '10', '--data', str(ravdess_dir)]
    result = subprocess.run(command + ['--babble-of', 'neutral'], cwd=REPO_ROOT,
                            env=child_environment(), capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    assert report['babble_of'] == ['neutral']
    assert [(row['noise'], row['snr_db']) for row in report['results']] == [
        (None, None), ('babble', 10.0)]
    assert 'babble of neutral files' in result.stderr
    refused = subprocess.run(command + ['--babble-of', 'joy'], cwd=REPO_ROOT,
                             env=child_environment(), capture_output=True, text=True,
                             timeout=RUN_TIMEOUT_S, check=False)
    assert refused.returncode != 0 and "--babble-of joy: not among the model's labels" in \
        refused.stderr
