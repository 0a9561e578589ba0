"""The peer benchmarks (openSMILE baseline, webrtcvad vs Silero) still run: --quick, real data.

Each script runs as a subprocess, as ``bench/run`` and a user run it, and must print one JSON
object of the documented shape on stdout. Skipped, with the reason, where the bench extras
(requirements/bench.in) are not installed.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / 'bench'
TIMEOUT_S = 240


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f'{module} is not installed (bench extra: pip install -r '
                    'requirements/bench.in, see that file)')


def _run(script: str, ravdess_dir: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, str(BENCH / script), '--quick', '--data', str(ravdess_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f'expected one JSON line on stdout, got {len(lines)}'
    assert 'WA %' in completed.stderr or 'detector' in completed.stderr, completed.stderr
    return json.loads(lines[0])


def test_opensmile_peer_quick(ravdess_dir: Path) -> None:
    _require('opensmile')
    result = _run('peers_opensmile.py', ravdess_dir)
    assert result['bench'] == 'peers_opensmile' and result['quick'] is True
    assert result['method']['num_features'] == 88
    assert result['protocol'] == {'seed': 42, 'test_fraction': 0.2, 'validation_fraction': 0.2,
                                  'folds': 5}
    assert result['paper'] is None
    [run] = result['runs']
    assert (run['protocol'], run['fold']) == ('speaker', 0)
    assert run['sizes'] == {'train': 14, 'validation': 7, 'test': 7}
    assert len(run['test_units']) == 4  # 20 actors in 5 folds
    assert 0.0 <= run['wa'] <= 1.0 and 0.0 <= run['ua'] <= 1.0
    assert run['C'] in result['method']['C_grid']
    assert result['speaker_mean']['folds'] == 1 and result['speaker_mean']['wa'] == run['wa']
    timing = result['time_ms']
    assert timing['utterances_featurised'] == 28 and timing['utterances_classified'] == 7
    assert 0.0 < timing['features']['p50'] <= timing['features']['p95']
    assert timing['per_utterance']['p50'] >= timing['features']['p50'] * 0.5


def test_vad_compare_quick(ravdess_dir: Path) -> None:
    _require('silero_vad')
    result = _run('vad_compare.py', ravdess_dir)
    assert result['bench'] == 'vad_compare' and result['quick'] is True
    assert result['stream']['utterances'] == 4
    rows = result['results']
    conditions = {(row['noise'], row['snr_db']) for row in rows}
    assert conditions == {('clean', None), ('white', 10.0), ('babble', 20.0)}
    assert sorted({row['detector'] for row in rows}) == ['silero', 'silero_stream', 'webrtcvad']
    assert len(rows) == 9
    for row in rows:
        assert row['utterances'] == 4
        assert 0 <= row['missed'] <= 4 and row['phantom'] >= 0
        assert set(row['onset_ms']) == {'median', 'p95_abs'}
        assert row['cost_ms_per_s'] > 0.0
    clean = {row['detector']: row for row in rows if row['noise'] == 'clean'}
    # Four clean sentences with 1-3 s of silence between: every detector finds each one once.
    for detector, row in clean.items():
        assert (row['missed'], row['phantom'], row['merged']) == (0, 0, 0), detector
    # Our segmenter opens 100 ms before the first voiced frame (pre-roll) and decides the end
    # 260 ms (offset window + hangover) after the last one, which its energy gate puts at the
    # end of the speech: its boundaries sit within a few hundred ms of the reference.
    webrtc = clean['webrtcvad']
    assert abs(webrtc['onset_ms']['median']) < 300 and abs(webrtc['offset_ms']['median']) < 300
    assert 240 <= webrtc['end_decided_ms']['median'] <= 320
    assert clean['silero']['end_decided_ms'] is None
