"""scripts/sweep.py: the recipe list device_sweep.sh trains, and the table it chooses from."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from ser_ros.training.vad_cuts import emotion_node_trailing_silence

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location('sweep', REPO / 'scripts' / 'sweep.py')
sweep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sweep)


def _write_run(run_dir: Path, val_ua: float, test_ua: float, stop_reason: str) -> None:
    run_dir.mkdir(parents=True)
    history = {'history': [{'val_ua': val_ua / 2, 'val_accuracy': 0.1},
                           {'val_ua': val_ua, 'val_accuracy': 0.5}],
               'best_epoch': 2, 'epochs_run': 2, 'stopped_early': stop_reason != 'max_epochs',
               'stop_reason': stop_reason}
    (run_dir / 'history.json').write_text(json.dumps(history))
    (run_dir / 'test_report.json').write_text(json.dumps({'wa': test_ua, 'ua': test_ua}))


def test_recipes_to_run_are_known_recipes_and_carry_their_overrides() -> None:
    chosen, every = sweep.to_run(), sweep.to_run(every=True)
    assert chosen and set(chosen) <= set(every)
    for name in every:
        assert all('=' in item and item.split('=')[0].startswith('training.')
                   for item in sweep.overrides(name))


def test_summary_chooses_on_validation_and_counts_runs_the_budget_cut(tmp_path: Path) -> None:
    # 'steady' has the better validation UA but the worse test UA: validation decides.
    for fold in range(2):
        _write_run(tmp_path / 'steady' / f'ravdess_speaker_fold{fold}', 0.6, 0.4, 'patience')
        _write_run(tmp_path / 'shaky' / f'ravdess_speaker_fold{fold}', 0.5, 0.7, 'time_budget')
    _write_run(tmp_path / 'steady' / 'ravdess_paper', 0.6, 0.4, 'max_epochs')
    rows = [sweep.summarise(tmp_path / name) for name in ('shaky', 'steady')]
    assert [row['runs_cut_by_time_budget'] for row in rows] == [2, 0]
    assert rows[1]['selection_mean_val_ua'] == pytest.approx(0.6)
    assert rows[0]['paper_test_wa'] is None
    lines = sweep.table(rows).splitlines()
    assert lines[2].startswith('| steady | 3 (0) | 60.0 |')
    assert lines[3].startswith('| shaky | 2 (2) | 50.0 |')


def test_summary_of_a_folder_without_finished_runs_says_what_it_wants(tmp_path: Path) -> None:
    _write_run(tmp_path / 'recipe' / 'ravdess_paper', 0.6, 0.4, 'patience')
    with pytest.raises(ValueError, match='a run folder itself'):
        sweep.summarise(tmp_path / 'recipe' / 'ravdess_paper')
    with pytest.raises(ValueError, match='no such recipe folder'):
        sweep.summarise(tmp_path / 'missing')


def test_summary_reports_the_noisy_validation_ua_only_when_every_run_has_it(tmp_path: Path
                                                                          ) -> None:
    for fold in range(2):
        run = tmp_path / 'recipe' / f'ravdess_speaker_fold{fold}'
        _write_run(run, 0.6, 0.4, 'patience')
        rows = [{'noise': None, 'snr_db': None, 'wa': 60.0, 'ua': 60.0},
                {'noise': 'white', 'snr_db': 10.0, 'wa': 30.0, 'ua': 20.0 + 10 * fold},
                {'noise': 'babble', 'snr_db': 10.0, 'wa': 40.0, 'ua': 40.0 + 10 * fold},
                {'noise': 'babble', 'snr_db': 0.0, 'wa': 10.0, 'ua': 10.0}]   # not the rule's
        (run / sweep.NOISE_FILE).write_text(json.dumps({'results': rows}))
    row = sweep.summarise(tmp_path / 'recipe')
    assert row['mean_noisy_val_ua'] == pytest.approx(0.35)
    assert sweep.table([row]).splitlines()[2].endswith('| 35.0 | - | incomplete: 2 of 6 runs |')
    _write_run(tmp_path / 'recipe' / 'ravdess_paper', 0.6, 0.4, 'patience')
    assert sweep.summarise(tmp_path / 'recipe')['mean_noisy_val_ua'] is None


def _row(runs: int, val_ua: float, noisy: float | None,
         vad_cut: float | None = None) -> dict[str, object]:
    return {'runs': runs, 'selection_mean_val_ua': val_ua, 'mean_noisy_val_ua': noisy,
            'mean_vad_cut_val_ua': vad_cut}


def test_ship_verdict_applies_every_part_of_the_rule() -> None:
    rule = {'runs': 6, 'min_mean_val_ua': 0.547, 'min_mean_noisy_val_ua': 0.3245}
    assert sweep.ship_verdict(_row(6, 0.547, 0.3245), rule) == 'yes'
    assert sweep.ship_verdict(_row(5, 0.9, 0.9), rule) == 'incomplete: 5 of 6 runs'
    assert sweep.ship_verdict(_row(6, 0.9, None), rule) == 'incomplete: noisy val UA missing'
    assert sweep.ship_verdict(_row(6, 0.546, 0.9), rule) == 'no: mean val UA 54.60% < 54.70%'
    verdict = sweep.ship_verdict(_row(6, 0.5, 0.3), rule)
    assert verdict == 'no: mean val UA 50.00% < 54.70%; noisy val UA 30.00% < 32.45%'
    # A rule with the VAD-cut criterion asks for its check too.
    rule['min_mean_vad_cut_val_ua'] = 0.382
    assert sweep.ship_verdict(_row(6, 0.9, 0.9), rule) == 'incomplete: VAD-cut val UA missing'
    assert sweep.ship_verdict(_row(6, 0.9, 0.9, 0.382), rule) == 'yes'
    assert sweep.ship_verdict(_row(6, 0.9, 0.9, 0.3), rule) == 'no: VAD-cut val UA 30.00% < 38.20%'
    cut = {**_row(6, 0.9, 0.9, 0.9), 'runs_cut_by_time_budget': 2}
    assert sweep.ship_verdict(cut, rule) == ('incomplete: 2 runs cut by the time budget '
                                             '(resume them)')


def test_the_sweep_file_states_a_complete_ship_rule() -> None:
    rule = sweep.ship_rule()
    assert rule['runs'] == 6
    assert 0 < rule['min_mean_val_ua'] < 1 and 0 < rule['min_mean_noisy_val_ua'] < 1


def test_summary_reports_the_clean_ua_on_what_the_vad_cuts(tmp_path: Path) -> None:
    for fold in range(2):
        run = tmp_path / 'recipe' / f'ravdess_speaker_fold{fold}'
        _write_run(run, 0.6, 0.4, 'patience')
        silence = emotion_node_trailing_silence()
        rows = [{'noise': None, 'snr_db': None, 'trailing_silence_s': silence + 1.0, 'wa': 90.0,
                 'ua': 90.0, 'missed': 0},
                {'noise': None, 'snr_db': None, 'trailing_silence_s': silence, 'wa': 50.0,
                 'ua': 40.0 + 10 * fold, 'missed': 0},
                {'noise': 'white', 'snr_db': 10.0, 'trailing_silence_s': silence, 'wa': 20.0,
                 'ua': 20.0, 'missed': 3}]
        (run / sweep.VAD_CUT_FILE).write_text(json.dumps({'results': rows}))
    row = sweep.summarise(tmp_path / 'recipe')
    # The rows scored with emotion_node's silence, not those with another.
    assert row['mean_vad_cut_val_ua'] == pytest.approx(0.45)
    assert row['mean_noisy_val_ua'] is None
    assert sweep.table([row]).splitlines()[2].endswith('| - | 45.0 | incomplete: 2 of 6 runs |')
