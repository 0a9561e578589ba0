"""``ser_dataset``: check what a corpus folder holds before training on it.

``ser_dataset summary --corpus ravdess --root DIR`` loads the folder the way training does and
prints counts per class, speaker, gender and fold, durations, sample rates and byte-identical
files; ``--json OUT`` also writes them as JSON (``-`` for standard output). Bad input (missing
folder, wrong layout, malformed names, unknown class count) ends with a one-line error and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from ser_ros.data.registry import CORPORA, load_corpus
from ser_ros.data.summary import summarize

PROGRAM = 'ser_dataset'
STDOUT = '-'
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    """Build the command line: one ``summary`` command (more data-set tools may follow)."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description='Inspect speech-emotion corpora in their official layouts.')
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    summary = commands.add_parser(
        'summary', help='counts per class, speaker, gender and fold; durations; formats',
        description='Load a corpus folder the way training does and summarize it.')
    summary.add_argument('--corpus', required=True, choices=CORPORA,
                         help='corpus layout of --root')
    summary.add_argument('--root', required=True, type=Path,
                         help='corpus folder (RAVDESS: holds Actor_XX; IEMOCAP: holds SessionN)')
    summary.add_argument('--classes', type=int, default=None,
                         help='number of classes (ravdess: 7 = calm merged into neutral, '
                              'or 8; iemocap: 4); default: the corpus default')
    summary.add_argument('--json', type=str, default=None, metavar='OUT',
                         help=f'also write the summary as JSON to OUT ("{STDOUT}": stdout)')
    summary.add_argument('--skip-malformed', action='store_true',
                         help='ravdess: skip malformed or misplaced file names with a warning '
                              'instead of stopping')
    summary.add_argument('--no-identical', action='store_true',
                         help='do not look for byte-identical files (skips hashing)')
    return parser


def _summary(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        corpus = load_corpus(args.corpus, args.root, args.classes,
                             strict=not args.skip_malformed)
    for warning in caught:
        print(f'{PROGRAM}: warning: {warning.message}', file=sys.stderr)
    summary = summarize(corpus, check_identical=not args.no_identical)
    if args.json == STDOUT:
        print(json.dumps(summary.to_dict(), indent=2))
        return EXIT_OK
    if args.json is not None:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary.to_dict(), indent=2) + '\n', encoding='utf-8')
    print(summary.format_text())
    if args.json is not None:
        print(f'\nwrote {args.json}')
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ser_dataset``; return the exit status (0; 2 on bad input; 130 on Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        return _summary(args)
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (ValueError, OSError) as error:
        print(f'{PROGRAM}: error: {error}', file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f'{PROGRAM}: interrupted', file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == '__main__':
    sys.exit(main())
