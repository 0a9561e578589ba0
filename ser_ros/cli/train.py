"""``ser_train``: train and evaluate one experiment described by a YAML file.

Example::

    ser_train --config config/train_ravdess.yaml --set training.max_epochs=5

Rerunning an interrupted command resumes from its run folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ser_ros.training.experiment import load_experiment


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ser_train."""
    parser = argparse.ArgumentParser(prog='ser_train', description=__doc__.split('\n')[0])
    parser.add_argument('--config', required=True, help='experiment YAML file (see config/)')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='SECTION.KEY=VALUE',
                        help='override one setting (value parsed as YAML); repeatable')
    parser.add_argument('--jobs', type=int, default=0,
                        help='processes for feature extraction (0: all cores)')
    parser.add_argument('--no-plots', action='store_true', help='skip the t-SNE plots')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress output (bars, one line per epoch); on a file or pipe '
                             'the bars are off anyway and the epoch lines remain')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ser_train; exit code 2 on a configuration or data error."""
    args = build_parser().parse_args(argv)
    # Epoch lines must reach a log file as they happen, not when a buffer fills.
    if hasattr(sys.stdout, 'reconfigure'):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        experiment = load_experiment(args.config, args.overrides)
    except ValueError as error:
        print(f'ser_train: {error}', file=sys.stderr)
        return 2
    # Imported here so that --help and configuration errors answer without loading torch.
    from ser_ros.training.run import record_command, run_experiment, summarise

    record_command(experiment, ['ser_train', *(sys.argv[1:] if argv is None else argv)])

    try:
        result = run_experiment(experiment, progress=not args.quiet, jobs=args.jobs,
                                plots=not args.no_plots)
    except ValueError as error:
        print(f'ser_train: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('ser_train: interrupted; rerun the same command to resume', file=sys.stderr)
        return 130
    print(json.dumps(summarise(result)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
