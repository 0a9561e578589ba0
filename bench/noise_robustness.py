"""Accuracy under noise: WA/UA of a checkpoint on its split's files with white or babble noise.

A ward is not a recording booth: televisions, trolleys and other patients talk over the
speaker. This evaluates the model the emotion node runs (a checkpoint or an ensemble, loaded by
:func:`~ser_ros.core.inference.load_recognizer`, fp32) on the test part of a run's split, clean
and with noise at several signal-to-noise ratios: ``white`` (Gaussian) and ``babble`` (a sum of
shifted copies of other test utterances: talkers in the background, the harder case;
``--babble-of neutral`` draws those talkers from the part's neutral and calm files only, a
calmer background than acted anger and fear). The
SNR is measured against the speech part of each file (``ser_ros.core.mixing``, the same
mixing as ``ser_bag build --noise-snr``); each file gets its own noise seed, the same for
every condition.

    .venv/bin/python bench/noise_robustness.py [--model PATH] [--split FILE] [--snr 20 10 5 0]
                                               [--noise white babble] [--part validation]
                                               [--babble-of EMOTION ...]
                                               [--vad-cut] [--trailing-silence S]
                                               [--quick]

With ``--vad-cut`` the model hears what it hears on the robot: each file gets a second of
silence on either side (noise included), streams in 20 ms chunks through vad_node's
segmenter with config/ser.yaml's settings, and the longest utterance the VAD cuts is
classified (``ser_ros.training.vad_cuts``, as training cuts its examples), followed by the
silence emotion_node appends (its ``trailing_silence_s`` in config/ser.yaml; ``--trailing-silence``
sets another, for whole files too); files where the VAD finds no speech are counted
(``missed``) and left out of WA/UA.

The shipped model's split is the paper protocol's, whose test files share speakers with its
training files: read the drop from the clean row, not the absolute numbers, as what noise
costs. Each condition also reports what the model answered and ``leave_evidence``, the mean
probability of dialogue_policy_node's leave emotions (config/ser.yaml): a model that fails by
answering one of those drives the robot away. Prints one JSON object (stdout) and a table
(stderr).
"""

from __future__ import annotations

import argparse
import bisect
import functools
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, machine, table  # noqa: E402

from ser_ros.core.audio import load_audio  # noqa: E402
from ser_ros.core.checkpoint import default_model_path  # noqa: E402
from ser_ros.core.inference import Recognizer, load_recognizer  # noqa: E402
from ser_ros.core.mixing import (  # noqa: E402
    BABBLE_VOICES,
    NOISE_KINDS,
    add_noise,
    speech_bounds,
)
from ser_ros.data.registry import load_corpus  # noqa: E402
from ser_ros.data.splits import split_part_indices  # noqa: E402
from ser_ros.ros.node_set import node_parameters  # noqa: E402
from ser_ros.training.metrics import evaluate_predictions  # noqa: E402
from ser_ros.training.vad_cuts import (  # noqa: E402
    VadCutter,
    emotion_node_trailing_silence,
    in_silence,
    vad_node_config,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / 'shared' / 'data' / 'ravdess-16k'
DEFAULT_SNRS = (20.0, 10.0, 5.0, 0.0)
# Where the speech of a file starts and ends: frames within this many dB of its loudest.
SPEECH_TRIM_DB = 35.0
QUICK_FILES = 14
RATE = 16000
PERCENT = 100.0


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', type=Path, default=None,
                        help='checkpoint (default: the shipped model)')
    parser.add_argument('--split', type=Path, default=None,
                        help="a run's split.json (default: the shipped model's, beside it)")
    parser.add_argument('--part', choices=('test', 'validation'), default='test',
                        help='which files of the split (validation: for choosing recipes)')
    parser.add_argument('--data', type=Path, default=Path(os.environ.get(
        'SER_DATA_ROOT', DEFAULT_DATA.parent)) / 'ravdess-16k', help='RAVDESS folder')
    parser.add_argument('--snr', type=float, nargs='+', default=list(DEFAULT_SNRS),
                        metavar='DB', help='signal-to-noise ratios, dB')
    parser.add_argument('--noise', nargs='*', choices=NOISE_KINDS, default=list(NOISE_KINDS),
                        help='noise kinds (none: the clean rows only)')
    parser.add_argument('--babble-of', nargs='+', default=None, metavar='EMOTION',
                        help="babble talkers from the part's files of these emotions only "
                             '(default: every file of the part)')
    parser.add_argument('--vad-cut', action='store_true',
                        help="classify the longest utterance vad_node's segmenter cuts from each "
                             'file, as on the robot (default: whole files, as in training)')
    parser.add_argument('--trailing-silence', type=float, nargs='+', default=None, metavar='S',
                        help="seconds of silence appended to what is classified, one set of "
                             "rows per value (default: emotion_node's trailing_silence_s with "
                             "--vad-cut, else 0)")
    parser.add_argument('--quick', action='store_true',
                        help=f'{QUICK_FILES} files, the first SNR only (CI: checks it runs)')
    return parser.parse_args()


def leave_emotions() -> list[str]:
    """dialogue_policy_node's leave_emotions in config/ser.yaml (what makes the robot go)."""
    return list(node_parameters('dialogue_policy_node')['leave_emotions'])


def evaluate(recognizer: Recognizer, waveforms: list[np.ndarray], targets: np.ndarray,
             leave: list[str], vad: VadCutter | None = None) -> dict[str, Any]:
    """Score the recogniser on ``waveforms``: WA and UA (percent), its answers, leave evidence.

    Leave evidence is the mean probability of the ``leave`` emotions: what the dialogue policy
    reads as a reason for the robot to withdraw. With ``vad``, each waveform is first cut to its
    longest utterance; those without one are counted as ``missed`` and left out.
    """
    missed = 0
    if vad is not None:
        heard = [vad.longest(waveform, RATE) for waveform in waveforms]
        kept = [number for number, samples in enumerate(heard) if samples is not None]
        missed = len(heard) - len(kept)
        waveforms, targets = [heard[number] for number in kept], targets[kept]
        if not kept:
            return {'wa': None, 'ua': None, 'answers': {}, 'leave_evidence': None,
                    'missed': missed}
    predictions = [recognizer.predict(waveform, RATE) for waveform in waveforms]
    predicted = [recognizer.labels.index(item.label) for item in predictions]
    report = evaluate_predictions(targets, predicted, recognizer.labels)
    answers = Counter(item.label for item in predictions)
    evidence = [sum(item.probabilities.get(label, 0.0) for label in leave)
                for item in predictions]
    return {'wa': round(PERCENT * report.wa, 1), 'ua': round(PERCENT * report.ua, 1),
            'answers': dict(answers.most_common()),
            'leave_evidence': round(float(np.mean(evidence)), 3), 'missed': missed}


def babble_talkers(files: Sequence[int], pool: Sequence[int],
                   audio: Callable[[int], np.ndarray]) -> list[np.ndarray]:
    """For each of ``files``, the next BABBLE_VOICES of ``pool`` end to end: who talks over it.

    Both are positions in the part's file list; "next" is cyclic in that order, from where the
    file is or would be in ``pool``, and a file never talks over itself. ``audio`` gives a
    position's waveform.
    """
    pool = sorted(pool)
    if len(pool) < 2:
        raise ValueError(f'babble needs at least 2 files to draw talkers from, got {len(pool)}')
    talkers = []
    for file in files:
        others = [position for position in pool if position != file]
        start = bisect.bisect_right(others, file)
        voices = [others[(start + step) % len(others)] for step in range(BABBLE_VOICES)]
        talkers.append(np.concatenate([audio(voice) for voice in voices]))
    return talkers


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate clean and every (noise, SNR) condition; return the JSON-able result."""
    model = args.model or default_model_path()
    split = args.split or model.with_name(f'{model.stem}_split.json')
    silences = args.trailing_silence
    if silences is None:
        silences = [emotion_node_trailing_silence() if args.vad_cut else 0.0]
    recognizers = [load_recognizer(model, device='cpu', trailing_silence_s=silence)
                   for silence in silences]
    labels = recognizers[0].labels
    unknown = sorted(set(args.babble_of or ()) - set(labels))
    if unknown:
        raise SystemExit(f'noise_robustness: --babble-of {" ".join(unknown)}: not among the '
                         f'model\'s labels {", ".join(labels)}')
    corpus = load_corpus('ravdess', args.data, len(labels))
    part = split_part_indices(corpus, split, args.part)
    positions = list(range(len(part)))
    if args.quick:
        positions = positions[::max(1, len(part) // QUICK_FILES)][:QUICK_FILES]
        args.snr = args.snr[:1]
    indices = [part[position] for position in positions]
    vad = VadCutter(vad_node_config()) if args.vad_cut else None

    @functools.cache
    def audio(position: int) -> np.ndarray:
        """Return a file of the part as the model hears it (in a second of silence for the VAD)."""
        waveform = load_audio(corpus[part[position]].path, RATE)
        return in_silence(waveform, RATE) if vad is not None else waveform

    waveforms = [audio(position) for position in positions]
    targets = np.array([labels.index(corpus[i].label) for i in indices])
    started = time.perf_counter()
    leave = leave_emotions()
    # One set of rows per silence, each in condition order; one condition's audio at a time.
    rows_per_silence: list[list[dict[str, Any]]] = [[] for _ in recognizers]

    def score(kind: str | None, snr_db: float | None, heard: list[np.ndarray]) -> None:
        for rows, recognizer in zip(rows_per_silence, recognizers, strict=True):
            rows.append({'noise': kind, 'snr_db': snr_db,
                         'trailing_silence_s': recognizer.trailing_silence_s,
                         **evaluate(recognizer, heard, targets, leave, vad)})

    score(None, None, waveforms)
    # Where each file's speech is (the SNR is measured on it) and, for babble, who talks over
    # it. Both are the same for every condition.
    spans = [speech_bounds(waveform, RATE, SPEECH_TRIM_DB) for waveform in waveforms]
    talkers = None
    if 'babble' in args.noise:
        pool = [position for position, index in enumerate(part)
                if args.babble_of is None or corpus[index].label in args.babble_of]
        talkers = babble_talkers(positions, pool, audio)
    for kind in args.noise:
        for snr_db in args.snr:
            score(kind, snr_db, [add_noise(waveform, [span], snr_db, kind, number,
                                           talkers=talkers[number] if kind == 'babble' else None)
                                 for number, (waveform, span) in enumerate(zip(waveforms, spans,
                                                                               strict=True))])
    rows = [row for rows in rows_per_silence for row in rows]
    return {'benchmark': 'noise_robustness', 'quick': args.quick, 'model': str(model),
            'split': str(split), 'part': args.part, 'vad_cut': args.vad_cut,
            'trailing_silence_s': silences, 'files': len(indices), 'labels': list(labels),
            'babble_of': args.babble_of,
            'leave_emotions': leave,
            'seconds': round(time.perf_counter() - started, 1), 'machine': machine(),
            'results': rows}


def summary(result: dict[str, Any]) -> str:
    """Short human-readable table: one row per condition."""
    rows = []
    for row in result['results']:
        condition = (row['noise'] or 'clean', row['snr_db'], row.get('trailing_silence_s', 0.0))
        if row['wa'] is None:
            rows.append((*condition, '-', '-', '-', '-', row['missed']))
            continue
        label, count = next(iter(row['answers'].items()))
        rows.append((*condition, f"{row['wa']:.1f}", f"{row['ua']:.1f}",
                     f"{row['leave_evidence']:.2f}", f"{label} ({count} of {result['files']})",
                     row['missed']))
    header = ('noise', 'SNR dB', 'silence after s', 'WA %', 'UA %', 'leave', 'most answered',
              'VAD missed')
    heard = 'longest VAD cut of each of' if result['vad_cut'] else 'whole'
    babble = (f"; babble of {' and '.join(result['babble_of'])} files"
              if result.get('babble_of') else '')
    return (f"{table(rows, header)}\n{heard} {result['files']} {result['part']} files of "
            f"{result['split']}{babble}, {result['seconds']} s")


def main() -> int:
    """Run the evaluation and print the table (stderr) and JSON (stdout)."""
    result = run(parse_args())
    emit(result, summary(result))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
