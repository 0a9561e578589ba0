"""Recipe sweep helper for scripts/device_sweep.sh (and for reading its results here).

    python3 scripts/sweep.py names [--all]              recipes to run (--all: every recipe)
    python3 scripts/sweep.py args RECIPE                its --set overrides, one per line
    python3 scripts/sweep.py summary DIR [DIR ...]      Markdown table + JSON line per recipe

A recipe folder holds the runs ``ravdess_paper`` and ``ravdess_speaker_fold0..4``. Validation
numbers are those of each run's restored (best) epoch; the selection score is their mean UA.
Runs that the time budget ended (``stop_reason`` in history.json) are counted in the table: a
recipe with cut runs was not trained as configured, and its row is no fair comparison. The
next column is the mean UA under noise on each run's validation files (NOISE_FILE), when every
run has it, then the clean UA on what vad_node cuts from them followed by emotion_node's
trailing silence (VAD_CUT_FILE, what the robot hears; a report measured with another silence
does not count); the last says whether the recipe meets the sweep file's ``ship_rule``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import yaml

from ser_ros.training.report import markdown_table
from ser_ros.training.vad_cuts import emotion_node_trailing_silence

SWEEP_FILE = Path(__file__).resolve().parents[1] / 'config' / 'recipe_sweep.yaml'
PAPER_RUN = 'ravdess_paper'
SPEAKER_RUN_PREFIX = 'ravdess_speaker_fold'
PERCENT = 100.0
# Written into each run folder by scripts/train_six.sh: bench/noise_robustness.py on the
# validation files (white and babble noise at 10 dB SNR); a file with more SNRs counts only
# the rule's.
NOISE_FILE = 'noise_validation.json'
NOISE_SNR_DB = 10.0
# Also by scripts/train_six.sh: the same with --vad-cut (the longest utterance vad_node's
# segmenter cuts from each file is classified).
VAD_CUT_FILE = 'vad_cut_validation.json'
# What a ship rule may ask for: (rule key, summary row key, name in the verdict).
RULE_CRITERIA = (('min_mean_val_ua', 'selection_mean_val_ua', 'mean val UA'),
                 ('min_mean_noisy_val_ua', 'mean_noisy_val_ua', 'noisy val UA'),
                 ('min_mean_vad_cut_val_ua', 'mean_vad_cut_val_ua', 'VAD-cut val UA'))


def _sweep_file() -> dict[str, Any]:
    return yaml.safe_load(SWEEP_FILE.read_text())


def recipes() -> dict[str, dict[str, object]]:
    """Return recipe name -> {override key: value} from the sweep file."""
    return _sweep_file()['recipes']


def to_run(every: bool = False) -> list[str]:
    """Return the recipes device_sweep.sh trains: the file's ``run`` list, or all of them."""
    data = _sweep_file()
    known = data['recipes']
    chosen = list(known) if every else list(data.get('run') or known)
    unknown = set(chosen) - set(known)
    if unknown:
        raise SystemExit(f'{SWEEP_FILE}: run names unknown recipes {sorted(unknown)}')
    return chosen


def ship_rule() -> dict[str, float]:
    """Return the sweep file's rule for replacing the shipped model."""
    return _sweep_file()['ship_rule']


def ship_verdict(row: dict[str, object], rule: dict[str, float]) -> str:
    """'yes', 'no: <why>' or 'incomplete: <what is missing>' for one summary row."""
    if int(row['runs']) < rule['runs']:
        return f"incomplete: {row['runs']} of {rule['runs']} runs"
    if row.get('runs_cut_by_time_budget'):
        return (f"incomplete: {row['runs_cut_by_time_budget']} runs cut by the time budget "
                f'(resume them)')
    criteria = [(name, row[key], rule[minimum]) for minimum, key, name in RULE_CRITERIA
                if minimum in rule]
    missing = [name for name, value, _ in criteria if value is None]
    if missing:
        return f"incomplete: {', '.join(missing)} missing"
    failures = [f'{name} {PERCENT * float(value):.2f}% < {PERCENT * minimum:.2f}%'
                for name, value, minimum in criteria if float(value) < minimum]
    return 'no: ' + '; '.join(failures) if failures else 'yes'


def overrides(name: str) -> list[str]:
    """Return the ``section.key=value`` strings of one recipe (values as YAML)."""
    return [f'{key}={json.dumps(value)}' for key, value in recipes()[name].items()]


def read_run(run_dir: Path) -> dict[str, float]:
    """Read one finished run: validation UA/WA at its restored epoch, test WA/UA."""
    history = json.loads((run_dir / 'history.json').read_text())
    best = history['history'][history['best_epoch'] - 1]
    test = json.loads((run_dir / 'test_report.json').read_text())
    return {'val_ua': best['val_ua'], 'val_wa': best['val_accuracy'], 'test_wa': test['wa'],
            'test_ua': test['ua'], 'best_epoch': history['best_epoch'],
            'epochs_run': history['epochs_run'],
            'cut_by_time_budget': history.get('stop_reason') == 'time_budget',
            'noisy_val_ua': noisy_validation_ua(run_dir),
            'vad_cut_val_ua': vad_cut_validation_ua(run_dir)}


def _check_rows(run_dir: Path, name: str) -> list[dict[str, Any]]:
    """Return the result rows of a bench/noise_robustness.py report in the run ([] if none)."""
    path = run_dir / name
    return json.loads(path.read_text())['results'] if path.exists() else []


def noisy_validation_ua(run_dir: Path) -> float | None:
    """Mean UA (0-1) at NOISE_SNR_DB in bench/noise_robustness.py's NOISE_FILE, else None."""
    rows = [row for row in _check_rows(run_dir, NOISE_FILE)
            if row['noise'] and row['snr_db'] == NOISE_SNR_DB]
    if not rows:
        return None
    return statistics.mean(row['ua'] for row in rows) / PERCENT


def vad_cut_validation_ua(run_dir: Path) -> float | None:
    """Clean UA (0-1) on the VAD's cuts of the validation files (VAD_CUT_FILE), else None.

    Only a row scored with the silence emotion_node appends counts (reports older than that
    parameter were scored without silence).
    """
    silence = emotion_node_trailing_silence()
    clean = [row for row in _check_rows(run_dir, VAD_CUT_FILE)
             if not row['noise'] and row.get('trailing_silence_s', 0.0) == silence]
    return clean[0]['ua'] / PERCENT if clean and clean[0]['ua'] is not None else None


def summarise(folder: Path, rule: dict[str, float] | None = None) -> dict[str, object]:
    """Score one recipe folder: mean validation UA (the selection value), test, ship verdict.

    ``rule`` defaults to the sweep file's ship rule.
    """
    if not folder.is_dir():
        raise ValueError(f'{folder}: no such recipe folder')
    runs = {path.name: read_run(path) for path in sorted(folder.iterdir())
            if (path / 'test_report.json').exists()}
    if not runs:
        hint = (' (a run folder itself: give the folder above it)'
                if (folder / 'test_report.json').exists() else '')
        raise ValueError(f'{folder}: no finished runs in it{hint}; a recipe folder holds '
                         f'{PAPER_RUN} and {SPEAKER_RUN_PREFIX}0..4, each with test_report.json')
    speaker = [run for name, run in runs.items() if name.startswith(SPEAKER_RUN_PREFIX)]
    paper = runs.get(PAPER_RUN)
    row: dict[str, object] = {
        'recipe': folder.name, 'runs': len(runs),
        'runs_cut_by_time_budget': sum(run['cut_by_time_budget'] for run in runs.values()),
        'selection_mean_val_ua': statistics.mean(run['val_ua'] for run in runs.values()),
        'paper_val_wa': paper['val_wa'] if paper else None,
        'paper_test_wa': paper['test_wa'] if paper else None,
        'paper_test_ua': paper['test_ua'] if paper else None,
        'paper_epochs': f"{paper['best_epoch']}/{paper['epochs_run']}" if paper else None,
        'speaker_val_ua': statistics.mean(run['val_ua'] for run in speaker) if speaker else None,
        'speaker_test_ua': statistics.mean(run['test_ua'] for run in speaker) if speaker else None,
        'speaker_test_wa': statistics.mean(run['test_wa'] for run in speaker) if speaker else None,
        'mean_noisy_val_ua': _mean_or_none([run['noisy_val_ua'] for run in runs.values()]),
        'mean_vad_cut_val_ua': _mean_or_none([run['vad_cut_val_ua'] for run in runs.values()]),
    }
    row['ships'] = ship_verdict(row, rule or ship_rule())
    return row


def _mean_or_none(values: list[float | None]) -> float | None:
    """Mean of the values when every run has one, else None (a partial mean would mislead)."""
    return None if not values or None in values else statistics.mean(values)


COLUMNS = ('recipe', 'runs (cut by time budget)', 'mean val UA (selection)', 'paper val WA',
           'paper test WA', 'paper test UA', 'paper best/run epochs', 'speaker val UA',
           'speaker test UA', 'noisy val UA (10 dB)', 'VAD-cut val UA', 'meets ship rule')


def _percent(value: object) -> float | None:
    return None if value is None else PERCENT * float(value)


def table(rows: list[dict[str, object]]) -> str:
    """Return a Markdown table, best selection score first."""
    ordered = sorted(rows, key=lambda item: -float(item['selection_mean_val_ua']))
    return markdown_table([
        (row['recipe'], f"{row['runs']} ({row['runs_cut_by_time_budget']})",
         *(_percent(row[key]) for key in ('selection_mean_val_ua', 'paper_val_wa',
                                          'paper_test_wa', 'paper_test_ua')),
         row['paper_epochs'], _percent(row['speaker_val_ua']), _percent(row['speaker_test_ua']),
         _percent(row['mean_noisy_val_ua']), _percent(row['mean_vad_cut_val_ua']),
         row['ships'])
        for row in ordered], COLUMNS)


def main() -> int:
    """Run the chosen subcommand."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('names').add_argument('--all', action='store_true')
    commands.add_parser('args').add_argument('recipe')
    commands.add_parser('summary').add_argument('folders', nargs='+', type=Path)
    args = parser.parse_args()
    if args.command == 'names':
        print(' '.join(to_run(args.all)))
    elif args.command == 'args':
        print('\n'.join(overrides(args.recipe)))
    else:
        try:
            rows = [summarise(folder) for folder in args.folders]
        except ValueError as error:
            parser.error(str(error))
        print(table(rows))
        for row in rows:
            print(json.dumps(row))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
