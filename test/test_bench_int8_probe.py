"""bench/int8_probe.py still runs on the paper's shipped network and real speech: --quick, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 240


def test_int8_probe_quick_reports_every_variant(ravdess_dir: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / 'bench' / 'int8_probe.py'), '--quick',
         '--data', str(ravdess_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    [line] = [line for line in completed.stdout.splitlines() if line.strip()]
    result = json.loads(line)
    assert result['benchmark'] == 'int8_probe' and result['quick'] is True
    assert result['calibration_files'] == result['test_files'] == 16
    variants = result['results']
    assert list(variants) == ['fp32', 'bf16', 'int8 block 2', 'int8 blocks 2-4',
                              'int8 blocks 1-4']
    assert variants['fp32']['top_label_agreement_with_fp32'] == 100.0
    assert variants['fp32']['max_probability_change'] == 0.0
    for name, variant in variants.items():
        assert 0.0 <= variant['wa'] <= 100.0, name
        assert 0.0 <= variant['top_label_agreement_with_fp32'] <= 100.0, name
        # Quantised, the network still computes the same function: not every label moves.
        assert variant['top_label_agreement_with_fp32'] >= 50.0, (name, variant)
        times = variant['network_ms']
        assert 0.0 < times['p50'] <= times['p95'], (name, times)
