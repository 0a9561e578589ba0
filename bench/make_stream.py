"""Build the benchmark audio streams (rosbag2) from real RAVDESS speech and silence.

    .venv/bin/python bench/make_stream.py latency [--utterances 120]
    .venv/bin/python bench/make_stream.py throughput [--minutes 60] [--chunk-ms 20]
    .venv/bin/python bench/make_stream.py model          # the development checkpoint

A stream is whole RAVDESS sentence files (each with its own leading and trailing room
silence) separated by gaps made of real silence: the first 0.25 s of random RAVDESS files
(room tone before the actor speaks), tiled. It is written as a bag (one audio_info, then
AudioDataStamped chunks of ``chunk_ms``, stamped from 1.7e9 s) with ``truth.json`` beside it
(every file's span, emotion and actor). Streams are cached (never in git) under
``$SER_BENCH_CACHE`` or ``~/.cache/ser_ros_bench``, one folder per set of parameters, so the
benchmarks build each one once.

Also shared by the other bench scripts: the isolated-ROS check and the model to benchmark
(``models/ser_ravdess_7class.pt`` when present, else a full-size random-weight checkpoint with
the shipped architecture and a normaliser fitted on real files: same cost, meaningless labels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / 'shared' / 'data' / 'ravdess-16k'
SHIPPED_MODEL = REPO / 'models' / 'ser_ravdess_7class.pt'
SAMPLE_RATE = 16000
NS_PER_S = 1_000_000_000
# Far from 0: a zero stamp means 'no stamp' to the VAD.
START_NS = 1_700_000_000 * NS_PER_S
ROOM_TONE_S = 0.25
DEFAULT_GAP_S = (1.0, 3.0)
DEFAULT_SEED = 6
DEV_MODEL_FILES = 6
# Room tone is checked with the VAD's most lenient setting, so no gap holds 'speech'.
VAD_CHECK_AGGRESSIVENESS = 0
VAD_CHECK_FRAME_MS = 20
STREAM_VERSION = 2
ISOLATION_HINT = ('run it under scripts/run_isolated.sh (LOCALHOST discovery, own '
                  'ROS_DOMAIN_ID, temporary ROS_LOG_DIR), e.g. '
                  'scripts/run_isolated.sh .venv/bin/python bench/<script>.py')


def cache_dir() -> Path:
    """Folder for streams and the development model ($SER_BENCH_CACHE or ~/.cache)."""
    folder = os.environ.get('SER_BENCH_CACHE')
    path = Path(folder) if folder else Path.home() / '.cache' / 'ser_ros_bench'
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_isolated_ros() -> None:
    """Exit with a clear message unless the ROS isolation variables are set."""
    problems = []
    if os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE') != 'LOCALHOST':
        problems.append('ROS_AUTOMATIC_DISCOVERY_RANGE is not LOCALHOST')
    if not os.environ.get('ROS_DOMAIN_ID'):
        problems.append('ROS_DOMAIN_ID is not set')
    if not os.environ.get('ROS_LOG_DIR'):
        problems.append('ROS_LOG_DIR is not set')
    if problems:
        sys.exit(f'{Path(sys.argv[0]).name}: refusing to start ROS nodes: '
                 f'{"; ".join(problems)}; {ISOLATION_HINT}')


def speech_files(data_root: Path = DATA_ROOT) -> list[Path]:
    """Every RAVDESS speech file (16 kHz FLAC), sorted; exits clearly when absent."""
    files = sorted(data_root.glob('Actor_*/03-01-*.flac'))
    if not files:
        sys.exit(f'no RAVDESS speech files under {data_root} (Actor_XX/03-01-*.flac)')
    return files


@dataclass(frozen=True)
class StreamInfo:
    """A built stream: where its bag is and what it holds."""

    bag: str
    truth: str
    duration_s: float
    files: int
    speech_files_s: float
    chunk_ms: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON)."""
        return asdict(self)


def _read(path: Path) -> np.ndarray:
    samples, rate = soundfile.read(path, dtype='int16')
    if rate != SAMPLE_RATE or samples.ndim != 1:
        raise ValueError(f'{path}: expected 16 kHz mono, got {rate} Hz, shape {samples.shape}')
    return samples


def _room_tone(files: list[Path], rng: random.Random, count: int = 40) -> list[np.ndarray]:
    """Room tone before the actor speaks; snippets webrtcvad calls voiced anywhere are skipped."""
    import webrtcvad

    vad = webrtcvad.Vad(VAD_CHECK_AGGRESSIVENESS)
    length = round(ROOM_TONE_S * SAMPLE_RATE)
    frame = SAMPLE_RATE * VAD_CHECK_FRAME_MS // 1000
    tones = []
    for path in rng.sample(files, len(files)):
        tone = _read(path)[:length]
        if not any(vad.is_speech(tone[i:i + frame].tobytes(), SAMPLE_RATE)
                   for i in range(0, length - frame + 1, frame)):
            tones.append(tone)
        if len(tones) == count:
            break
    if not tones:
        raise ValueError('no RAVDESS file starts with room tone the VAD calls silent')
    return tones


def _gap(tones: list[np.ndarray], seconds: float, rng: random.Random) -> np.ndarray:
    length = round(seconds * SAMPLE_RATE)
    parts, total = [], 0
    while total < length:
        part = tones[rng.randrange(len(tones))]
        parts.append(part)
        total += len(part)
    return np.concatenate(parts)[:length]


def build_stream(folder: Path, *, utterances: int | None = None, seconds: float | None = None,
                 chunk_ms: int = 20, seed: int = DEFAULT_SEED,
                 gap_s: tuple[float, float] = DEFAULT_GAP_S,
                 data_root: Path = DATA_ROOT) -> StreamInfo:
    """Write ``folder/bag`` and ``folder/truth.json``: files until the count or length is met."""
    from ser_ros.bags import AudioFormat, write_audio_bag

    if (utterances is None) == (seconds is None):
        raise ValueError('give exactly one of utterances or seconds')
    rng = random.Random(seed)
    files = speech_files(data_root)
    tones = _room_tone(files, rng)
    order = files[:]
    rng.shuffle(order)
    parts = [_gap(tones, rng.uniform(*gap_s), rng)]
    position = len(parts[0])
    truth = []
    index = 0
    while True:
        if utterances is not None and len(truth) >= utterances:
            break
        if seconds is not None and position >= seconds * SAMPLE_RATE:
            break
        path = order[index % len(order)]
        index += 1
        samples = _read(path)
        parts.append(samples)
        code = path.stem.split('-')
        truth.append({'file': str(path.relative_to(data_root)), 'emotion': code[2],
                      'actor': code[6], 'start_s': START_NS / NS_PER_S + position / SAMPLE_RATE,
                      'end_s': START_NS / NS_PER_S + (position + len(samples)) / SAMPLE_RATE})
        position += len(samples)
        gap = _gap(tones, rng.uniform(*gap_s), rng)
        parts.append(gap)
        position += len(gap)
    folder.mkdir(parents=True, exist_ok=True)
    bag = folder / 'bag'
    pcm = np.concatenate(parts).astype('<i2').tobytes()
    write_audio_bag(bag, pcm, AudioFormat(), chunk_ms=chunk_ms, start_ns=START_NS)
    info = StreamInfo(str(bag), str(folder / 'truth.json'), round(position / SAMPLE_RATE, 3),
                      len(truth), round(sum(t['end_s'] - t['start_s'] for t in truth), 3),
                      chunk_ms, seed)
    (folder / 'truth.json').write_text(json.dumps({'stream': info.to_dict(), 'files': truth},
                                                  indent=1), encoding='utf-8')
    return info


def cached_stream(name: str, *, utterances: int | None = None, seconds: float | None = None,
                  chunk_ms: int = 20, seed: int = DEFAULT_SEED) -> StreamInfo:
    """Return the stream with these parameters, building it on first use."""
    key = json.dumps([STREAM_VERSION, utterances, seconds, chunk_ms, seed])
    folder = cache_dir() / f'{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}'
    truth = folder / 'truth.json'
    if truth.is_file() and (folder / 'bag').exists():
        return StreamInfo(**json.loads(truth.read_text(encoding='utf-8'))['stream'])
    if folder.exists():   # a half-written stream (interrupted build): start again
        import shutil
        shutil.rmtree(folder)
    print(f'building {name} stream in {folder} ...', file=sys.stderr, flush=True)
    return build_stream(folder, utterances=utterances, seconds=seconds, chunk_ms=chunk_ms,
                        seed=seed)


def build_dev_model(path: Path, data_root: Path = DATA_ROOT) -> Path:
    """Save a full-size random-weight checkpoint of the shipped configuration (same cost)."""
    import torch

    from ser_ros.core.audio import AudioConfig
    from ser_ros.core.checkpoint import Checkpoint
    from ser_ros.core.features import FrontEnd, Normalizer, feature_preset
    from ser_ros.core.model import ModelConfig, SerNet
    from ser_ros.data.labels import RAVDESS_7

    torch.manual_seed(0)
    audio = AudioConfig()
    features = feature_preset('mel128')
    front_end = FrontEnd(audio, features)
    files = speech_files(data_root)
    chosen = files[::max(1, len(files) // DEV_MODEL_FILES)][:DEV_MODEL_FILES]
    batch = np.stack([front_end.extract_file(file, normalize=False) for file in chosen])
    num_features, num_frames = front_end.feature_shape
    config = ModelConfig(num_classes=len(RAVDESS_7), num_features=num_features,
                         num_frames=num_frames, shared_blocks=2)
    checkpoint = Checkpoint.from_model(
        SerNet(config).eval(), audio, features, Normalizer.fit(batch), RAVDESS_7,
        provenance={'dataset': 'none: random weights, shipped architecture (benchmarks)'})
    path.parent.mkdir(parents=True, exist_ok=True)
    return checkpoint.save(path)


def resolve_model(model: str | None) -> tuple[Path, str]:
    """Return the checkpoint to benchmark and what it is: given, shipped or development."""
    if model:
        path = Path(model).expanduser().resolve()
        if not path.is_file():
            sys.exit(f'--model {path} does not exist')
        return path, 'given'
    if SHIPPED_MODEL.is_file():
        return SHIPPED_MODEL, 'shipped'
    path = cache_dir() / 'dev_model_full.pt'
    if not path.is_file():
        print(f'no {SHIPPED_MODEL}: building a random-weight full-size model at {path}',
              file=sys.stderr, flush=True)
        build_dev_model(path)
    return path, 'random weights (shipped architecture)'


def main(argv: list[str] | None = None) -> int:
    """Build (or find cached) a stream or the development model; print it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('kind', choices=('latency', 'throughput', 'model'))
    parser.add_argument('--utterances', type=int, default=120, help='latency stream: files')
    parser.add_argument('--minutes', type=float, default=60.0, help='throughput stream length')
    parser.add_argument('--chunk-ms', type=int, default=20, help='audio per bag message')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED)
    arguments = parser.parse_args(argv)
    if arguments.kind == 'model':
        path, kind = resolve_model(None)
        print(json.dumps({'model': str(path), 'kind': kind}))
        return 0
    if arguments.kind == 'latency':
        info = cached_stream('latency', utterances=arguments.utterances,
                             chunk_ms=arguments.chunk_ms, seed=arguments.seed)
    else:
        info = cached_stream('throughput', seconds=arguments.minutes * 60,
                             chunk_ms=arguments.chunk_ms, seed=arguments.seed)
    print(json.dumps(info.to_dict()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
