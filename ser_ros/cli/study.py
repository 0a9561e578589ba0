"""``ser_study``: rerun one of the paper's study tables and write it as Markdown.

Examples::

    ser_study table4                      # Table IV, full runs, -> docs/study/table4.md
    ser_study table3 --quick --rows conv1 # smoke run of one row (CI)
    ser_study table2 --set protocol.name=speaker
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

REPO_CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'study.yaml'


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ser_study."""
    parser = argparse.ArgumentParser(prog='ser_study', description=__doc__.split('\n')[0])
    parser.add_argument('table', help='table3 | table4 | table2 (see the study file)')
    parser.add_argument('--study', default=str(REPO_CONFIG), help='study YAML file')
    parser.add_argument('--quick', action='store_true',
                        help='tiny runs that only check the machinery (not results)')
    parser.add_argument('--rows', nargs='+', default=[], metavar='ID', help='only these rows')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='SECTION.KEY=VALUE', help='override for every row; repeatable')
    parser.add_argument('--out', default='docs/study', help='folder for <table>.md and .json')
    parser.add_argument('--runs', help="folder for the rows' run folders (default: the study "
                                       "file's output_root)")
    parser.add_argument('--jobs', type=int, default=0,
                        help='processes for feature extraction (0: all cores)')
    parser.add_argument('--quiet', action='store_true', help='no progress output')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ser_study; exit code 2 on a configuration or data error."""
    args = build_parser().parse_args(argv)
    from ser_ros.training.study import load_study, run_table, write_table

    command = 'ser_study ' + shlex.join(sys.argv[1:] if argv is None else list(argv))
    try:
        study = load_study(args.study)
        if args.runs:
            study = replace(study, output_root=Path(args.runs))
        records = run_table(study, args.table, args.quick, args.rows, args.overrides,
                            progress=not args.quiet, jobs=args.jobs)
        target = write_table(study.tables[args.table], records, command, args.out)
    except ValueError as error:
        print(f'ser_study: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('ser_study: interrupted; rerun the same command to resume', file=sys.stderr)
        return 130
    print(target.read_text())
    return 0


if __name__ == '__main__':
    sys.exit(main())
