"""Test bags built from audio files: trimming, levels, noise at a given SNR, stamps, truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ser_ros.bag_tools import (
    DEFAULT_LEVEL_DB,
    build_bag,
    compose,
    emotion_of,
    read_truth,
    truth_path,
)
from ser_ros.bags import AUDIO_DATA_STAMPED_TYPE, AUDIO_INFO_TYPE, NS_PER_S, read_messages
from ser_ros.core.audio import load_audio
from ser_ros.core.mixing import add_noise, make_noise, normalize, speech_bounds

RATE = 16000
START_NS = 1_700_000_000 * NS_PER_S


def tone(seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def power_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2))


def test_speech_bounds_ignore_quiet_edges_and_clicks() -> None:
    quiet = np.full(RATE // 2, 1e-4, dtype=np.float32)
    click = np.zeros(RATE // 2, dtype=np.float32)
    click[1000:1040] = 0.5   # 2.5 ms: loud but too short to be speech
    signal = np.concatenate([quiet, tone(1.0), click])
    start, end = speech_bounds(signal, RATE, 35.0)
    assert start == pytest.approx(RATE // 2, abs=RATE // 100)
    assert end == pytest.approx(RATE // 2 + RATE, abs=RATE // 100)
    assert speech_bounds(signal, RATE, 0) == (0, len(signal))
    with pytest.raises(ValueError, match='silent'):
        speech_bounds(np.zeros(RATE, np.float32), RATE, 35.0)


def test_compose_places_levelled_speech_between_gaps() -> None:
    loud, soft = tone(1.0, 0.5), tone(0.5, 0.005)
    stream, spans = compose([loud, soft], RATE, gap_s=0.25)
    assert spans == [(4000, 20000), (24000, 32000)]
    assert len(stream) == 36000
    assert not np.any(stream[:4000]) and not np.any(stream[20000:24000])
    for a, b in spans:   # both utterances at the same speech level, whatever they were
        assert power_db(stream[a:b]) == pytest.approx(DEFAULT_LEVEL_DB, abs=0.1)
    kept, _ = compose([soft], RATE, gap_s=0.0, level_db=None)
    assert np.array_equal(kept, soft)
    assert np.max(np.abs(normalize(np.array([0.9, -0.9, 0.0], np.float32), 0.0))) <= 0.99
    with pytest.raises(ValueError):
        compose([], RATE, 0.1)
    with pytest.raises(ValueError):
        compose([loud], RATE, -1.0)


@pytest.mark.parametrize('kind', ['white', 'babble'])
@pytest.mark.parametrize('snr_db', [20.0, 5.0])
def test_noise_has_the_asked_snr(kind: str, snr_db: float) -> None:
    stream, spans = compose([tone(1.0), tone(0.7)], RATE, gap_s=0.5)
    noisy = add_noise(stream, spans, snr_db, kind, seed=1)
    noise = noisy - stream
    speech = np.concatenate([stream[a:b] for a, b in spans])
    assert power_db(speech) - power_db(noise) == pytest.approx(snr_db, abs=0.2)
    # Noise everywhere, also in the gaps, and reproducible from the seed.
    assert np.std(noisy[:spans[0][0]]) > 0
    assert np.array_equal(noisy, add_noise(stream, spans, snr_db, kind, seed=1))
    with pytest.raises(ValueError, match='unknown noise kind'):
        make_noise('pink', 10, np.random.default_rng(0))


def test_build_bag_writes_stamped_chunks_and_truth(tmp_path: Path,
                                                   ravdess_files: list[Path]) -> None:
    files = ravdess_files[:2]
    bag = tmp_path / 'test'
    spans = build_bag(bag, files, gap_s=1.0, storage='mcap', start_ns=START_NS)
    records = list(read_messages(bag))
    assert records[0][0].msgtype == AUDIO_INFO_TYPE and records[0][1].sample_rate == RATE
    chunks = [m for r, m in records[1:]]
    assert {r.msgtype for r, _ in records[1:]} == {AUDIO_DATA_STAMPED_TYPE}
    assert all(len(m.audio.data) == 640 for m in chunks[:-1])
    stamps = [m.header.stamp.sec * NS_PER_S + m.header.stamp.nanosec for m in chunks]
    assert stamps[0] == START_NS and np.all(np.diff(stamps) == 20_000_000)
    pcm = np.frombuffer(b''.join(bytes(m.audio.data) for m in chunks), '<i2')
    # Each span holds speech (trimmed file) and the silence around it is silent.
    for span, file in zip(spans, files, strict=True):
        a = round((span.start_s - START_NS / NS_PER_S) * RATE)
        b = round((span.end_s - START_NS / NS_PER_S) * RATE)
        assert 0 < b - a <= len(load_audio(file, RATE))
        assert not np.any(pcm[a - RATE // 2:a]) and np.any(pcm[a:b])
        assert span.emotion == emotion_of(file) and span.file == str(file)
    assert read_truth(bag) == spans
    description = json.loads(truth_path(bag).read_text())
    assert description['noise'] is None and description['duration_s'] == len(pcm) / RATE


def test_build_bag_48_khz_stereo(tmp_path: Path, ravdess_files: list[Path]) -> None:
    bag = tmp_path / 'stereo'
    build_bag(bag, ravdess_files[:1], sample_rate=48000, channels=2, start_ns=START_NS,
              noise_snr_db=30.0)
    records = list(read_messages(bag))
    info = records[0][1]
    assert (info.sample_rate, info.channels, info.bitrate) == (48000, 2, 48000 * 2 * 16)
    frames = np.frombuffer(bytes(records[10][1].audio.data), '<i2').reshape(-1, 2)
    assert len(frames) == 960 and np.array_equal(frames[:, 0], frames[:, 1])
    assert json.loads(truth_path(bag).read_text())['noise']['snr_db'] == 30.0


def test_build_bag_refuses_bad_input(tmp_path: Path, ravdess_files: list[Path]) -> None:
    with pytest.raises(ValueError, match='start_ns must be positive'):
        build_bag(tmp_path / 'a', ravdess_files[:1], start_ns=0)
    build_bag(tmp_path / 'b', ravdess_files[:1])
    with pytest.raises(FileExistsError):
        build_bag(tmp_path / 'b', ravdess_files[:1])
    assert emotion_of('03-01-05-01-01-01-12.wav') == 'angry'
    assert emotion_of('speech.wav') is None


def test_babble_voices_come_from_all_of_the_talkers_speech() -> None:
    # Talkers: 24 one-second "recordings", each a tone of its own frequency; babble for half a
    # second must hear several of them, not only the first (each voice starts anywhere).
    frequencies = 200.0 + 50.0 * np.arange(24)
    t = np.arange(RATE) / RATE
    talkers = np.concatenate([0.3 * np.sin(2 * np.pi * frequency * t)
                              for frequency in frequencies]).astype(np.float32)
    noise = make_noise('babble', RATE // 2, np.random.default_rng(3), talkers)
    spectrum = np.abs(np.fft.rfft(noise))
    bins = np.fft.rfftfreq(len(noise), 1.0 / RATE)
    heard = {frequency for frequency in frequencies
             if spectrum[np.argmin(np.abs(bins - frequency))] > 0.2 * spectrum.max()}
    assert len(heard) >= 4 and heard != {frequencies[0]}, sorted(heard)
