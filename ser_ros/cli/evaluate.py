"""``ser_evaluate``: WA / UA / per-class recall / confusion of a model on a corpus folder.

Example::

    ser_evaluate --data ../shared/data/ravdess-16k --json out.json      # the shipped model
    ser_evaluate --corpus folders --data my_recordings --json out.json   # my_recordings/angry/..

``--split runs/x/split.json`` restricts the evaluation to the test files of a training run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ser_ros.data.registry import CORPORA


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ser_evaluate."""
    parser = argparse.ArgumentParser(prog='ser_evaluate', description=__doc__.split('\n')[0])
    parser.add_argument('--model', help='checkpoint or ensemble file (default: the shipped model)')
    parser.add_argument('--data', required=True, help='corpus folder (official layout)')
    parser.add_argument('--corpus', default='ravdess', choices=CORPORA,
                        help='folder layout: ravdess, iemocap (official) or folders '
                        '(ROOT/<emotion>/[<speaker>/]*.wav, any corpus)')
    parser.add_argument('--json', dest='json_path', help='write the report here as JSON')
    parser.add_argument('--confusion', help='write the row-normalised confusion matrix PNG here')
    parser.add_argument('--split', help="a run's split.json: evaluate only its part --part")
    parser.add_argument('--part', default='test', choices=('test', 'validation'))
    parser.add_argument('--device', default='auto', help='auto | cpu | cuda[:N]')
    parser.add_argument('--bf16', action='store_true', help='bf16 autocast (CPU or CUDA)')
    parser.add_argument('--jobs', type=int, default=0, help='feature processes (0: all cores)')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ser_evaluate; exit code 2 on bad input."""
    args = build_parser().parse_args(argv)
    from ser_ros.core.checkpoint import CheckpointError, default_model_path
    from ser_ros.core.ensemble import load_model
    from ser_ros.core.inference import resolve_device
    from ser_ros.data.registry import load_corpus
    from ser_ros.data.splits import split_part_indices
    from ser_ros.training.evaluate import evaluate_checkpoint
    from ser_ros.training.plots import plot_confusion
    from ser_ros.training.report import write_json

    try:
        model_path = Path(args.model) if args.model else default_model_path()
        checkpoint = load_model(model_path)
        corpus = load_corpus(args.corpus, args.data, len(checkpoint.labels))
        indices = split_part_indices(corpus, args.split, args.part) if args.split else None
        evaluation = evaluate_checkpoint(checkpoint, corpus, indices,
                                         resolve_device(args.device), args.bf16, jobs=args.jobs)
    except (CheckpointError, ValueError, OSError) as error:
        print(f'ser_evaluate: {error}', file=sys.stderr)
        return 2
    report = evaluation.report
    data = dict(report.to_dict(), model=str(model_path), data=str(args.data),
                part=args.part if args.split else 'all')
    if args.json_path:
        write_json(data, args.json_path)
    if args.confusion:
        plot_confusion(report, args.confusion)
    print(json.dumps(data))
    print(report.summary(), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
