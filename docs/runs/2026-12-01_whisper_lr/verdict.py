"""Verdicts of this session's two rules (docs/model_notes.md, twelfth session).

Mean validation UA over the six runs of a candidate against those of the recipe it would
replace, from scripts/train_six.sh's check reports (int8 encoder for both). Without
folders, rule `lr` compares runs/whisper/lr3e-3 with runs/whisper_ens/whisper_alone.

    .venv/bin/python docs/runs/2026-12-01_whisper_lr/verdict.py lr [CANDIDATE BASE]
    .venv/bin/python docs/runs/2026-12-01_whisper_lr/verdict.py noisy_cuts CANDIDATE BASE
    .venv/bin/python docs/runs/2026-12-01_whisper_lr/verdict.py blocks23 CANDIDATE BASE
    .venv/bin/python docs/runs/2026-12-01_whisper_lr/verdict.py babble_leave CANDIDATE BASE
(blocks23: thirteenth session's rule, encoder blocks 2 and 3; babble_leave: the rule proposed in
the fourteenth session for the next recipe, docs/model_notes.md "Next")

Every verdict also prints the mean leave evidence (the probability of dialogue_policy_node's
leave emotions) on vad_node's cuts of the validation files, clean and under babble at 10 dB;
`babble_leave` bounds its rise.

CANDIDATE and BASE may each list several recipe folders (other seeds) joined by commas: the
means are then over all their runs.
"""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / '2026-12-01_whisper_ensemble'))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'scripts'))
import sweep  # noqa: E402
from pair_summary import RUNS, condition_ua  # noqa: E402

# Rule -> condition -> how far the candidate's mean UA may fall under the base's, in points
# (negative: how far above it must be).
RULES = {'lr': {'clean': -1.0, 'noisy': 0.5, 'vad_cut': 0.5},
         'blocks23': {'clean': -1.0, 'noisy': 0.5, 'vad_cut': 0.5},
         'noisy_cuts': {'clean': 0.5, 'noisy': 0.5, 'vad_cut': 0.5, 'noisy_vad_cut': -3.0}}
DEFAULT_DIRS = {'lr': ('runs/whisper/lr3e-3', 'runs/whisper_ens/whisper_alone')}
# Rule -> how far the candidate's mean leave evidence on the cuts under babble may rise over its
# own clean one.
LEAVE_RISE = {'babble_leave': 0.05}
RULES['babble_leave'] = {'clean': 0.5, 'noisy': 0.5, 'vad_cut': 0.5}


def scores(run_dir: Path) -> dict[str, float]:
    """UA (percent) of one run in each condition, the VAD's cuts under noise included."""
    result = condition_ua(run_dir, 'validation')
    result['noisy_vad_cut'] = statistics.mean(
        row['ua'] for row in sweep._check_rows(run_dir, 'vad_cut_validation.json')
        if row['noise'])
    return result


def leave_on_cuts(run_dir: Path) -> dict[str, float]:
    """Leave evidence of one run on vad_node's cuts of its validation files: clean, babble."""
    rows = sweep._check_rows(run_dir, 'vad_cut_validation.json')
    clean = [row['leave_evidence'] for row in rows if not row['noise']]
    babble = [row['leave_evidence'] for row in rows
              if row['noise'] == 'babble' and row['snr_db'] == sweep.NOISE_SNR_DB]
    if not clean or not babble:
        raise SystemExit(f'{run_dir}: vad_cut_validation.json has no clean or babble row')
    return {'clean': clean[0], 'babble': babble[0]}


def main() -> None:
    """Print per-run UA of both and the verdict of each condition of the rule."""
    rule = sys.argv[1]
    candidate, base = (folders.split(',') for folders in (sys.argv[2:4] or DEFAULT_DIRS[rule]))
    table = {who: {f'{folder}/{run}': scores(Path(folder) / run)
                   for folder in folders for run in RUNS}
             for who, folders in (('base', base), ('candidate', candidate))}
    for who, rows in table.items():
        for run, row in rows.items():
            print(who, run, row)
    for condition, allowed_drop in RULES[rule].items():
        means = {who: statistics.mean(row[condition] for row in rows.values())
                 for who, rows in table.items()}
        bound = means['base'] - allowed_drop
        verdict = 'met' if means['candidate'] >= bound else 'missed'
        print(f'validation {condition} ({len(table["candidate"])} against '
              f'{len(table["base"])} runs): candidate {means["candidate"]:.1f}, base '
              f'{means["base"]:.1f}, rule candidate >= {bound:.1f}: {verdict}')
    folders = {'base': base, 'candidate': candidate}
    rises = {}
    for who, rows in folders.items():
        leave = [leave_on_cuts(Path(folder) / run) for folder in rows for run in RUNS]
        clean, babble = (statistics.mean(row[key] for row in leave) for key in ('clean', 'babble'))
        rises[who] = babble - clean
        print(f'leave evidence on the cuts, {who}: clean {clean:.3f}, babble '
              f'{sweep.NOISE_SNR_DB:g} dB {babble:.3f}, rise {babble - clean:+.3f}')
    if rule in LEAVE_RISE:
        verdict = 'met' if rises['candidate'] <= LEAVE_RISE[rule] else 'missed'
        print(f'validation leave rise under babble: candidate {rises["candidate"]:+.3f}, rule '
              f'<= {LEAVE_RISE[rule]:+.3f}: {verdict}')


if __name__ == '__main__':
    main()
