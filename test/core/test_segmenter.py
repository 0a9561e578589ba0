"""Tests of the streaming VAD segmenter on real RAVDESS speech (no ROS)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soxr

from core.speech import CHUNK, RATE, read, speech_extent
from ser_ros.bag_tools import compose
from ser_ros.core.mixing import add_noise
from ser_ros.core.segmenter import Segmenter, SegmenterConfig, Utterance

GAP_S = 1.0
T0 = 1000.0  # stream time of the first sample: any clock, not 0
# Files cut by ravdess_files[::97]: different actors, emotions, intensities and sentences,
# each one sentence without a long inner pause.
FILE_STEP = 97
FILE_COUNT = 6


@pytest.fixture(scope='module')
def sentences(ravdess_files: list[Path]) -> list[np.ndarray]:
    return [read(path) for path in ravdess_files[::FILE_STEP][:FILE_COUNT]]


@pytest.fixture(scope='module')
def stream(sentences: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[float, ...]]]:
    """Sentences separated by 1 s of silence; each file's start and loud extent in stream time."""
    gap = np.zeros(round(GAP_S * RATE), dtype=np.float32)
    parts, extents, offset = [gap], [], GAP_S
    for samples in sentences:
        start, end = speech_extent(samples)
        extents.append((T0 + offset, T0 + offset + start, T0 + offset + end))
        parts += [samples, gap]
        offset += len(samples) / RATE + GAP_S
    return np.concatenate(parts), extents


def run(audio: np.ndarray, rate: int = RATE, chunk: int = CHUNK,
        config: SegmenterConfig | None = None,
        segmenter: Segmenter | None = None) -> tuple[list[Utterance], Segmenter]:
    segmenter = segmenter or Segmenter(config, input_rate=rate)
    return segmenter.segment(audio, chunk, T0), segmenter


def test_one_utterance_per_sentence_covering_its_speech(stream) -> None:
    audio, extents = stream
    segmenter = Segmenter()
    out, _ = run(audio, segmenter=segmenter)
    assert len(out) == len(extents)
    for utterance, (file_start, start, end) in zip(out, extents, strict=True):
        # Starts in the file (faint breaths before the loud part count) or its pre-roll, at the
        # latest a few frames into the loud part; ends within webrtcvad's trailing voiced
        # frames after the loud part.
        pre_roll = segmenter.config.pre_roll_ms / 1000
        assert file_start - pre_roll <= utterance.start_time <= start + 0.1, (utterance, start)
        assert end - 0.1 <= utterance.end_time <= end + 0.25, (utterance, end)
        assert utterance.duration <= end - start + 0.8
        # The samples are exactly the stream's samples between the two stamps.
        first = round((utterance.start_time - T0) * RATE)
        assert np.array_equal(utterance.samples, audio[first:first + len(utterance.samples)])
        assert len(utterance.samples) == round(utterance.duration * RATE)
        assert utterance.sample_rate == RATE
        # Decided decision_delay_ms after the last voiced frame; a stray voiced frame at the
        # end of the speech can make that shorter (down to the hangover plus one frame), one
        # inside the pause up to one offset window longer.
        config = segmenter.config
        delay = utterance.decided_time - utterance.end_time
        print(f'end error {utterance.end_time - end:+.3f} s, delay {delay:.3f} s')
        assert (config.hangover_frames + 1) * config.frame_ms / 1000 - 1e-6 <= delay <= (
            config.decision_delay_ms + config.offset_window * config.frame_ms) / 1000 + 1e-6
        assert not utterance.split and not utterance.continues
    assert segmenter.stats.utterances == len(extents)
    assert segmenter.stats.dropped_short == 0


@pytest.mark.parametrize('snr_db', [None, 20.0])
def test_energy_gate_puts_ends_at_the_true_end_of_speech(sentences, snr_db) -> None:
    # A bag-like stream: trimmed sentences in digital silence, optionally under white noise.
    stream, spans = compose(sentences, RATE, GAP_S)
    if snr_db is not None:
        stream = add_noise(stream, spans, snr_db, 'white', seed=1)
    gated, _ = run(stream)
    plain, _ = run(stream, config=SegmenterConfig(end_trim_db=0.0, noise_margin_db=0.0))

    def last_pieces(out: list[Utterance]) -> list[Utterance]:
        # The last utterance within each sentence (a long pause may cut one in two).
        return [max((u for u in out if u.start_time - T0 < end / RATE
                     and start / RATE < u.end_time - T0), key=lambda u: u.end_time)
                for start, end in spans]

    true_ends = np.array([end for _, end in spans]) / RATE
    gated_last, plain_last = last_pieces(gated), last_pieces(plain)
    gated_errors = np.array([u.end_time for u in gated_last]) - T0 - true_ends
    plain_errors = np.array([u.end_time for u in plain_last]) - T0 - true_ends
    # Without the gate webrtcvad's overhang puts every end (and its decision) late.
    assert np.median(plain_errors) >= 0.04, plain_errors
    assert np.all(np.abs(gated_errors) <= 0.1), gated_errors
    assert np.median(np.abs(gated_errors)) <= 0.02, gated_errors
    assert all(g.decided_time <= p.decided_time
               for g, p in zip(gated_last, plain_last, strict=True))


def test_speaking_changes_bracket_each_utterance(stream) -> None:
    audio, extents = stream
    out, segmenter = run(audio)
    changes = segmenter.pop_speaking_changes()
    assert [change.speaking for change in changes] == [True, False] * len(extents)
    for utterance, on, off in zip(out, changes[::2], changes[1::2], strict=True):
        assert utterance.start_time < on.time < utterance.end_time
        assert off.time == pytest.approx(utterance.decided_time)
    assert segmenter.pop_speaking_changes() == []
    assert not segmenter.is_speaking


def test_chunk_size_does_not_change_the_result(stream) -> None:
    audio, _ = stream
    reference, _ = run(audio)
    for chunk in (111, 480, 16000):
        out, _ = run(audio, chunk=chunk)
        assert [t for u in out for t in (u.start_time, u.end_time)] == pytest.approx(
            [t for u in reference for t in (u.start_time, u.end_time)], abs=1e-9)
        assert all(np.array_equal(a.samples, b.samples)
                   for a, b in zip(out, reference, strict=True))


# 8 kHz loses the high band webrtcvad uses for faint onsets: they may be found a few frames
# later. At higher rates the same frames are voiced and only resampling ripple differs.
@pytest.mark.parametrize(('rate', 'tolerance'), [(8000, 0.1), (44100, 0.045), (48000, 0.045)])
def test_other_input_rates_are_resampled_with_the_same_stamps(stream, rate: int,
                                                              tolerance: float) -> None:
    audio, _ = stream
    reference, _ = run(audio)
    resampled = soxr.resample(audio, RATE, rate).astype(np.float32)
    out, _ = run(resampled, rate=rate, chunk=rate // 50)
    assert len(out) == len(reference)
    for got, want in zip(out, reference, strict=True):
        assert got.sample_rate == RATE
        assert got.start_time == pytest.approx(want.start_time, abs=tolerance)
        assert got.end_time == pytest.approx(want.end_time, abs=tolerance)
        assert len(got.samples) == round(got.duration * RATE)


def test_long_speech_is_split_into_contiguous_pieces(sentences) -> None:
    audio = np.concatenate([np.zeros(RATE // 2, np.float32), sentences[0],
                            np.zeros(RATE // 2, np.float32)])
    whole, _ = run(audio)
    assert len(whole) == 1
    config = SegmenterConfig(max_utterance_ms=700.0)
    pieces, segmenter = run(audio, config=config)
    assert len(pieces) >= 2
    assert segmenter.stats.splits == len(pieces) - 1
    assert pieces[0].split and not pieces[0].continues
    assert all(p.continues for p in pieces[1:])
    for before, after in itertools.pairwise(pieces):
        assert after.start_time == pytest.approx(before.end_time, abs=1e-9)
    assert all(p.duration <= 0.7 + 1e-9 for p in pieces)
    # Nothing dropped: the pieces put together are the unsplit utterance.
    assert pieces[0].start_time == pytest.approx(whole[0].start_time)
    assert pieces[-1].end_time == pytest.approx(whole[0].end_time)
    assert np.array_equal(np.concatenate([p.samples for p in pieces]), whole[0].samples)


def test_a_short_sound_is_dropped_and_counted(sentences) -> None:
    speech = sentences[0]
    start, _ = speech_extent(speech)
    # 160 ms from inside the sentence: speech for webrtcvad, shorter than min_utterance_ms.
    first = round((start + 0.3) * RATE)
    blip = speech[first:first + round(0.16 * RATE)]
    silence = np.zeros(RATE, np.float32)
    out, segmenter = run(np.concatenate([silence, blip, silence]))
    assert out == []
    assert segmenter.stats.dropped_short == 1
    assert [c.speaking for c in segmenter.pop_speaking_changes()] == [True, False]


def test_minutes_of_silence_and_faint_noise_yield_nothing() -> None:
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(120 * RATE) * 10 ** (-50 / 20)).astype(np.float32)
    out, segmenter = run(noise, chunk=RATE)
    assert out == []
    assert segmenter.stats.frames == 120 * 50
    assert segmenter.pop_speaking_changes() == []


def test_pre_roll_never_reaches_into_the_previous_utterance(sentences) -> None:
    gap = np.zeros(round(0.45 * RATE), np.float32)
    audio = np.concatenate([gap, sentences[1], gap, sentences[2], gap])
    config = SegmenterConfig(pre_roll_ms=400.0, hangover_ms=100.0)
    out, _ = run(audio, config=config)
    assert len(out) >= 2
    for before, after in itertools.pairwise(out):
        assert after.start_time >= before.end_time - 1e-9


def test_jitter_is_followed_and_a_jump_restarts_the_stream(stream) -> None:
    audio, extents = stream
    reference, _ = run(audio)
    rng = np.random.default_rng(1)
    segmenter = Segmenter()
    out: list[Utterance] = []
    for offset in range(0, len(audio), CHUNK):
        jitter = rng.uniform(-0.004, 0.004)
        out += segmenter.push(audio[offset:offset + CHUNK], T0 + offset / RATE + jitter)
    out += segmenter.flush()
    assert segmenter.stats.stream_restarts == 0
    assert [u.start_time for u in out] == pytest.approx([u.start_time for u in reference],
                                                        abs=0.005)
    # A forward jump of 2 s in the middle of the second sentence ends that utterance there.
    middle = round(((extents[1][1] + extents[1][2]) / 2 - T0) * RATE) // CHUNK * CHUNK
    segmenter = Segmenter()
    out = []
    for offset in range(0, len(audio), CHUNK):
        shift = 2.0 if offset >= middle else 0.0
        out += segmenter.push(audio[offset:offset + CHUNK], T0 + offset / RATE + shift)
    out += segmenter.flush()
    assert segmenter.stats.stream_restarts == 1
    jump_time = T0 + middle / RATE
    before = [u for u in out if u.start_time < jump_time]
    later = [u for u in out if u.start_time >= jump_time]
    # The first half of the second sentence is closed at the jump, not lost.
    assert len(before) == 2
    assert extents[1][1] < before[1].end_time <= jump_time + 1e-9
    assert all(u.start_time >= jump_time + 2.0 for u in later)
    assert len(out) in (len(reference), len(reference) + 1)


def test_mute_closes_the_open_utterance_and_ignores_input(sentences) -> None:
    silence = np.zeros(RATE, np.float32)
    segmenter = Segmenter()
    out: list[Utterance] = []
    _, end = speech_extent(sentences[0])
    audio = np.concatenate([silence, sentences[0][:round((end - 0.5) * RATE)]])
    for offset in range(0, len(audio), CHUNK):
        out += segmenter.push(audio[offset:offset + CHUNK], T0 + offset / RATE)
    assert segmenter.is_speaking and out == []
    closed = segmenter.mute(True)
    assert len(closed) == 1 and not segmenter.is_speaking and segmenter.muted
    assert closed[0].end_time <= T0 + len(audio) / RATE
    # The robot talks: its speech is ignored.
    robot = np.concatenate([sentences[1], silence])
    base = T0 + len(audio) / RATE
    for offset in range(0, len(robot), CHUNK):
        assert segmenter.push(robot[offset:offset + CHUNK], base + offset / RATE) == []
    assert segmenter.stats.muted_samples == len(robot)
    assert segmenter.mute(False) == []
    after, _ = run(np.concatenate([silence, sentences[2], silence]), segmenter=segmenter)
    assert len(after) == 1
    assert [c.speaking for c in segmenter.pop_speaking_changes()] == [True, False, True, False]


def test_bad_input_raises_and_leaves_the_state_unchanged(stream) -> None:
    audio, _ = stream
    reference, _ = run(audio)
    segmenter = Segmenter()
    out: list[Utterance] = []
    bad_inputs = [
        (np.zeros((CHUNK, 2), np.float32), 0.0, 'mono'),
        (np.zeros(CHUNK, np.int16), 0.0, 'floating point'),
        (np.full(CHUNK, np.nan, np.float32), 0.0, 'NaN'),
        (np.zeros(CHUNK, np.float32), float('inf'), 'finite'),
        (np.zeros(CHUNK, np.float32), 'now', 'number'),
    ]
    for index, offset in enumerate(range(0, len(audio), CHUNK)):
        samples, time, message = bad_inputs[index % len(bad_inputs)]
        with pytest.raises(ValueError, match=message):
            segmenter.push(samples, time)
        out += segmenter.push(audio[offset:offset + CHUNK], T0 + offset / RATE)
    out += segmenter.flush()
    assert [(u.start_time, u.end_time) for u in out] == [(u.start_time, u.end_time)
                                                         for u in reference]


def test_flush_emits_the_utterance_of_a_stream_that_ends_in_speech(sentences) -> None:
    speech = sentences[3]
    _, end = speech_extent(speech)
    audio = np.concatenate([np.zeros(RATE // 2, np.float32), speech[:round((end - 0.3) * RATE)]])
    out, _ = run(audio)
    assert len(out) == 1
    assert out[0].end_time <= T0 + len(audio) / RATE + 1e-9
    assert out[0].end_time >= T0 + len(audio) / RATE - 0.3


@pytest.mark.parametrize(('changes', 'name'), [
    ({'frame_ms': 25}, 'frame_ms'),
    ({'aggressiveness': 4}, 'aggressiveness'),
    ({'vad_rate': 22050}, 'vad_rate'),
    ({'onset_frames': 11}, 'onset_frames'),
    ({'offset_frames': 6}, 'offset_frames'),
    ({'hangover_ms': -1.0}, 'hangover_ms'),
    ({'max_utterance_ms': 200.0}, 'max_utterance_ms'),
    ({'max_gap_ms': 0.0}, 'max_gap_ms'),
])
def test_invalid_configuration_names_the_parameter(changes: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SegmenterConfig(**changes)


def test_invalid_input_rate_is_refused() -> None:
    with pytest.raises(ValueError, match='input_rate'):
        Segmenter(input_rate=10)


def test_config_from_node_parameters_takes_its_own_keys_only() -> None:
    parameters = {'aggressiveness': 3, 'hangover_ms': 300.0, 'sample_rate': 16000,
                  'use_audio_info': True}
    assert SegmenterConfig.from_parameters(parameters) == SegmenterConfig(
        aggressiveness=3, hangover_ms=300.0)
