"""The rule's verdict from check_pair.sh's reports: the pair against the Whisper model alone.

Mean UA over the six runs (docs/model_notes.md, "the Whisper model with the IEMOCAP-feature
network").

    .venv/bin/python docs/runs/2026-12-01_whisper_ensemble/pair_summary.py [OUT_DIR] [PART]
"""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'scripts'))
import sweep  # noqa: E402

RUNS = ['ravdess_paper'] + [f'ravdess_speaker_fold{fold}' for fold in range(5)]
# Condition -> (how far the pair's mean UA may fall under the Whisper model's, in points;
# negative: how far above it must be).
RULE = {'clean': -2.0, 'noisy': 1.0, 'vad_cut': 1.0}


def condition_ua(run_dir: Path, part: str) -> dict[str, float]:
    """UA (percent) of one run's reports: clean and noisy whole files, clean VAD cuts."""
    rows = sweep._check_rows(run_dir, f'noise_{part}.json')
    cuts = sweep._check_rows(run_dir, f'vad_cut_{part}.json')
    return {'clean': next(row['ua'] for row in rows if not row['noise']),
            'noisy': statistics.mean(row['ua'] for row in rows if row['noise']),
            'vad_cut': next(row['ua'] for row in cuts if not row['noise']),
            'clean_wa': next(row['wa'] for row in rows if not row['noise'])}


def main() -> None:
    """Print per-run and mean UA for both, and the verdict of each condition."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else 'runs/whisper_ens')
    part = sys.argv[2] if len(sys.argv) > 2 else 'validation'
    scores = {who: {run: condition_ua(out / who / run, part) for run in RUNS}
              for who in ('whisper_alone', 'pair')}
    for run in RUNS:
        print(run, {who: scores[who][run] for who in scores})
    for condition, allowed_drop in RULE.items():
        means = {who: statistics.mean(scores[who][run][condition] for run in RUNS)
                 for who in scores}
        verdict = means['pair'] >= means['whisper_alone'] - allowed_drop
        print(f'{part} {condition}: pair {means["pair"]:.1f}, Whisper alone '
              f'{means["whisper_alone"]:.1f}, rule pair >= '
              f'{means["whisper_alone"] - allowed_drop:.1f}: {"met" if verdict else "missed"}')
    if part == 'test':
        for who in scores:
            folds = [scores[who][run]['clean'] for run in RUNS[1:]]
            print(f'test {who}: paper split WA {scores[who]["ravdess_paper"]["clean_wa"]}, '
                  f'speaker folds UA {folds}, mean {statistics.mean(folds):.1f}')


if __name__ == '__main__':
    main()
