"""The swap rules' numbers from the probe's rows (docs/model_notes.md, "ensembles").

    .venv/bin/python docs/runs/2026-12-01_ensemble_probe/swap_summary.py [CANDIDATE]

CANDIDATE (default iemocap_vad_cut) names the runs put in member 2's place; its rows are
swap_CANDIDATE_*.json, plus the finished rows of a log whose process ended early (for
iemocap_vad_cut: process b ended with the session before fold 4's last two rows, and fold 4
was rerun alone as c). Rows found twice must be equal (same seeds), which this checks.
"""

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).parent
# Condition -> (the probe's conditions, the least mean validation UA the rule asks), per candidate.
RULES = {
    'iemocap_vad_cut': {'clean': (('clean',), 62.0),
                        'noisy': (('white_10dB', 'babble_10dB'), 48.6),
                        'vad_cut': (('vad_cut',), 62.8)},
    'iemocap_noise_vad_cut': {'clean': (('clean',), 62.0),
                              'noisy': (('white_10dB', 'babble_10dB'), 51.6),
                              'vad_cut': (('vad_cut',), 59.8)},
}
ROWS = 30   # six runs: four validation conditions and the test cuts each


def key(row: dict) -> tuple[str, str, str]:
    """Return what a row measures: run, part, condition."""
    return row['run'], row['part'], row['condition']


def read_rows(candidate: str) -> list[dict]:
    """Every row of the candidate's probe files, once."""
    found: dict[tuple[str, str, str], dict] = {}
    sources = [json.loads(path.read_text())['results']
               for path in sorted(HERE.glob(f'swap_{candidate}_*.json')) if path.stat().st_size]
    sources += [[json.loads(line) for line in path.read_text().splitlines()
                 if line.startswith('{')] for path in sorted(HERE.glob(f'swap_{candidate}_*.log'))]
    for rows in sources:
        for row in rows:
            if key(row) in found:
                assert row == found[key(row)], f'rows differ: {key(row)}'
            found[key(row)] = row
    assert len(found) == ROWS, f'{len(found)} rows of {ROWS}'
    return list(found.values())


def mean_ua(rows: list[dict], part: str, conditions: tuple[str, ...], who: str) -> float:
    """Return one model's mean UA over the rows of a part and conditions."""
    return statistics.mean(row[who]['ua'] for row in rows
                           if row['part'] == part and row['condition'] in conditions)


def main() -> None:
    """Print the rule's verdict per condition and the test numbers read after it."""
    candidate = sys.argv[1] if len(sys.argv) > 1 else 'iemocap_vad_cut'
    rows = read_rows(candidate)
    for name, (conditions, needed) in RULES[candidate].items():
        value = mean_ua(rows, 'validation', conditions, 'ensemble')
        print(f'validation {name}: ensemble with member 2 swapped {value:.1f} (rule >= '
              f'{needed}: {"met" if value >= needed else "missed"}), default model '
              f'{mean_ua(rows, "validation", conditions, "shipped"):.1f}, member 2 alone '
              f'{mean_ua(rows, "validation", conditions, "iemocap_features"):.1f}')
    tests = [row for row in rows if row['part'] == 'test']
    paper_wa = next(row['ensemble']['wa'] for row in tests if row['run'] == 'ravdess_paper')
    speaker_ua = statistics.mean(row['ensemble']['ua'] for row in tests
                                 if row['run'] != 'ravdess_paper')
    print(f'test, cuts: paper split WA {paper_wa}; speaker folds mean UA {speaker_ua:.1f}')


main()
