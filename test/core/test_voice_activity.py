"""Tests of the frame classifiers (webrtcvad, Silero VAD) behind the segmenter, on real speech."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from core.speech import CHUNK, RATE, read, speech_extent
from ser_ros.core.segmenter import Segmenter, SegmenterConfig, Utterance
from ser_ros.core.voice_activity import (
    DETECTORS,
    DetectorUnavailableError,
    SileroClassifier,
    WebrtcvadClassifier,
    make_classifier,
)

GAP_S = 1.0
CONFIGS = {
    'webrtcvad': SegmenterConfig(),
    'silero': SegmenterConfig(detector='silero', frame_ms=32),
}
# Six sentences of different actors, emotions and intensities (as test_segmenter.py), from a
# loud -34 dBFS to a quiet -55 dBFS.
FILE_STEP = 97
FILE_COUNT = 6
# Background voices: six RAVDESS talkers summed, at -70 dBFS (a TV across the room, 20-35 dB
# below these sentences). Measured on the six sentences with three babble draws: webrtcvad
# takes 1.8-3.6 s of the 6 s of babble around each sentence for speech, Silero at most 0.21 s
# (its pre-roll and tail); Silero stays clean up to -65 dBFS, webrtcvad already takes ~1 s at
# -75 dBFS.
BABBLE_DBFS = -70.0
BABBLE_TALKERS = 6
BABBLE_FILES_PER_TALKER = 4
BABBLE_LEAD_S = 3.0


def run(audio: np.ndarray, config: SegmenterConfig) -> list[Utterance]:
    segmenter = Segmenter(config, input_rate=RATE)
    out: list[Utterance] = []
    for offset in range(0, len(audio), CHUNK):
        out += segmenter.push(audio[offset:offset + CHUNK], offset / RATE)
    return out + segmenter.flush()


def overlap(utterance: Utterance, start: float, end: float) -> float:
    return max(0.0, min(utterance.end_time, end) - max(utterance.start_time, start))


@pytest.fixture(scope='module')
def sentences(ravdess_files: list[Path]) -> list[np.ndarray]:
    return [read(path) for path in ravdess_files[::FILE_STEP][:FILE_COUNT]]


@pytest.fixture(scope='module')
def babble(ravdess_files: list[Path]) -> np.ndarray:
    """Unit-RMS babble of six talkers, each a loop of four sentences not used elsewhere here."""
    used = set(ravdess_files[::FILE_STEP][:FILE_COUNT])
    others = [path for path in ravdess_files if path not in used]
    rng = np.random.default_rng(0)
    picks = rng.choice(len(others), BABBLE_TALKERS * BABBLE_FILES_PER_TALKER, replace=False)
    length = 12 * RATE
    mix = np.zeros(length)
    for talker in range(BABBLE_TALKERS):
        files = picks[talker * BABBLE_FILES_PER_TALKER:(talker + 1) * BABBLE_FILES_PER_TALKER]
        voice = np.resize(np.concatenate([read(others[i]) for i in files]), length)
        mix += voice / np.sqrt(np.mean(voice.astype(np.float64) ** 2))
    return mix / np.sqrt(np.mean(mix ** 2))


@pytest.mark.parametrize('detector', list(DETECTORS))
def test_each_detector_finds_every_sentence_and_nothing_else(sentences, detector: str) -> None:
    gap = np.zeros(round(GAP_S * RATE), np.float32)
    parts, spans, offset = [gap], [], GAP_S
    for samples in sentences:
        start, end = speech_extent(samples)
        spans.append((offset, offset + start, offset + end, offset + len(samples) / RATE))
        parts += [samples, gap]
        offset += len(samples) / RATE + GAP_S
    config = CONFIGS[detector]
    out = run(np.concatenate(parts), config)
    pre_roll = config.pre_roll_frames * config.frame_ms / 1000
    for utterance in out:
        # No phantom and no merge: each utterance lies in one file (its room tone included).
        inside = [span for span in spans
                  if span[0] - pre_roll - 1e-9 <= utterance.start_time
                  and utterance.end_time <= span[3] + 1e-9]
        assert len(inside) == 1, (utterance.start_time, utterance.end_time, spans)
    for file_start, start, end, file_end in spans:
        found = [u for u in out if u.end_time > file_start and u.start_time < file_end]
        # Silero may cut a sentence at a pause between words (one did here: two results).
        assert 1 <= len(found) <= 2, (detector, start, found)
        covered = sum(overlap(u, start, end) for u in found)
        assert covered >= 0.85 * (end - start), (detector, start, end, covered)


def test_silero_ignores_faint_background_voices_that_webrtcvad_takes_for_speech(
        sentences, babble) -> None:
    lead = np.zeros(round(BABBLE_LEAD_S * RATE), np.float32)
    for samples in (sentences[0], sentences[3]):
        audio = np.concatenate([lead, samples, lead])
        audio = audio + (babble[:len(audio)] * 10 ** (BABBLE_DBFS / 20)).astype(np.float32)
        start, end = speech_extent(samples)
        start, end = start + BABBLE_LEAD_S, end + BABBLE_LEAD_S
        outside = {}
        for detector, config in CONFIGS.items():
            out = run(audio, config)
            covered = sum(overlap(u, start, end) for u in out)
            assert covered >= 0.75 * (end - start), (detector, covered)
            total = sum(u.duration for u in out)
            outside[detector] = total - covered
        # 6 s of babble around the sentence: webrtcvad keeps seconds of it, Silero hardly any.
        assert outside['webrtcvad'] >= 1.0, outside
        assert outside['silero'] <= 0.3, outside


def test_silero_state_is_per_stream_and_reset_clears_it(sentences) -> None:
    classifier = SileroClassifier(RATE)
    size = classifier.frame_samples
    assert size == 512
    audio = sentences[1]
    frames = [audio[i:i + size] for i in range(0, len(audio) - size + 1, size)]
    first = [classifier.probability(frame) for frame in frames]
    # Without a reset the recurrent state of the first pass changes the second one ...
    carried = [classifier.probability(frame) for frame in frames]
    classifier.reset()
    again = [classifier.probability(frame) for frame in frames]
    assert again == pytest.approx(first, abs=1e-6)
    assert max(abs(a - b) for a, b in zip(first, carried, strict=True)) > 1e-3
    # ... and the sentence is speech to it while its room-tone start is not.
    speech_start, speech_end = speech_extent(audio)
    inside = [p for i, p in enumerate(first)
              if speech_start * RATE <= i * size and (i + 1) * size <= speech_end * RATE]
    assert np.mean(np.asarray(inside) >= 0.5) > 0.6
    assert max(first[:int(speech_start * RATE) // size - 2]) < 0.5
    # 8 kHz takes 256 samples per frame.
    assert SileroClassifier(8000).frame_samples == 256


@pytest.mark.parametrize(('changes', 'name', 'hint'), [
    ({'detector': 'silerro'}, 'detector', 'webrtcvad, silero'),
    ({'detector': 'Silero'}, 'detector', 'webrtcvad, silero'),
    ({'detector': 'silero'}, 'frame_ms', '32 with detector .silero.'),
    ({'detector': 'silero', 'frame_ms': 30}, 'frame_ms', '512 samples'),
    ({'detector': 'silero', 'frame_ms': 32, 'vad_rate': 48000}, 'vad_rate', '8000, 16000'),
    ({'frame_ms': 32}, 'frame_ms', '10, 20, 30 with detector .webrtcvad.'),
    ({'detector': 'silero', 'frame_ms': 32, 'silero_threshold': 1.0}, 'silero_threshold', '0..1'),
    ({'silero_threshold': -0.1}, 'silero_threshold', '0..1'),
])
def test_bad_detector_settings_are_refused_naming_the_parameter(changes: dict, name: str,
                                                               hint: str) -> None:
    with pytest.raises(ValueError, match=name) as error:
        SegmenterConfig(**changes)
    assert error.match(hint)


def test_classifiers_refuse_frames_and_settings_they_cannot_take() -> None:
    with pytest.raises(ValueError, match='frame_ms'):
        make_classifier('silero', RATE, 20)
    with pytest.raises(ValueError, match='detector'):
        make_classifier('rnnoise', RATE, 20)
    with pytest.raises(ValueError, match='aggressiveness'):
        WebrtcvadClassifier(RATE, 20, aggressiveness=4)
    webrtc = WebrtcvadClassifier(RATE, 30)
    with pytest.raises(ValueError, match='480 mono samples'):
        webrtc.is_speech(np.zeros(320, np.float32))
    silero = make_classifier('silero', RATE, 32)
    with pytest.raises(ValueError, match='512 mono samples'):
        silero.is_speech(np.zeros(480, np.float32))


def test_missing_silero_package_is_a_clear_error(monkeypatch) -> None:
    import torch

    threads = torch.get_num_threads()
    # What Python does when the package is not installed: the import raises ImportError.
    monkeypatch.setitem(sys.modules, 'silero_vad', None)
    with pytest.raises(DetectorUnavailableError, match='silero-vad'):
        Segmenter(CONFIGS['silero'])
    assert torch.get_num_threads() == threads


def test_torch_thread_count_is_unchanged_by_the_silero_backend() -> None:
    # A fresh interpreter: importing silero_vad (once per process) sets torch to one thread.
    script = textwrap.dedent('''
        import sys
        import numpy as np
        from ser_ros.core.segmenter import Segmenter, SegmenterConfig
        Segmenter(SegmenterConfig())
        assert 'silero_vad' not in sys.modules, 'webrtcvad must not load Silero'
        import torch
        torch.set_num_threads(3)
        segmenter = Segmenter(SegmenterConfig(detector='silero', frame_ms=32))
        rng = np.random.default_rng(0)
        segmenter.push((rng.standard_normal(16000) * 0.01).astype(np.float32), 0.0)
        segmenter.flush()
        assert 'silero_vad' in sys.modules
        print(torch.get_num_threads())
    ''')
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['3']
