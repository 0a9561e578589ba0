"""Build test bags from audio files: speech separated by silence, optionally under noise.

ROS-free helpers behind ``ser_bag build``. Each file becomes one utterance: its leading and
trailing room tone is trimmed (10 ms frames more than ``trim_db`` under the file's loudest
frame; loud runs shorter than 50 ms, such as clicks, do not count as speech), so the spans
written to the truth file are where the speech really starts and ends; each utterance is
brought to the same speech level (-26 dBFS RMS by default). Utterances are separated by
``gap_s`` of digital silence; background noise (white, or babble made of the same speech
shifted and summed) can be laid over the whole stream at a given SNR, measured against the
average power of the speech spans (``ser_ros.core.mixing``). The stream is written as a
microphone would publish it (``ser_ros.bags.write_audio_bag``): one ``audio_info``, then
stamped 20 ms chunks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ser_ros.bags import NS_PER_S, AudioFormat, write_audio_bag
from ser_ros.core.audio import load_audio
from ser_ros.core.mixing import add_noise, normalize, speech_bounds
from ser_ros.core.pcm import encode_s16le

SAMPLE_RATE = 16000
DEFAULT_GAP_S = 1.5
DEFAULT_TRIM_DB = 35.0
# Active speech level of each utterance in dBFS, a common level for speech test material.
DEFAULT_LEVEL_DB = -26.0
TRUTH_FILE = 'truth.json'
# Files hold RAVDESS-style names (03-01-EE-...): the third field is the emotion code.
RAVDESS_EMOTIONS = {'01': 'neutral', '02': 'calm', '03': 'happy', '04': 'sad', '05': 'angry',
                    '06': 'fearful', '07': 'disgust', '08': 'surprised'}


@dataclass(frozen=True)
class Span:
    """One utterance of a built bag: its file and where its speech lies (bag time, seconds)."""

    file: str
    start_s: float
    end_s: float
    emotion: str | None = None


def emotion_of(path: str | Path) -> str | None:
    """Emotion named by a RAVDESS file name (03-01-05-...: angry), else None."""
    fields = Path(path).stem.split('-')
    if len(fields) == 7 and fields[0] == '03':
        return RAVDESS_EMOTIONS.get(fields[2])
    return None


def compose(waveforms: Sequence[np.ndarray], sample_rate: int, gap_s: float,
            trim_db: float = DEFAULT_TRIM_DB, level_db: float | None = DEFAULT_LEVEL_DB
            ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Lay the (trimmed) waveforms end to end with `gap_s` of silence before, between, after.

    Each utterance is brought to `level_db` dBFS RMS (None: as recorded; RAVDESS levels span
    over 30 dB, so one noise level would otherwise mean a very different SNR per utterance).
    Returns the mono stream and each utterance's (start, end) sample.
    """
    if not waveforms:
        raise ValueError('no audio to compose')
    if gap_s < 0:
        raise ValueError(f'gap_s must not be negative, got {gap_s}')
    gap = np.zeros(round(gap_s * sample_rate), dtype=np.float32)
    parts, spans, position = [gap], [], len(gap)
    for waveform in waveforms:
        start, end = speech_bounds(waveform, sample_rate, trim_db)
        speech = waveform[start:end].astype(np.float32)
        if level_db is not None:
            speech = normalize(speech, level_db)
        parts += [speech, gap]
        spans.append((position, position + len(speech)))
        position += len(speech) + len(gap)
    return np.concatenate(parts), spans


def resample_channels(stream: np.ndarray, sample_rate: int, channels: int) -> np.ndarray:
    """16 kHz mono stream at `sample_rate` Hz with `channels` identical interleaved channels."""
    if sample_rate != SAMPLE_RATE:
        import soxr

        stream = soxr.resample(stream, SAMPLE_RATE, sample_rate).astype(np.float32)
    return np.repeat(stream[:, np.newaxis], channels, axis=1).reshape(-1)


def build_bag(out: str | Path, audio_files: Sequence[str | Path], *, gap_s: float = DEFAULT_GAP_S,
              noise_snr_db: float | None = None, noise: str = 'white',
              storage: str = 'sqlite3', start_ns: int = 1_700_000_000 * NS_PER_S,
              sample_rate: int = SAMPLE_RATE, channels: int = 1,
              trim_db: float = DEFAULT_TRIM_DB, level_db: float | None = DEFAULT_LEVEL_DB,
              seed: int = 0) -> list[Span]:
    """Write a test bag at `out` and ``<out>.truth.json`` beside it; return the spans.

    `start_ns` stamps the first chunk (never 0: a zero stamp means 'unstamped' to the VAD).
    """
    if start_ns <= 0:
        raise ValueError(f'start_ns must be positive (real stamps), got {start_ns}')
    out = Path(out)
    waveforms = [load_audio(path, SAMPLE_RATE) for path in audio_files]
    stream, spans = compose(waveforms, SAMPLE_RATE, gap_s, trim_db, level_db)
    if noise_snr_db is not None:
        stream = add_noise(stream, spans, noise_snr_db, noise, seed)
    audio_format = AudioFormat(sample_rate, channels, 'S16LE')
    pcm = encode_s16le(resample_channels(stream, sample_rate, channels))
    write_audio_bag(out, pcm, audio_format, storage=storage, start_ns=start_ns)
    start_s = start_ns / NS_PER_S
    truth = [Span(str(path), start_s + a / SAMPLE_RATE, start_s + b / SAMPLE_RATE,
                  emotion_of(path)) for path, (a, b) in zip(audio_files, spans, strict=True)]
    description = {'bag': str(out), 'start_s': start_s,
                   'duration_s': len(stream) / SAMPLE_RATE, 'sample_rate': sample_rate,
                   'channels': channels, 'gap_s': gap_s, 'trim_db': trim_db,
                   'level_db': level_db,
                   'noise': None if noise_snr_db is None else {'kind': noise,
                                                               'snr_db': noise_snr_db,
                                                               'seed': seed},
                   'utterances': [asdict(span) for span in truth]}
    truth_path(out).write_text(json.dumps(description, indent=1), encoding='utf-8')
    return truth


def truth_path(bag: str | Path) -> Path:
    """Where build_bag writes a bag's truth: ``<bag>.truth.json`` beside the bag."""
    bag = Path(bag)
    return bag.with_name(f'{bag.name}.{TRUTH_FILE}')


def read_truth(bag: str | Path) -> list[Span]:
    """Read the utterance spans build_bag recorded for `bag`."""
    data = json.loads(truth_path(bag).read_text(encoding='utf-8'))
    return [Span(**span) for span in data['utterances']]
