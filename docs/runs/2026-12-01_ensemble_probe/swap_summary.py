"""The swap rule's numbers from the probe's rows (docs/model_notes.md, "ensembles").

Rows: swap_iemocap_vad_cut_a.json (paper split, folds 0-1), the finished rows of
swap_iemocap_vad_cut_b.log (folds 2-3; its process ended with the session before fold 4's
last two rows) and swap_iemocap_vad_cut_c.json (fold 4, rerun). Rows in both b and c must be
equal (same seeds), which this checks.

    .venv/bin/python docs/runs/2026-12-01_ensemble_probe/swap_summary.py
"""

import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent
RULE = {'clean': (('clean',), 62.0), 'noisy': (('white_10dB', 'babble_10dB'), 48.6),
        'vad_cut': (('vad_cut',), 62.8)}


def key(row: dict) -> tuple[str, str, str]:
    """Return what a row measures: run, part, condition."""
    return row['run'], row['part'], row['condition']


rows = json.loads((HERE / 'swap_iemocap_vad_cut_a.json').read_text())['results']
rerun = {key(row): row for row in
         json.loads((HERE / 'swap_iemocap_vad_cut_c.json').read_text())['results']}
for line in (HERE / 'swap_iemocap_vad_cut_b.log').read_text().splitlines():
    if line.startswith('{'):
        row = json.loads(line)
        if key(row) in rerun:
            assert row == rerun[key(row)], f'rerun differs: {key(row)}'
        else:
            rows.append(row)
rows += rerun.values()
assert len({key(row) for row in rows}) == len(rows) == 30, len(rows)


def mean_ua(part: str, conditions: tuple[str, ...], who: str) -> float:
    """Return one model's mean UA over the rows of a part and conditions."""
    return statistics.mean(row[who]['ua'] for row in rows
                           if row['part'] == part and row['condition'] in conditions)


for name, (conditions, needed) in RULE.items():
    value = mean_ua('validation', conditions, 'ensemble')
    print(f'validation {name}: ensemble with member 2 swapped {value:.1f} (rule >= {needed}: '
          f'{"met" if value >= needed else "missed"}), default model '
          f'{mean_ua("validation", conditions, "shipped"):.1f}, member 2 alone '
          f'{mean_ua("validation", conditions, "iemocap_features"):.1f}')
tests = [row for row in rows if row['part'] == 'test']
paper_wa = next(r['ensemble']['wa'] for r in tests if r['run'] == 'ravdess_paper')
speaker_ua = statistics.mean(r['ensemble']['ua'] for r in tests if r['run'] != 'ravdess_paper')
print(f'test, cuts: paper split WA {paper_wa}; speaker folds mean UA {speaker_ua:.1f}')
