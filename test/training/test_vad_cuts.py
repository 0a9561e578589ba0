"""VAD cuts for training: real RAVDESS speech through the real segmenter (webrtcvad)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from ser_ros.core.audio import AudioConfig, load_audio
from ser_ros.core.features import FrontEnd, feature_preset
from ser_ros.ros.node_set import default_config_path, node_parameters
from ser_ros.training.feature_cache import cache_key, cached_features, raw_file_features
from ser_ros.training.vad_cuts import (
    STREAM_MARGIN_S,
    VadCutter,
    emotion_node_trailing_silence,
    in_silence,
    vad_node_config,
)

RATE = 16000
MIN_SPEECH_S = 0.3


@pytest.fixture(scope='module')
def cutter() -> VadCutter:
    return VadCutter(vad_node_config())


def test_the_config_is_vad_nodes_from_the_parameters_file(tmp_path):
    written = yaml.safe_load(default_config_path().read_text())['vad_node']['ros__parameters']
    config = vad_node_config()
    assert (config.aggressiveness, config.hangover_ms, config.pre_roll_ms) == (
        written['aggressiveness'], written['hangover_ms'], written['pre_roll_ms'])
    other = tmp_path / 'ser.yaml'
    other.write_text(yaml.safe_dump({'vad_node': {'ros__parameters': {'hangover_ms': 300.0}}}))
    assert vad_node_config(other).hangover_ms == 300.0
    empty = tmp_path / 'empty.yaml'
    empty.write_text('{}\n')
    with pytest.raises(ValueError, match="no ros__parameters for 'vad_node'"):
        node_parameters('vad_node', empty)


def test_the_cut_is_the_speech_of_the_file_without_its_silence(ravdess_files, cutter):
    for path in ravdess_files[::300]:
        waveform = load_audio(path, RATE)
        samples, rate = cutter(waveform, RATE)
        assert rate == cutter.config.output_rate == RATE
        assert MIN_SPEECH_S * RATE < len(samples) < 0.8 * len(waveform)
        # A contiguous piece of the file around its loudest sample: the segmenter passes
        # samples on unchanged.
        offset = int(np.argmax(np.abs(waveform)) - np.argmax(np.abs(samples)))
        assert 0 <= offset <= len(waveform) - len(samples)
        assert np.array_equal(waveform[offset:offset + len(samples)], samples)


def test_a_file_without_speech_is_kept_whole(cutter):
    silence = np.zeros(2 * RATE, dtype=np.float32)
    assert cutter.longest(in_silence(silence, RATE), RATE) is None
    samples, rate = cutter(silence, RATE)
    assert samples is silence and rate == RATE
    assert len(in_silence(silence, RATE)) == len(silence) + 2 * int(STREAM_MARGIN_S * RATE)


def test_cuts_end_in_the_silence_emotion_node_appends(ravdess_files, cutter, tmp_path):
    written = yaml.safe_load(default_config_path().read_text())['emotion_node']
    assert emotion_node_trailing_silence() == written['ros__parameters']['trailing_silence_s']
    padded = VadCutter(cutter.config, trailing_silence_s=0.5)
    waveform = load_audio(ravdess_files[0], RATE)
    cut, _ = cutter(waveform, RATE)
    samples, rate = padded(waveform, RATE)
    assert np.array_equal(samples, np.concatenate([cut, np.zeros(RATE // 2, np.float32)]))
    assert padded.describe() != cutter.describe()     # the cache key and run fingerprint see it
    other = tmp_path / 'ser.yaml'
    other.write_text(yaml.safe_dump({'emotion_node': {'ros__parameters': {'bf16': True}}}))
    with pytest.raises(ValueError, match='no emotion_node trailing_silence_s'):
        emotion_node_trailing_silence(other)


def test_cut_features_are_cached_apart_from_whole_file_features(ravdess_files, cutter,
                                                                tmp_path):
    front_end = FrontEnd(AudioConfig(duration_s=5.0), feature_preset('mel128'))
    paths = ravdess_files[:2]
    assert cache_key(paths, front_end) != cache_key(paths, front_end, cutter)
    cuts = cached_features(paths, front_end, tmp_path, jobs=1, progress=False,
                           transform=cutter)
    whole = cached_features(paths, front_end, tmp_path, jobs=1, progress=False)
    assert len(list(tmp_path.glob('mel128-vadcut-*.npy'))) == 1
    assert np.array_equal(cuts[0], raw_file_features(paths[0], front_end, cutter))
    # Padded in front with more zeros: more frames sit on the floor than in the whole file.
    floor = -front_end.features.top_db
    assert ((cuts <= floor + 1e-3).all(axis=1).sum(axis=1)
            > (whole <= floor + 1e-3).all(axis=1).sum(axis=1)).all()


def test_training_and_evaluation_load_no_ros() -> None:
    # "Train and evaluate without rclpy": the training side, VAD cuts included, imports no ROS
    # package (node parameters are read from the YAML file, not through rclpy).
    code = ('import sys\n'
            'import ser_ros.console, ser_ros.cli.train, ser_ros.cli.evaluate\n'
            'import ser_ros.training.vad_cuts\n'
            'loaded = sorted({m.split(".")[0] for m in sys.modules}\n'
            '                & {"rclpy", "rosbags", "launch", "launch_ros", "rosidl_runtime_py"})\n'
            'print(",".join(loaded))\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == ''
