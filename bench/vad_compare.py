"""Voice-activity detectors side by side: our webrtcvad Segmenter against Silero VAD.

A labelled stream is built from real RAVDESS sentences: each file is cut to its speech (from
the first to the last run of 100 ms of frames within 30 dB of the file's speech level; these
cuts are the reference utterances, decided by neither detector), and the sentences are laid
out with 1-3 s of digital silence between them. Noise is then added over the whole stream at
several SNRs (speech power measured over the reference utterances): white noise at 20, 10 and
5 dB, and babble at 30, 20 and 10 dB made of other RAVDESS sentences (six talkers summed, files
not used in the stream).

Detectors, each on the same streams:

- ``webrtcvad``: ``ser_ros.core.segmenter.Segmenter`` with the default ``SegmenterConfig``
  (what vad_node runs), fed 100 ms chunks; split pieces (``continues``) are joined again.
- ``silero``: ``silero_vad.get_speech_timestamps`` with the package defaults (threshold 0.5,
  100 ms minimum silence, 250 ms minimum speech, 30 ms padding); it sees the whole stream at
  once (offline), as most users call it.
- ``silero_stream``: ``silero_vad.VADIterator`` (threshold 0.5, 32 ms windows) as a streaming
  vad_node backend would use it, with our Segmenter's 300 ms hangover as minimum silence and
  its 300 ms minimum utterance.

Per condition and detector: missed reference utterances (no detection overlaps them), phantom
utterances (a detection that overlaps no reference), split utterances (extra detections on one
reference), merged utterances (references that share a detection with another), the share of
non-speech time flagged as speech (pre-roll and padding count here too), onset and
offset error (detection minus reference, ms; median and p95 of the absolute error), the share
of reference speech covered, for the streaming detectors the time from the reference end to the
decided end, and the detector's cost in ms of CPU wall time per second of audio.

    .venv/bin/python bench/vad_compare.py [--data DIR] [--utterances 60] [--quick]

Prints one JSON object on stdout and a table on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import silero_vad
import torch
from common import emit, machine, table

from ser_ros.core.audio import load_audio
from ser_ros.core.segmenter import Segmenter, SegmenterConfig
from ser_ros.data.registry import load_corpus

DEFAULT_DATA = Path('/work/shared/data/ravdess-16k')
RATE = 16000
TRIM_DB = 30.0
TRIM_FRAME = 400
TRIM_HOP = 160
TRIM_RUN_FRAMES = 10
GAP_S = (1.0, 3.0)
LEAD_S = 1.0
TAIL_S = 2.0
BABBLE_TALKERS = 6
# Babble is speech: at 10 dB any VAD hears it; a robot's room has it at a low level.
SNRS_DB = {'white': (20.0, 10.0, 5.0), 'babble': (30.0, 20.0, 10.0)}
QUICK_CONDITIONS = (('clean', None), ('white', 10.0), ('babble', 20.0))
SEGMENTER_CHUNK = 1600
SILERO_WINDOW = 512
SEED = 7
DETECTORS = ('webrtcvad', 'silero', 'silero_stream')


@dataclass(frozen=True)
class Detection:
    """One detected utterance (seconds) and, for streaming detectors, when its end was decided."""

    start: float
    end: float
    decided: float | None = None


def build_stream(waveforms: list[np.ndarray], rng: np.random.Generator
                 ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Lay out trimmed sentences with silences between; return audio and reference (s, e)."""
    pieces = [np.zeros(round(LEAD_S * RATE), dtype=np.float32)]
    position = len(pieces[0])
    reference = []
    for index, waveform in enumerate(waveforms):
        if index:
            gap = np.zeros(round(rng.uniform(*GAP_S) * RATE), dtype=np.float32)
            pieces.append(gap)
            position += len(gap)
        speech = trim(waveform)
        reference.append((position / RATE, (position + len(speech)) / RATE))
        pieces.append(speech)
        position += len(speech)
    pieces.append(np.zeros(round(TAIL_S * RATE), dtype=np.float32))
    return np.concatenate(pieces), reference


def trim(waveform: np.ndarray) -> np.ndarray:
    """Cut a file to its speech: first to last run of loud frames (see ``speech_bounds``)."""
    start, end = speech_bounds(waveform)
    return waveform[start:end]


def speech_bounds(waveform: np.ndarray) -> tuple[int, int]:
    """Sample bounds of the speech: first to last run of >= 100 ms of frames within TRIM_DB.

    Frames (25 ms, 10 ms hop) count as loud when within ``TRIM_DB`` dB of the file's speech
    level (95th percentile of frame levels: robust to a click, unlike the peak); runs shorter
    than ``TRIM_RUN_FRAMES`` (a click, a chair) do not count.
    """
    rms = librosa.feature.rms(y=waveform, frame_length=TRIM_FRAME, hop_length=TRIM_HOP)[0]
    level = 20.0 * np.log10(rms + 1e-10)
    loud = level > np.percentile(level, 95) - TRIM_DB
    edges = np.diff(np.concatenate([[0], loud.astype(np.int8), [0]]))
    runs = [(a, b) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1),
                                   strict=True) if b - a >= TRIM_RUN_FRAMES]
    if not runs:
        return 0, len(waveform)
    return runs[0][0] * TRIM_HOP, min(len(waveform), runs[-1][1] * TRIM_HOP)


def make_babble(waveforms: list[np.ndarray], length: int, rng: np.random.Generator
                ) -> np.ndarray:
    """Sum BABBLE_TALKERS talkers, each a loop of trimmed sentences at equal level."""
    talkers = np.array_split(np.asarray(rng.permutation(len(waveforms))), BABBLE_TALKERS)
    babble = np.zeros(length, dtype=np.float64)
    for talker in talkers:
        voice = np.concatenate([trim(waveforms[i]) for i in talker])
        voice = np.resize(voice, length)
        babble += voice / (np.sqrt(np.mean(voice ** 2)) + 1e-12)
    return babble


def add_noise(stream: np.ndarray, reference: list[tuple[float, float]], noise: np.ndarray,
              snr_db: float) -> np.ndarray:
    """Scale ``noise`` so that speech power over the references / noise power = ``snr_db``."""
    speech = np.concatenate([stream[round(s * RATE):round(e * RATE)] for s, e in reference])
    speech_power = float(np.mean(speech.astype(np.float64) ** 2))
    noise_power = float(np.mean(noise ** 2))
    scale = np.sqrt(speech_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (stream + scale * noise).astype(np.float32)


def run_webrtcvad(stream: np.ndarray) -> tuple[list[Detection], float]:
    """Our Segmenter with the default config, 100 ms chunks; split pieces joined again."""
    segmenter = Segmenter(SegmenterConfig(), input_rate=RATE)
    started = time.perf_counter()
    utterances = segmenter.segment(stream, SEGMENTER_CHUNK)
    seconds = time.perf_counter() - started
    detections: list[Detection] = []
    for utterance in utterances:
        if utterance.continues and detections:
            detections[-1] = Detection(detections[-1].start, utterance.end_time,
                                       utterance.decided_time)
        else:
            detections.append(Detection(utterance.start_time, utterance.end_time,
                                        utterance.decided_time))
    return detections, seconds


def run_silero(stream: np.ndarray, model: Any) -> tuple[list[Detection], float]:
    """Silero's get_speech_timestamps, package defaults, over the whole stream."""
    model.reset_states()
    started = time.perf_counter()
    stamps = silero_vad.get_speech_timestamps(torch.from_numpy(stream), model,
                                              sampling_rate=RATE)
    seconds = time.perf_counter() - started
    return [Detection(s['start'] / RATE, s['end'] / RATE) for s in stamps], seconds


def run_silero_stream(stream: np.ndarray, model: Any) -> tuple[list[Detection], float]:
    """Silero's VADIterator, 32 ms windows, with our hangover and minimum utterance length."""
    config = SegmenterConfig()
    iterator = silero_vad.VADIterator(model, sampling_rate=RATE,
                                      min_silence_duration_ms=int(config.hangover_ms))
    tensor = torch.from_numpy(stream)
    detections = []
    start: float | None = None
    started = time.perf_counter()
    for offset in range(0, len(stream) - SILERO_WINDOW + 1, SILERO_WINDOW):
        event = iterator(tensor[offset:offset + SILERO_WINDOW])
        if not event:
            continue
        if 'start' in event:
            start = event['start'] / RATE
        elif start is not None:
            detections.append(Detection(start, event['end'] / RATE,
                                        (offset + SILERO_WINDOW) / RATE))
            start = None
    if start is not None:
        detections.append(Detection(start, len(stream) / RATE, len(stream) / RATE))
    seconds = time.perf_counter() - started
    iterator.reset_states()
    shortest = config.min_utterance_ms / 1000.0
    return [d for d in detections if d.end - d.start >= shortest], seconds


def score(reference: list[tuple[float, float]], detections: list[Detection],
          duration: float) -> dict[str, Any]:
    """Match detections to reference utterances by overlap; count errors, measure boundaries."""
    hits: list[list[int]] = [[] for _ in reference]
    refs_of: list[list[int]] = []
    for d_index, detection in enumerate(detections):
        overlapping = [r for r, (start, end) in enumerate(reference)
                       if detection.start < end and detection.end > start]
        refs_of.append(overlapping)
        for r in overlapping:
            hits[r].append(d_index)
    onset, offset, decided = [], [], []
    for r, (start, end) in enumerate(reference):
        if not hits[r]:
            continue
        first, last = detections[hits[r][0]], detections[hits[r][-1]]
        if refs_of[hits[r][0]][0] == r:
            onset.append(1000.0 * (first.start - start))
        if refs_of[hits[r][-1]][-1] == r:
            offset.append(1000.0 * (last.end - end))
            if last.decided is not None:
                decided.append(1000.0 * (last.decided - end))
    covered = sum(_overlap(ref, detections) for ref in reference)
    speech = sum(end - start for start, end in reference)
    flagged = sum(d.end - d.start for d in detections) - covered
    return {
        'utterances': len(reference),
        'detections': len(detections),
        'missed': sum(1 for h in hits if not h),
        'phantom': sum(1 for refs in refs_of if not refs),
        'split': sum(max(0, len(h) - 1) for h in hits),
        'merged': len({r for refs in refs_of if len(refs) > 1 for r in refs}),
        'speech_covered': round(covered / speech, 4) if speech else None,
        'nonspeech_flagged': round(flagged / (duration - speech), 4),
        'onset_ms': _errors(onset),
        'offset_ms': _errors(offset),
        'end_decided_ms': _errors(decided) if decided else None,
    }


def _overlap(ref: tuple[float, float], detections: list[Detection]) -> float:
    return sum(max(0.0, min(ref[1], d.end) - max(ref[0], d.start)) for d in detections)


def _errors(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {'median': None, 'p95_abs': None}
    array = np.asarray(values)
    return {'median': round(float(np.median(array)), 1),
            'p95_abs': round(float(np.percentile(np.abs(array), 95)), 1)}


def main(argv: list[str] | None = None) -> int:
    """Build the streams, run every detector on each condition; print JSON and a table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', type=Path, default=DEFAULT_DATA,
                        help=f'RAVDESS folder (Actor_XX/...); default {DEFAULT_DATA}')
    parser.add_argument('--utterances', type=int, default=60,
                        help='sentences in the stream (default 60; --quick uses 4)')
    parser.add_argument('--quick', action='store_true',
                        help='4 sentences, 3 conditions: checks that it runs')
    args = parser.parse_args(argv)
    count = 4 if args.quick else args.utterances
    if count < 1:
        parser.error('--utterances must be at least 1')
    try:
        corpus = load_corpus('ravdess', args.data)
    except ValueError as error:
        print(f'vad_compare: {error}', file=sys.stderr)
        return 2
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(corpus))
    babble_count = 2 * BABBLE_TALKERS if args.quick else 8 * BABBLE_TALKERS
    if count + babble_count > len(corpus):
        parser.error(f'--utterances must be at most {len(corpus) - babble_count}')
    speech = [load_audio(corpus[i].path, RATE) for i in order[:count]]
    others = [load_audio(corpus[i].path, RATE) for i in order[count:count + babble_count]]
    clean, reference = build_stream(speech, rng)
    noises = {'white': rng.standard_normal(len(clean)),
              'babble': make_babble(others, len(clean), rng)}
    conditions = (QUICK_CONDITIONS if args.quick else
                  (('clean', None),) + tuple((n, s) for n, snrs in SNRS_DB.items() for s in snrs))
    model = silero_vad.load_silero_vad()
    run_silero(clean[:RATE], model)  # warm-up (TorchScript optimises on first calls)
    results = []
    for noise, snr in conditions:
        stream = clean if snr is None else add_noise(clean, reference, noises[noise], snr)
        duration = len(stream) / RATE
        for detector in DETECTORS:
            if detector == 'webrtcvad':
                detections, seconds = run_webrtcvad(stream)
            elif detector == 'silero':
                detections, seconds = run_silero(stream, model)
            else:
                detections, seconds = run_silero_stream(stream, model)
            results.append({'noise': noise, 'snr_db': snr, 'detector': detector,
                            **score(reference, detections, duration),
                            'cost_ms_per_s': round(1000.0 * seconds / duration, 2)})
    result = {
        'bench': 'vad_compare',
        'quick': args.quick,
        'machine': machine() | {'torch': torch.__version__,
                                'torch_threads': torch.get_num_threads(),
                                'silero_vad': getattr(silero_vad, '__version__', None)},
        'stream': {'utterances': len(reference), 'seconds': round(len(clean) / RATE, 1),
                   'speech_seconds': round(sum(e - s for s, e in reference), 1),
                   'trim_db': TRIM_DB, 'gap_s': list(GAP_S), 'babble_talkers': BABBLE_TALKERS,
                   'seed': SEED},
        'segmenter_config': {'aggressiveness': SegmenterConfig().aggressiveness,
                             'hangover_ms': SegmenterConfig().hangover_ms,
                             'decision_delay_ms': SegmenterConfig().decision_delay_ms},
        'results': results,
    }
    rows = [[r['noise'], '-' if r['snr_db'] is None else f"{r['snr_db']:g}", r['detector'],
             r['missed'], r['phantom'], r['split'], r['merged'],
             f"{100 * r['nonspeech_flagged']:.0f}",
             r['onset_ms']['median'], r['onset_ms']['p95_abs'],
             r['offset_ms']['median'], r['offset_ms']['p95_abs'], r['cost_ms_per_s']]
            for r in results]
    human = (f"{len(reference)} utterances, {result['stream']['seconds']} s per condition\n"
             + table(rows, ['noise', 'SNR', 'detector', 'missed', 'phantom', 'split', 'merged',
                            'fa %', 'on med', 'on p95', 'off med', 'off p95', 'ms/s']))
    emit(result, human)
    return 0


if __name__ == '__main__':
    sys.exit(main())
