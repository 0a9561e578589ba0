"""``ser_export``: write a checkpoint's network as TorchScript for deployment without ser_ros.

The metadata records the seconds of silence the host must append to each utterance cut where
its speech ends (default: emotion_node's ``trailing_silence_s``). After writing, the export is
loaded back and its probabilities are compared with the PyTorch network's on random input; a
difference above the tolerance is an error (exit status 1). Exit status 2: the checkpoint
cannot be loaded, the node's parameters file cannot be read, or the output cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from ser_ros.cli.arguments import seconds
from ser_ros.core.checkpoint import Checkpoint, CheckpointError, default_model_path
from ser_ros.core.export import ExportError, export_torchscript, load_torchscript
from ser_ros.training.vad_cuts import emotion_node_trailing_silence

FORMATS = ('torchscript',)
EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_USAGE = 2
PROGRAM = 'ser_export'
CHECK_BATCH = 2
CHECK_SEED = 0
TOLERANCE = 1e-4


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ser_export."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description='Export a ser_ros checkpoint for deployment (TorchScript, loadable from '
                    'libtorch/C++ without ser_ros; labels and front-end settings travel in '
                    'the file as ser_ros.json).')
    parser.add_argument('--model', type=Path, default=None,
                        help=f'checkpoint to export (default: the shipped model, '
                             f'{default_model_path()})')
    parser.add_argument('--out', type=Path, required=True, help='file to write')
    parser.add_argument('--format', choices=FORMATS, default='torchscript',
                        help='export format')
    parser.add_argument('--trailing-silence', type=seconds, default=None, metavar='S',
                        help='seconds of silence the host appends to each utterance cut where '
                             'its speech ends, recorded in the metadata (default: '
                             "emotion_node's trailing_silence_s in config/ser.yaml)")
    return parser


def max_difference(checkpoint: Checkpoint, path: Path) -> float:
    """Largest probability difference between the export and the PyTorch network."""
    config = checkpoint.model_config
    generator = torch.Generator().manual_seed(CHECK_SEED)
    features = torch.randn(CHECK_BATCH, config.num_features, config.num_frames,
                           generator=generator)
    with torch.no_grad():
        expected = torch.softmax(checkpoint.build_model()(features), dim=1)
    exported = load_torchscript(path).probabilities(features)
    return float((exported - expected).abs().max())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ser_export; return the exit status."""
    args = build_parser().parse_args(argv)
    model = args.model if args.model is not None else default_model_path()
    try:
        checkpoint = Checkpoint.load(model)
    except CheckpointError as error:
        print(f'{PROGRAM}: error: cannot load model {model}: {error}', file=sys.stderr)
        return EXIT_USAGE
    try:
        silence = (emotion_node_trailing_silence() if args.trailing_silence is None
                   else args.trailing_silence)
    except (OSError, ValueError) as error:
        print(f'{PROGRAM}: error: cannot read emotion_node\'s trailing_silence_s (give '
              f'--trailing-silence): {error}', file=sys.stderr)
        return EXIT_USAGE
    try:
        path = export_torchscript(checkpoint, args.out, trailing_silence_s=silence)
        difference = max_difference(checkpoint, path)
    except (OSError, ExportError) as error:
        print(f'{PROGRAM}: error: cannot write {args.out}: {error}', file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    labels = ', '.join(checkpoint.labels)
    print(f'{PROGRAM}: wrote {path} ({args.format}, {len(checkpoint.labels)} labels: {labels}; '
          f'input {config_shape(checkpoint)}; trailing silence {silence:g} s; max probability '
          f'difference to PyTorch {difference:.2e})')
    if difference > TOLERANCE:
        print(f'{PROGRAM}: error: the export differs from the PyTorch network by '
              f'{difference:.2e} (tolerance {TOLERANCE:.0e})', file=sys.stderr)
        return EXIT_MISMATCH
    return EXIT_OK


def config_shape(checkpoint: Checkpoint) -> str:
    """Input shape of the network as text, e.g. ``(batch, 128, 626)``."""
    config = checkpoint.model_config
    return f'(batch, {config.num_features}, {config.num_frames})'


if __name__ == '__main__':
    raise SystemExit(main())
