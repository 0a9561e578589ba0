"""``ser_ensemble``: put trained checkpoints into one ensemble file that averages them.

    ser_ensemble --out models/ensemble.pt runs/a/model.pt runs/b/model.pt [...]

Every member keeps its own front end; all must have the same labels in the same order. The
file is loaded like a checkpoint by ser_predict, ser_evaluate and emotion_node (``model_path``).
Exit status: 0 written, 2 a member cannot be loaded, the members do not fit together, or the
file cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ser_ros.core.checkpoint import Checkpoint, CheckpointError, build_provenance
from ser_ros.core.ensemble import MIN_MEMBERS, Ensemble

PROGRAM = 'ser_ensemble'
EXIT_OK = 0
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ser_ensemble."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description='Put trained checkpoints into one ensemble file whose '
                                  'prediction is the mean of their probabilities.')
    parser.add_argument('members', type=Path, nargs='+', metavar='CHECKPOINT',
                        help=f'trained checkpoints (at least {MIN_MEMBERS})')
    parser.add_argument('--out', type=Path, required=True, help='ensemble file to write')
    return parser


def common_or_each(values: Sequence[object]) -> object:
    """Return the value every member has, else each member's."""
    return values[0] if all(value == values[0] for value in values) else list(values)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ser_ensemble; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        members = tuple(Checkpoint.load(path) for path in args.members)
        provenance = build_provenance(
            dataset=common_or_each([member.provenance.get('dataset') for member in members]),
            split=common_or_each([member.provenance.get('split') for member in members]),
            seed=None, members=[str(path) for path in args.members])
        ensemble = Ensemble(members, provenance)
        ensemble.save(args.out)
    except (CheckpointError, OSError) as error:
        print(f'{PROGRAM}: error: {error}', file=sys.stderr)
        return EXIT_USAGE
    front_ends = ', '.join(member.feature_config.name for member in members)
    print(f'{args.out}: {len(members)} members ({front_ends}), labels {list(ensemble.labels)}')
    return EXIT_OK


if __name__ == '__main__':
    raise SystemExit(main())
