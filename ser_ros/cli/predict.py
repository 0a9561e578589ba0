"""``ser_predict``: classify audio files with a checkpoint or an ensemble, one JSON line per file.

Each line is ``{"file": ..., "label": ..., "probabilities": {label: p, ...}}`` with the labels in
the checkpoint's order, or ``{"file": ..., "error": ...}`` for a file that cannot be read; the
other files are still classified. Exit status: 0 all files classified, 1 some failed, 2 the
model could not be loaded (or bad arguments), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ser_ros.cli.arguments import seconds
from ser_ros.core.checkpoint import CheckpointError, default_model_path
from ser_ros.core.inference import DEVICE_CHOICES, Recognizer, load_recognizer

EXIT_OK = 0
EXIT_FILE_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
PROGRAM = 'ser_predict'


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ser_predict."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description='Classify the emotion of speech in audio files (WAV, FLAC, any rate or '
                    'channel count). Prints one JSON line per file.')
    parser.add_argument('files', nargs='+', metavar='FILE', help='audio files to classify')
    parser.add_argument('--model', type=Path, default=None,
                        help=f'checkpoint or ensemble file to use (default: the shipped model, '
                             f'{default_model_path()})')
    parser.add_argument('--device', choices=DEVICE_CHOICES, default='auto',
                        help='where the network runs: auto = CUDA when present, else CPU')
    parser.add_argument('--bf16', action='store_true',
                        help='bfloat16 autocast where the device supports it natively')
    parser.add_argument('--trailing-silence', type=seconds, default=0.0, metavar='S',
                        help='seconds of silence appended to each file before its features '
                             '(default 0: whole recordings end in silence already; clips cut '
                             'where the speech ends, as vad_node cuts, want emotion_node\'s '
                             '0.5)')
    return parser


def _emit(record: dict, out: TextIO) -> None:
    out.write(json.dumps(record, ensure_ascii=False) + '\n')
    out.flush()


def classify_files(recognizer: Recognizer, files: Sequence[str], out: TextIO) -> int:
    """Write one JSON line per file; return how many files could not be classified."""
    failed = 0
    for name in files:
        try:
            prediction = recognizer.predict_file(name)
        except (OSError, ValueError, RuntimeError) as error:
            failed += 1
            _emit({'file': name, 'error': str(error)}, out)
            continue
        _emit({'file': name, 'label': prediction.label,
               'probabilities': prediction.probabilities}, out)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    """Run ser_predict; return the exit status."""
    args = build_parser().parse_args(argv)
    model = args.model if args.model is not None else default_model_path()
    try:
        try:
            recognizer = load_recognizer(
                model, device=args.device, bf16=args.bf16,
                trailing_silence_s=args.trailing_silence)
        except (CheckpointError, ValueError, OSError) as error:
            hint = ('' if args.model is not None or Path(model).is_file()
                    else ' (no shipped model installed: train one with ser_train and pass '
                         '--model PATH)')
            print(f'{PROGRAM}: error: cannot load model {model}: {error}{hint}',
                  file=sys.stderr)
            return EXIT_USAGE
        failed = classify_files(recognizer, args.files, sys.stdout)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:   # e.g. piped into `head`: stop quietly
        sys.stderr.close()
        return EXIT_OK
    return EXIT_FILE_FAILED if failed else EXIT_OK


if __name__ == '__main__':
    raise SystemExit(main())
