"""The rule's verdict (docs/model_notes.md, "a learning rate for the pooled head").

Mean validation UA over the six runs of the learning-rate candidate against the shipped
recipe's runs scored with the same int8 encoder, from scripts/train_six.sh's check reports.

    .venv/bin/python docs/runs/2026-12-01_whisper_lr/verdict.py [CANDIDATE_DIR] [SHIPPED_DIR]
"""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / '2026-12-01_whisper_ensemble'))
from pair_summary import RUNS, condition_ua  # noqa: E402

# Condition -> how far the candidate's mean UA may fall under the shipped recipe's, in points
# (negative: how far above it must be).
RULE = {'clean': -1.0, 'noisy': 0.5, 'vad_cut': 0.5}


def main() -> None:
    """Print per-run UA of both and the verdict of each condition."""
    candidate = Path(sys.argv[1] if len(sys.argv) > 1 else 'runs/whisper/lr3e-3')
    shipped = Path(sys.argv[2] if len(sys.argv) > 2 else 'runs/whisper_ens/whisper_alone')
    scores = {who: {run: condition_ua(folder / run, 'validation') for run in RUNS}
              for who, folder in (('shipped', shipped), ('candidate', candidate))}
    for run in RUNS:
        print(run, {who: scores[who][run] for who in scores})
    for condition, allowed_drop in RULE.items():
        means = {who: statistics.mean(scores[who][run][condition] for run in RUNS)
                 for who in scores}
        bound = means['shipped'] - allowed_drop
        verdict = 'met' if means['candidate'] >= bound else 'missed'
        print(f'validation {condition}: candidate {means["candidate"]:.1f}, shipped '
              f'{means["shipped"]:.1f}, rule candidate >= {bound:.1f}: {verdict}')


if __name__ == '__main__':
    main()
