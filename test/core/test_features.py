"""Feature sets against librosa called directly, exclusions, normalisation, the front end."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import librosa
import numpy as np
import pytest
import soxr

from ser_ros.core.audio import AudioConfig, fix_length, load_audio
from ser_ros.core.features import (
    FEATURE_PRESETS,
    FEATURE_VERSION,
    SPECTRAL_FEATURE_GROUPS,
    STD_FLOOR,
    FeatureConfig,
    FrontEnd,
    Normalizer,
    extract_features,
    feature_preset,
)

RATE = 16000
FIVE_SECONDS = 80000
IEMOCAP_HOP = 512
FILES_USED = 3


@pytest.fixture(scope='module')
def waveforms(ravdess_files: list[Path]) -> list[np.ndarray]:
    """Load a few real utterances (different actors), 5 s, padded at the start like the paper."""
    chosen = ravdess_files[::len(ravdess_files) // FILES_USED][:FILES_USED]
    return [fix_length(load_audio(path), FIVE_SECONDS, 'pre') for path in chosen]


@pytest.fixture(scope='module')
def iemocap_features(waveforms: list[np.ndarray]) -> list[np.ndarray]:
    return [extract_features(y, feature_preset('iemocap')) for y in waveforms]


def reference_iemocap_groups(y: np.ndarray) -> dict[str, np.ndarray]:
    """Compute the paper's Table I features with librosa's functions and the table's values."""
    mfcc = librosa.feature.mfcc(y=y, sr=RATE, n_mfcc=20, hop_length=IEMOCAP_HOP)
    return {
        'spectral_centroid': librosa.feature.spectral_centroid(y=y, sr=RATE,
                                                               hop_length=IEMOCAP_HOP),
        'spectral_contrast': librosa.feature.spectral_contrast(y=y, sr=RATE,
                                                               hop_length=IEMOCAP_HOP)[:1],
        'spectral_bandwidth': librosa.feature.spectral_bandwidth(y=y, sr=RATE,
                                                                 hop_length=IEMOCAP_HOP),
        'spectral_rolloff': librosa.feature.spectral_rolloff(y=y, sr=RATE,
                                                             hop_length=IEMOCAP_HOP),
        'zcr': librosa.feature.zero_crossing_rate(y, hop_length=IEMOCAP_HOP),
        'rms': librosa.feature.rms(y=y, hop_length=IEMOCAP_HOP),
        'mfcc': mfcc,
        'mfcc_delta': librosa.feature.delta(mfcc, width=9, mode='interp', order=1),
    }


def test_mel128_matches_librosa(waveforms: list[np.ndarray]) -> None:
    config = feature_preset('mel128')
    for y in waveforms:
        power = librosa.feature.melspectrogram(
            y=y, sr=RATE, n_fft=512, hop_length=128, win_length=256, window='hamming',
            center=True, pad_mode='constant', power=2.0, n_mels=128, fmax=4000)
        expected = librosa.power_to_db(power, ref=np.max, top_db=80.0)
        features = extract_features(y, config)
        assert features.shape == (128, 626) == (config.num_features, config.num_frames(len(y)))
        assert features.dtype == np.float32
        assert features.max() == 0.0 and features.min() >= -80.0
        assert np.allclose(features, expected, atol=1e-3)


@pytest.mark.parametrize('first_voiced', [0, 255, 256, 257, 383, 384, 40_000, 79_000, 80_000])
def test_mel128_of_padded_speech_matches_librosa_wherever_it_starts(
        waveforms: list[np.ndarray], first_voiced: int) -> None:
    """The STFT leaves out leading frames of pure zeros: the result must not show where."""
    # Start at the loudest sample: frames that barely touch the speech must not fall under
    # the 80 dB floor, or a frame left out wrongly would not show.
    speech = waveforms[0][int(np.argmax(np.abs(waveforms[0]))):]
    y = np.zeros(FIVE_SECONDS, np.float32)
    y[first_voiced:] = np.resize(speech, FIVE_SECONDS - first_voiced)   # repeated as needed
    power = librosa.feature.melspectrogram(
        y=y, sr=RATE, n_fft=512, hop_length=128, win_length=256, window='hamming',
        center=True, pad_mode='constant', power=2.0, n_mels=128, fmax=4000)
    with warnings.catch_warnings():
        warnings.simplefilter('error')   # e.g. librosa's 'n_fft too large for the input'
        features = extract_features(y, feature_preset('mel128'))
    assert features.shape == (128, 626)
    assert np.allclose(features, librosa.power_to_db(power, ref=np.max, top_db=80.0), atol=1e-3)


def test_iemocap_matches_librosa_group_by_group(waveforms: list[np.ndarray],
                                                iemocap_features: list[np.ndarray]) -> None:
    config = feature_preset('iemocap')
    assert config.groups == SPECTRAL_FEATURE_GROUPS
    for y, features in zip(waveforms, iemocap_features, strict=True):
        assert features.shape == (46, 157) == (config.num_features, config.num_frames(len(y)))
        assert features.dtype == np.float32
        expected = reference_iemocap_groups(y)
        for group, rows in config.row_slices.items():
            scale = np.abs(expected[group]).max()
            assert np.allclose(features[rows], expected[group], rtol=1e-4,
                               atol=1e-5 * scale), group


def test_frame_count_follows_the_length(waveforms: list[np.ndarray]) -> None:
    three_seconds = waveforms[0][:3 * RATE]
    for name in FEATURE_PRESETS:
        config = feature_preset(name)
        features = extract_features(three_seconds, config)
        assert features.shape == (config.num_features, config.num_frames(3 * RATE))
    uncentered = FeatureConfig(name='plain', kind='mel', center=False)
    assert extract_features(three_seconds, uncentered).shape[1] == 1 + (3 * RATE - 512) // 128
    assert uncentered.num_frames(3 * RATE) == 1 + (3 * RATE - 512) // 128


@pytest.mark.parametrize('group', SPECTRAL_FEATURE_GROUPS)
def test_excluding_a_group_removes_exactly_its_rows(group: str, waveforms: list[np.ndarray],
                                                    iemocap_features: list[np.ndarray]) -> None:
    full = feature_preset('iemocap')
    config = feature_preset('iemocap', exclude=[group])
    assert config.excluded == (group,)
    assert group not in config.groups
    kept = np.delete(np.arange(full.num_features), full.row_slices[group])
    features = extract_features(waveforms[0], config)
    assert features.shape == (config.num_features, 157)
    assert config.num_features == full.num_features - full.group_rows(group)
    assert np.array_equal(features, iemocap_features[0][kept])


def test_excluding_several_groups(waveforms: list[np.ndarray],
                                  iemocap_features: list[np.ndarray]) -> None:
    config = feature_preset('iemocap', exclude=('rms', 'mfcc', 'rms'))
    assert config.excluded == ('rms', 'mfcc')
    assert config.num_features == 46 - 1 - 20
    assert feature_preset('iemocap', exclude='zcr').excluded == ('zcr',)
    full = feature_preset('iemocap').row_slices
    kept = np.r_[0:full['rms'].start, full['mfcc_delta']]
    assert np.array_equal(extract_features(waveforms[0], config), iemocap_features[0][kept])


def test_unknown_or_impossible_exclusions_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown feature group\(s\) \['loudness'\].*"
                                         r'valid: spectral_centroid, spectral_contrast'):
        feature_preset('iemocap', exclude=['loudness'])
    with pytest.raises(ValueError, match='only a spectral_set can exclude'):
        feature_preset('mel128', exclude=['rms'])
    with pytest.raises(ValueError, match='cannot exclude every feature group'):
        feature_preset('iemocap', exclude=SPECTRAL_FEATURE_GROUPS)


def test_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(ValueError, match="unknown feature preset 'mfcc40'; presets: mel128, "
                                         'iemocap'):
        feature_preset('mfcc40')


def test_extract_features_errors() -> None:
    config = feature_preset('mel128')
    with pytest.raises(ValueError, match='empty'):
        extract_features(np.zeros(0, dtype=np.float32), config)
    with pytest.raises(ValueError, match='NaN or infinity'):
        extract_features(np.full(1000, np.nan, dtype=np.float32), config)
    with pytest.raises(ValueError, match='floating point'):
        extract_features(np.zeros(1000, dtype=np.int16), config)
    with pytest.raises(ValueError, match=r'mono with shape \(n,\)'):
        extract_features(np.zeros((1000, 2), dtype=np.float32), config)
    with pytest.raises(ValueError, match='above the Nyquist frequency'):
        extract_features(np.zeros(1000, dtype=np.float32), config, sample_rate=6000)
    with pytest.raises(ValueError, match='too few for MFCC deltas'):
        extract_features(np.zeros(2000, dtype=np.float32), feature_preset('iemocap'))
    with pytest.raises(ValueError, match='fewer than one uncentered frame'):
        extract_features(np.zeros(500, dtype=np.float32), replace(config, center=False))


@pytest.mark.parametrize('config', [
    feature_preset('mel128'),
    feature_preset('iemocap'),
    feature_preset('iemocap', exclude=['spectral_contrast', 'mfcc_delta']),
])
def test_feature_config_round_trip(config: FeatureConfig) -> None:
    through_json = json.loads(json.dumps(config.to_dict()))
    assert FeatureConfig.from_dict(through_json) == config
    assert through_json['version'] == FEATURE_VERSION
    assert through_json['name'] == config.name


def test_feature_config_refuses_other_versions_and_keys() -> None:
    data = feature_preset('mel128').to_dict()
    with pytest.raises(ValueError, match=r"'mel128' has version 2, but this ser_ros computes "
                                         r'feature version 1'):
        FeatureConfig.from_dict({**data, 'version': FEATURE_VERSION + 1})
    with pytest.raises(ValueError, match=r"unknown keys \['n_chroma'\]"):
        FeatureConfig.from_dict({**data, 'n_chroma': 12})
    without_fmax = {key: value for key, value in data.items() if key != 'fmax'}
    with pytest.raises(ValueError, match=r"missing keys \['fmax'\]"):
        FeatureConfig.from_dict(without_fmax)


@pytest.mark.parametrize(('changes', 'message'), [
    ({'kind': 'cqt'}, 'kind must be one of mel, spectral_set'),
    ({'hop_length': 0}, 'hop_length must be a positive integer'),
    ({'win_length': 1024}, 'win_length 1024 exceeds n_fft 512'),
    ({'window': 'no-such-window'}, "window 'no-such-window' is not a window"),
    ({'fmax': 0.0}, 'needs 0 <= fmin < fmax'),
    ({'db_reference': 'mean'}, 'db_reference must be one of max, unit'),
    ({'delta_width': 4}, 'delta_width must be odd'),
    ({'center': 1}, 'center must be true or false'),
    ({'top_db': float('nan')}, 'top_db must be a finite number'),
])
def test_feature_config_checks_its_values(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureConfig(**{'name': 'custom', 'kind': 'mel', **changes})


def test_normalizer_gives_zero_mean_unit_std_per_row(
        iemocap_features: list[np.ndarray]) -> None:
    batch = np.stack(iemocap_features)
    normalizer = Normalizer.fit(batch)
    assert normalizer.num_features == batch.shape[1]
    normalised = normalizer(batch)
    assert normalised.dtype == np.float32 and normalised.shape == batch.shape
    assert np.allclose(normalised.mean(axis=(0, 2)), 0.0, atol=1e-4)
    assert np.allclose(normalised.std(axis=(0, 2)), 1.0, atol=1e-4)
    assert np.allclose(normalizer(batch[1]), normalised[1])


def test_normalizer_floors_the_std_of_constant_rows() -> None:
    batch = np.zeros((2, 3, 5), dtype=np.float32)
    batch[:, 1] = np.arange(5)
    normalizer = Normalizer.fit(batch)
    assert normalizer.std[0] == np.float32(STD_FLOOR)
    normalised = normalizer(batch)
    assert np.all(np.isfinite(normalised)) and not np.any(normalised[:, 0])


def test_normalizer_round_trip_and_errors(iemocap_features: list[np.ndarray]) -> None:
    normalizer = Normalizer.fit(np.stack(iemocap_features))
    restored = Normalizer.from_dict(json.loads(json.dumps(normalizer.to_dict())))
    assert restored == normalizer
    assert np.array_equal(restored(iemocap_features[0]), normalizer(iemocap_features[0]))
    with pytest.raises(ValueError, match='F = 46, got'):
        normalizer(np.zeros((45, 157)))
    with pytest.raises(ValueError, match=r"expected keys \['mean', 'std'\]"):
        Normalizer.from_dict({'mean': [0.0]})
    with pytest.raises(ValueError, match='non-empty'):
        Normalizer.fit(np.zeros((46, 157)))
    with pytest.raises(ValueError, match='one equal, non-zero length'):
        Normalizer([0.0, 1.0], [1.0])


def test_front_end_from_any_input_matches_the_steps(ravdess_files: list[Path]) -> None:
    audio = AudioConfig(pad_mode='post')
    bare = FrontEnd(audio, feature_preset('mel128'))
    assert bare.feature_shape == (128, 626)
    raw = bare.extract_file(ravdess_files[0])
    waveform = fix_length(load_audio(ravdess_files[0]), FIVE_SECONDS, 'post')
    assert np.array_equal(raw, extract_features(waveform, feature_preset('mel128')))
    assert not np.array_equal(raw, FrontEnd(AudioConfig(), feature_preset('mel128'))
                              .extract_file(ravdess_files[0]))

    normalizer = Normalizer.fit(raw[np.newaxis])
    front_end = bare.with_normalizer(normalizer)
    assert np.array_equal(front_end.extract_file(ravdess_files[0]), normalizer(raw))
    assert np.array_equal(front_end.extract_file(ravdess_files[0], normalize=False), raw)

    stereo_48k = np.repeat(soxr.resample(load_audio(ravdess_files[0]), RATE, 48000)[:, None],
                           2, axis=1)
    int16 = np.round(stereo_48k * 32767).astype(np.int16)
    from_int16 = front_end(int16, 48000)
    assert from_int16.shape == (128, 626) and from_int16.dtype == np.float32
    # Same speech through 48 kHz int16 and back: the normalised mel bands agree closely.
    assert np.corrcoef(from_int16.ravel(), front_end.extract_file(ravdess_files[0]).ravel()
                       )[0, 1] > 0.99


def test_front_end_round_trip_and_checks(iemocap_features: list[np.ndarray]) -> None:
    normalizer = Normalizer.fit(np.stack(iemocap_features))
    front_end = FrontEnd(AudioConfig(pad_mode='center'), feature_preset('iemocap'), normalizer)
    data = json.loads(json.dumps(front_end.to_dict()))
    assert FrontEnd.from_dict(data) == front_end
    bare = FrontEnd(AudioConfig(), feature_preset('mel128'))
    assert FrontEnd.from_dict(bare.to_dict()) == bare
    assert FrontEnd.from_dict(bare.to_dict()) != front_end
    data['features']['version'] = FEATURE_VERSION + 1
    with pytest.raises(ValueError, match='computes feature version'):
        FrontEnd.from_dict(data)
    with pytest.raises(ValueError, match=r"unknown keys \['labels'\]"):
        FrontEnd.from_dict({**bare.to_dict(), 'labels': []})
    with pytest.raises(ValueError, match='normalizer covers 46 rows but feature set '
                                         "'mel128' gives 128"):
        FrontEnd(AudioConfig(), feature_preset('mel128'), normalizer)


@pytest.mark.parametrize('name', list(FEATURE_PRESETS))
def test_warm_up_runs_cleanly(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        FrontEnd(AudioConfig(), feature_preset(name)).warm_up()
