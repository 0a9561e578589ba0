"""Feature front end: named, versioned feature sets, normalisation, and the full audio path.

Two presets reproduce the paper (see /work/shared/docs/paper-reference-notes.md):

- ``mel128`` (RAVDESS): log-mel power spectrogram, 128 bands up to 4 kHz, STFT window 256
  (Hamming), hop 128, n_fft 512, centered frames -> (128, 626) for 5 s at 16 kHz; dB relative
  to the utterance's maximum, floor 80 dB below it.
- ``iemocap`` (Table I): per-frame spectral features at hop 512 (librosa's defaults otherwise:
  n_fft 2048, Hann) -> (46, 157) for 5 s. Rows, in the reference code's order: spectral
  centroid, spectral contrast, bandwidth, roll-off, ZCR, RMS, 20 MFCC, 20 delta-MFCC. Spectral
  contrast keeps only its first (lowest) band, as the reference code does, although librosa
  computes 7; ``contrast_bands_kept`` can widen that. Table I prints hop 5120 for the centroid,
  a typo: the 157-frame matrix needs every row at hop 512.

Beyond the paper, a ``speech_encoder`` set gives the frames of a frozen pretrained encoder
(:mod:`ser_ros.core.speech_encoder`): ``whisper_tiny_en``, Whisper tiny.en's last layer, 384 x
250 for 5 s, or ``whisper_tiny_en_blocks23``, its blocks 2 and 3, 768 x 250. Their STFT, mel and
dB fields hold Whisper's own log-mel settings.

Every librosa parameter that shapes the numbers is a field of :class:`FeatureConfig`, so a
checkpoint pins its features even if librosa's defaults change (librosa < 0.10 padded STFT
frames by reflection; we pad with zeros, librosa's current default, matching the zero padding
of the fixed-length window). ``FEATURE_VERSION`` changes whenever this module would compute
different numbers for the same configuration; older configurations are then refused.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from os import PathLike
from types import MappingProxyType
from typing import Any

import librosa
import numpy as np

from ser_ros.core import speech_encoder
from ser_ros.core.audio import (
    AudioConfig,
    fix_length,
    load_audio,
    require_exact_keys,
    to_mono_float,
)

FEATURE_VERSION = 1
FEATURE_KINDS = ('mel', 'spectral_set', 'speech_encoder')
# Feature groups of the spectral set, in row order; each can be excluded (the paper's Table II).
SPECTRAL_FEATURE_GROUPS = (
    'spectral_centroid',
    'spectral_contrast',
    'spectral_bandwidth',
    'spectral_rolloff',
    'zcr',
    'rms',
    'mfcc',
    'mfcc_delta',
)
DB_REFERENCES = ('max', 'unit')
STFT_PAD_MODES = ('constant', 'edge', 'reflect', 'symmetric')
DELTA_MODES = ('interp', 'nearest', 'mirror', 'constant', 'wrap')
MIN_DELTA_WIDTH = 3
# Normalised features divide by the per-row std; a constant row must not blow up.
STD_FLOOR = 1e-6
SAMPLE_RATE = AudioConfig().sample_rate
# FrontEnd.padding_column's probe: noise filling this fraction of the analysis window (so its
# first half is certainly padding), at this amplitude.
PADDING_PROBE_FRACTION = 0.25
PADDING_PROBE_LEVEL = 0.1


@dataclass(frozen=True)
class FeatureConfig:
    """A named, versioned feature set: what :func:`extract_features` computes.

    ``kind`` ``'mel'`` uses the STFT, mel and dB fields; ``'spectral_set'`` uses them all (the
    mel and dB fields shape the MFCCs); ``'speech_encoder'`` is named after a registered
    encoder (``speech_encoder.SPEECH_ENCODERS``) and its STFT, mel and dB fields are the
    encoder's log-mel input. ``db_reference`` ``'max'`` sets 0 dB at the utterance's
    loudest bin, ``'unit'`` at power 1.0 (librosa's MFCC default). ``excluded`` names
    ``SPECTRAL_FEATURE_GROUPS`` left out (spectral set only). Use :func:`feature_preset` rather
    than building one by hand.
    """

    name: str
    kind: str
    version: int = FEATURE_VERSION
    n_fft: int = 512
    win_length: int = 256
    hop_length: int = 128
    window: str = 'hamming'
    center: bool = True
    stft_pad_mode: str = 'constant'
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = 4000.0
    power: float = 2.0
    db_reference: str = 'max'
    top_db: float | None = 80.0
    n_mfcc: int = 20
    delta_width: int = 9
    delta_order: int = 1
    delta_mode: str = 'interp'
    contrast_fmin: float = 200.0
    contrast_n_bands: int = 6
    contrast_bands_kept: int = 1
    rolloff_percent: float = 0.85
    excluded: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f'FeatureConfig.name must be a non-empty string, got {self.name!r}')
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f'FeatureConfig {self.name!r}: kind must be one of '
                             f'{", ".join(FEATURE_KINDS)}, got {self.kind!r}')
        if self.version != FEATURE_VERSION:
            raise ValueError(
                f'FeatureConfig {self.name!r} has version {self.version!r}, but this ser_ros '
                f'computes feature version {FEATURE_VERSION}; the features would differ from '
                'the ones the model was trained on: retrain or use a matching ser_ros'
            )
        for key in ('n_fft', 'win_length', 'hop_length', 'n_mels', 'n_mfcc', 'delta_width',
                    'delta_order', 'contrast_n_bands', 'contrast_bands_kept'):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f'FeatureConfig.{key} must be a positive integer, got {value!r}')
            object.__setattr__(self, key, int(value))
        for key in ('fmin', 'power', 'contrast_fmin', 'rolloff_percent'):
            object.__setattr__(self, key, _finite_float(key, getattr(self, key)))
        for key in ('fmax', 'top_db'):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, _finite_float(key, getattr(self, key)))
        if not isinstance(self.center, bool):
            raise ValueError(f'FeatureConfig.center must be true or false, got {self.center!r}')
        self._check_values()
        if self.kind == 'speech_encoder':
            bands = speech_encoder.encoder_spec(self.name).input_bands
            if self.n_mels != bands:
                raise ValueError(f'FeatureConfig {self.name!r}: the encoder takes {bands} '
                                 f'log-mel bands, n_mels is {self.n_mels}')
            if self.top_db is None:
                raise ValueError(f'FeatureConfig {self.name!r}: a speech encoder needs top_db')
        object.__setattr__(self, 'excluded', self._canonical_exclusions())

    def _check_values(self) -> None:
        """Check ranges and names that librosa would otherwise reject late or obscurely."""
        if self.win_length > self.n_fft:
            raise ValueError(f'FeatureConfig.win_length {self.win_length} exceeds '
                             f'n_fft {self.n_fft}')
        try:
            librosa.filters.get_window(self.window, self.win_length)
        except Exception as error:  # scipy raises several types for an unknown window name.
            raise ValueError(f'FeatureConfig.window {self.window!r} is not a window scipy '
                             f'knows: {error}') from error
        choices = (('stft_pad_mode', STFT_PAD_MODES), ('db_reference', DB_REFERENCES),
                   ('delta_mode', DELTA_MODES))
        for key, allowed in choices:
            if getattr(self, key) not in allowed:
                raise ValueError(f'FeatureConfig.{key} must be one of {", ".join(allowed)}, '
                                 f'got {getattr(self, key)!r}')
        if self.fmin < 0 or (self.fmax is not None and self.fmax <= self.fmin):
            raise ValueError(f'FeatureConfig needs 0 <= fmin < fmax, got fmin {self.fmin}, '
                             f'fmax {self.fmax}')
        if self.power <= 0:
            raise ValueError(f'FeatureConfig.power must be positive, got {self.power}')
        if self.top_db is not None and self.top_db <= 0:
            raise ValueError(f'FeatureConfig.top_db must be positive or None, got {self.top_db}')
        if self.n_mfcc > self.n_mels:
            raise ValueError(f'FeatureConfig.n_mfcc {self.n_mfcc} exceeds n_mels {self.n_mels}')
        if self.delta_width < MIN_DELTA_WIDTH or self.delta_width % 2 == 0:
            raise ValueError(f'FeatureConfig.delta_width must be odd and >= {MIN_DELTA_WIDTH}, '
                             f'got {self.delta_width}')
        if self.contrast_fmin <= 0:
            raise ValueError(f'FeatureConfig.contrast_fmin must be positive, '
                             f'got {self.contrast_fmin}')
        if self.contrast_bands_kept > self.contrast_n_bands + 1:
            raise ValueError(f'FeatureConfig.contrast_bands_kept {self.contrast_bands_kept} '
                             f'exceeds the {self.contrast_n_bands + 1} contrast rows')
        if not 0 < self.rolloff_percent < 1:
            raise ValueError(f'FeatureConfig.rolloff_percent must lie in (0, 1), '
                             f'got {self.rolloff_percent}')

    def _canonical_exclusions(self) -> tuple[str, ...]:
        """Validate ``excluded`` and return it de-duplicated in row order."""
        excluded = self.excluded
        if isinstance(excluded, str) or not isinstance(excluded, (Sequence, frozenset, set)):
            raise ValueError(f'FeatureConfig.excluded must be a sequence of feature group '
                             f'names, got {excluded!r}')
        if excluded and self.kind != 'spectral_set':
            raise ValueError(f'FeatureConfig {self.name!r}: only a spectral_set can exclude '
                             f'feature groups, kind is {self.kind!r}')
        unknown = sorted(set(excluded) - set(SPECTRAL_FEATURE_GROUPS))
        if unknown:
            raise ValueError(f'unknown feature group(s) {unknown} to exclude; valid: '
                             f'{", ".join(SPECTRAL_FEATURE_GROUPS)}')
        if set(excluded) == set(SPECTRAL_FEATURE_GROUPS):
            raise ValueError('cannot exclude every feature group: no features would be left')
        return tuple(group for group in SPECTRAL_FEATURE_GROUPS if group in excluded)

    @property
    def groups(self) -> tuple[str, ...]:
        """Feature groups present in the output, in row order (``('mel',)`` for a mel set)."""
        if self.kind != 'spectral_set':
            return (self.kind,)
        return tuple(group for group in SPECTRAL_FEATURE_GROUPS if group not in self.excluded)

    def group_rows(self, group: str) -> int:
        """Rows that ``group`` contributes to the output (even if it is excluded)."""
        rows = {'mel': self.n_mels, 'spectral_contrast': self.contrast_bands_kept,
                'mfcc': self.n_mfcc, 'mfcc_delta': self.n_mfcc}
        if self.kind == 'speech_encoder' and group == 'speech_encoder':
            return speech_encoder.encoder_spec(self.name).dims
        if group not in SPECTRAL_FEATURE_GROUPS and group != 'mel':
            raise ValueError(f'unknown feature group {group!r}; valid: mel, speech_encoder, '
                             f'{", ".join(SPECTRAL_FEATURE_GROUPS)}')
        return rows.get(group, 1)

    @property
    def row_slices(self) -> dict[str, slice]:
        """Where each present group's rows lie in the output matrix."""
        slices, start = {}, 0
        for group in self.groups:
            slices[group] = slice(start, start + self.group_rows(group))
            start += self.group_rows(group)
        return slices

    @property
    def num_features(self) -> int:
        """Rows of the feature matrix (128 for ``mel128``, 46 for the full ``iemocap``)."""
        return sum(self.group_rows(group) for group in self.groups)

    def num_frames(self, num_samples: int) -> int:
        """Frames :func:`extract_features` gives for ``num_samples`` samples."""
        if self.kind == 'speech_encoder':
            return speech_encoder.encoder_frames(num_samples, self.hop_length)
        if self.center:
            return 1 + num_samples // self.hop_length
        if num_samples < self.n_fft:
            raise ValueError(f'{num_samples} samples are fewer than one uncentered frame '
                             f'of {self.n_fft}')
        return 1 + (num_samples - self.n_fft) // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (tuples as lists) for checkpoints and JSON."""
        data = asdict(self)
        data['excluded'] = list(self.excluded)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureConfig:
        """Rebuild from :meth:`to_dict` output; unknown or missing keys, wrong version refused."""
        require_exact_keys(cls, data)
        values = dict(data)
        values['excluded'] = tuple(values['excluded'])
        return cls(**values)


def _finite_float(key: str, value: Any) -> float:
    """Return ``value`` as float, or raise ValueError naming the FeatureConfig field."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not math.isfinite(value):
        raise ValueError(f'FeatureConfig.{key} must be a finite number, got {value!r}')
    return float(value)


def _whisper_log_mel(encoder: str) -> FeatureConfig:
    """Return the feature set of encoder ``encoder`` on Whisper's own log-mel input."""
    return FeatureConfig(name=encoder, kind='speech_encoder', n_fft=400, win_length=400,
                         hop_length=160, window='hann', stft_pad_mode='reflect', n_mels=80,
                         fmin=0.0, fmax=None, db_reference='max', top_db=80.0)


FEATURE_PRESETS: Mapping[str, FeatureConfig] = MappingProxyType({
    'mel128': FeatureConfig(
        name='mel128', kind='mel', n_fft=512, win_length=256, hop_length=128, window='hamming',
        n_mels=128, fmin=0.0, fmax=4000.0, db_reference='max', top_db=80.0,
    ),
    'iemocap': FeatureConfig(
        name='iemocap', kind='spectral_set', n_fft=2048, win_length=2048, hop_length=512,
        window='hann', n_mels=128, fmin=0.0, fmax=None, db_reference='unit', top_db=80.0,
        n_mfcc=20, delta_width=9, delta_order=1, delta_mode='interp',
    ),
    # Whisper's log-mel: 25 ms Hann windows every 10 ms, reflect padding, 80 bands up to 8 kHz,
    # 80 dB under the loudest bin; into the encoder's last layer, or its blocks 2 and 3.
    'whisper_tiny_en': _whisper_log_mel('whisper_tiny_en'),
    'whisper_tiny_en_blocks23': _whisper_log_mel('whisper_tiny_en_blocks23'),
})


def feature_preset(name: str, exclude: Sequence[str] = ()) -> FeatureConfig:
    """Return the named preset (``mel128``, ``iemocap``, ``whisper_tiny_en[_blocks23]``).

    A spectral set can leave groups out: ``exclude`` takes names from
    ``SPECTRAL_FEATURE_GROUPS`` (a single name may be passed as a string), e.g.
    ``feature_preset('iemocap', exclude=['rms'])`` for Table II.
    """
    if name not in FEATURE_PRESETS:
        raise ValueError(f'unknown feature preset {name!r}; presets: {", ".join(FEATURE_PRESETS)}')
    if isinstance(exclude, str):
        exclude = (exclude,)
    return replace(FEATURE_PRESETS[name], excluded=tuple(exclude))


def _check_waveform(waveform: np.ndarray) -> np.ndarray:
    """Return a contiguous 1-D float32 copy-free view, or raise ValueError."""
    array = np.asarray(waveform)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f'waveform must be floating point, got dtype {array.dtype} '
                         '(use ser_ros.core.audio.to_mono_float for integer samples)')
    if array.ndim != 1:
        raise ValueError(f'waveform must be mono with shape (n,), got {array.shape}')
    if array.size == 0:
        raise ValueError('waveform is empty: no audio to analyse')
    if not np.all(np.isfinite(array)):
        raise ValueError('waveform contains NaN or infinity')
    return np.ascontiguousarray(array, dtype=np.float32)


def _to_db(power: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Power spectrogram to dB with the configured reference and floor."""
    reference = np.max if config.db_reference == 'max' else 1.0
    return librosa.power_to_db(power, ref=reference, top_db=config.top_db)


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float,
               fmax: float | None) -> np.ndarray:
    """Librosa's mel filter bank, built once per setting (a fifth of an utterance's cost)."""
    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                fmax=fmax)
    basis.setflags(write=False)
    return basis


def _mel_power(spectrum: np.ndarray, config: FeatureConfig, sample_rate: int) -> np.ndarray:
    """Mel-band power from a magnitude spectrogram (librosa.feature.melspectrogram's sum)."""
    basis = _mel_basis(sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
    return basis @ spectrum ** config.power


def _spectral_set(y: np.ndarray, spectrum: np.ndarray, config: FeatureConfig,
                  sample_rate: int) -> dict[str, np.ndarray]:
    """Every present group of the spectral set, each as (rows, frames)."""
    shared = {'sr': sample_rate, 'n_fft': config.n_fft, 'hop_length': config.hop_length}
    frames = {'frame_length': config.n_fft, 'hop_length': config.hop_length,
              'center': config.center}
    groups = set(config.groups)
    rows: dict[str, np.ndarray] = {}
    if 'spectral_centroid' in groups:
        rows['spectral_centroid'] = librosa.feature.spectral_centroid(S=spectrum, **shared)
    if 'spectral_contrast' in groups:
        contrast = librosa.feature.spectral_contrast(
            S=spectrum, fmin=config.contrast_fmin, n_bands=config.contrast_n_bands, **shared)
        rows['spectral_contrast'] = contrast[:config.contrast_bands_kept]
    if 'spectral_bandwidth' in groups:
        rows['spectral_bandwidth'] = librosa.feature.spectral_bandwidth(S=spectrum, **shared)
    if 'spectral_rolloff' in groups:
        rows['spectral_rolloff'] = librosa.feature.spectral_rolloff(
            S=spectrum, roll_percent=config.rolloff_percent, **shared)
    if 'zcr' in groups:
        rows['zcr'] = librosa.feature.zero_crossing_rate(y, **frames)
    if 'rms' in groups:
        rows['rms'] = librosa.feature.rms(y=y, pad_mode=config.stft_pad_mode, **frames)
    if groups & {'mfcc', 'mfcc_delta'}:
        mfcc = librosa.feature.mfcc(
            S=_to_db(_mel_power(spectrum, config, sample_rate), config), n_mfcc=config.n_mfcc)
        if 'mfcc' in groups:
            rows['mfcc'] = mfcc
        if 'mfcc_delta' in groups:
            rows['mfcc_delta'] = librosa.feature.delta(
                mfcc, width=config.delta_width, order=config.delta_order,
                mode=config.delta_mode)
    return rows


def _silent_leading_frames(y: np.ndarray, config: FeatureConfig) -> int:
    """Leading STFT frames of a mel feature set that hold only exact zeros (the padding).

    With centred frames and zero padding, such a frame's spectrum is exactly 0 whatever comes
    after it, so :func:`extract_features` leaves those frames out of the STFT (on speech padded
    to 5 s, about as much work as the padding is long). Other settings return 0.
    """
    if config.kind != 'mel' or not config.center or config.stft_pad_mode != 'constant':
        return 0
    voiced = np.flatnonzero(y)
    first = int(voiced[0]) if voiced.size else y.shape[0]
    # librosa wants at least one whole n_fft of signal left.
    return max(0, min(first - config.n_fft // 2, y.shape[0] - config.n_fft) // config.hop_length)


def _encoder_features(y: np.ndarray, config: FeatureConfig, sample_rate: int,
                      encoder_device: str) -> np.ndarray:
    """Frames of the pretrained encoder that ``config`` names, over its own log-mel input."""
    basis = _mel_basis(sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
    log_mel = speech_encoder.whisper_log_mel(
        y, sample_rate, basis, n_fft=config.n_fft, win_length=config.win_length,
        hop_length=config.hop_length, window=config.window, pad_mode=config.stft_pad_mode,
        top_db=config.top_db)
    return speech_encoder.encode(config.name, log_mel, encoder_device)


def extract_features(waveform: np.ndarray, config: FeatureConfig,
                     sample_rate: int = SAMPLE_RATE, encoder_device: str = 'auto') -> np.ndarray:
    """Compute the feature matrix, float32 of shape ``(config.num_features, num_frames)``.

    ``waveform`` is mono float audio at ``sample_rate`` (use :class:`FrontEnd` to get there
    from any input); features are computed on it as given, whatever its length.
    ``encoder_device`` places a speech-encoder set's encoder ('auto' | 'cpu' | 'cuda[:N]').
    """
    y = _check_waveform(waveform)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or sample_rate <= 0:
        raise ValueError(f'sample_rate must be a positive integer in Hz, got {sample_rate!r}')
    nyquist = sample_rate / 2
    if config.fmax is not None and config.fmax > nyquist:
        raise ValueError(f'feature set {config.name!r} needs fmax {config.fmax} Hz, above the '
                         f'Nyquist frequency {nyquist} Hz of {sample_rate} Hz audio')
    frames = config.num_frames(y.shape[0])
    if 'mfcc_delta' in config.groups and frames < config.delta_width:
        raise ValueError(f'{frames} frames are too few for MFCC deltas of width '
                         f'{config.delta_width}; give more audio')
    if config.kind == 'speech_encoder':
        return _encoder_features(y, config, sample_rate, encoder_device)
    silent = _silent_leading_frames(y, config)
    spectrum = np.abs(librosa.stft(
        y[silent * config.hop_length:], n_fft=config.n_fft, hop_length=config.hop_length,
        win_length=config.win_length, window=config.window, center=config.center,
        pad_mode=config.stft_pad_mode,
    ))
    if silent:
        spectrum = np.concatenate(
            (np.zeros((spectrum.shape[0], silent), spectrum.dtype), spectrum), axis=1)
    if config.kind == 'mel':
        matrix = _to_db(_mel_power(spectrum, config, sample_rate), config)
    else:
        rows = _spectral_set(y, spectrum, config, sample_rate)
        matrix = np.concatenate([rows[group] for group in config.groups], axis=0)
    return np.ascontiguousarray(matrix, dtype=np.float32)


class Normalizer:
    """Per-feature-row z-score: one mean and std per row over all training utterances and frames.

    The reference code keeps a mean and std per (row, frame position). Per-row statistics are
    a deliberate change: they do not tie the normalisation to where speech sits in the fixed
    window, which matters on the robot, whose voice-activity cuts place speech differently
    from the corpus files. Standard deviations are floored at ``STD_FLOOR``.
    """

    def __init__(self, mean: Sequence[float] | np.ndarray,
                 std: Sequence[float] | np.ndarray) -> None:
        mean_array = np.asarray(mean, dtype=np.float64)
        std_array = np.asarray(std, dtype=np.float64)
        if mean_array.ndim != 1 or mean_array.size == 0 or mean_array.shape != std_array.shape:
            raise ValueError(f'Normalizer needs 1-D mean and std of one equal, non-zero length, '
                             f'got shapes {mean_array.shape} and {std_array.shape}')
        if not (np.all(np.isfinite(mean_array)) and np.all(np.isfinite(std_array))):
            raise ValueError('Normalizer mean and std must be finite')
        if np.any(std_array < 0):
            raise ValueError('Normalizer std must not be negative')
        self.mean = mean_array.astype(np.float32)
        self.std = np.maximum(std_array, STD_FLOOR).astype(np.float32)
        # Read-only, so a FrontEnd (frozen) that holds this cannot change under a checkpoint.
        self.mean.flags.writeable = False
        self.std.flags.writeable = False

    @classmethod
    def fit(cls, features: np.ndarray) -> Normalizer:
        """Statistics of a training batch ``(N, F, T)``, per row F over utterances and frames."""
        batch = np.asarray(features)
        if batch.ndim != 3 or 0 in batch.shape:
            raise ValueError(f'Normalizer.fit needs a non-empty (N, F, T) batch, '
                             f'got shape {batch.shape}')
        if not np.all(np.isfinite(batch)):
            raise ValueError('Normalizer.fit: the batch contains NaN or infinity')
        mean = batch.mean(axis=(0, 2), dtype=np.float64)
        # Two passes, one utterance at a time: exact, and no float64 copy of the whole batch.
        squares = np.zeros_like(mean)
        for matrix in batch:
            squares += np.square(matrix - mean[:, np.newaxis]).sum(axis=1)
        std = np.sqrt(squares / (batch.shape[0] * batch.shape[2]))
        return cls(mean, std)

    @property
    def num_features(self) -> int:
        """Rows the statistics cover."""
        return self.mean.shape[0]

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Normalise ``(F, T)`` or ``(N, F, T)`` features; returns float32."""
        array = np.asarray(features)
        if array.ndim not in (2, 3) or array.shape[-2] != self.num_features:
            raise ValueError(f'Normalizer for {self.num_features} rows needs (F, T) or '
                             f'(N, F, T) with F = {self.num_features}, got {array.shape}')
        scaled = (array - self.mean[:, np.newaxis]) / self.std[:, np.newaxis]
        return scaled.astype(np.float32, copy=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Normalizer):
            return NotImplemented
        return bool(np.array_equal(self.mean, other.mean) and np.array_equal(self.std, other.std))

    __hash__ = None  # type: ignore[assignment]  # mutable arrays: not hashable.

    def __repr__(self) -> str:
        return f'Normalizer(num_features={self.num_features})'

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists (JSON-able) of the statistics."""
        return {'mean': self.mean.tolist(), 'std': self.std.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalizer:
        """Rebuild from :meth:`to_dict` output; unknown or missing keys are refused."""
        expected = {'mean', 'std'}
        if not isinstance(data, Mapping) or set(data) != expected:
            keys = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(f'Normalizer: expected keys {sorted(expected)}, got {keys}')
        return cls(data['mean'], data['std'])


@dataclass(frozen=True)
class FrontEnd:
    """Everything between raw audio and the network: resample, fix length, extract, normalise.

    A checkpoint stores one (``to_dict``) so inference computes exactly the training features.
    ``encoder_device`` is where a speech-encoder set's encoder runs ('auto' | 'cpu' |
    'cuda[:N]'): a choice of the process that uses the front end, not stored.
    """

    audio: AudioConfig
    features: FeatureConfig
    normalizer: Normalizer | None = None
    encoder_device: str = field(default='auto', compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.audio, AudioConfig) or not isinstance(self.features,
                                                                     FeatureConfig):
            raise ValueError('FrontEnd needs an AudioConfig and a FeatureConfig')
        speech_encoder.check_device(self.encoder_device)
        if self.normalizer is not None and \
                self.normalizer.num_features != self.features.num_features:
            raise ValueError(
                f'FrontEnd: normalizer covers {self.normalizer.num_features} rows but feature '
                f'set {self.features.name!r} gives {self.features.num_features}'
            )

    @property
    def feature_shape(self) -> tuple[int, int]:
        """``(F, T)`` of every output (e.g. (128, 626) for mel128 over 5 s)."""
        return (self.features.num_features, self.features.num_frames(self.audio.num_samples))

    def prepare(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono float32 at the configured rate and exactly the configured length."""
        mono = to_mono_float(waveform, sample_rate, self.audio.sample_rate)
        return fix_length(mono, self.audio.num_samples, self.audio.pad_mode)

    def raw_features(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        """Features before normalisation (what :meth:`Normalizer.fit` is fitted on)."""
        return extract_features(self.prepare(waveform, sample_rate), self.features,
                                self.audio.sample_rate, self.encoder_device)

    def __call__(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        """Normalised float32 features ``(F, T)`` of int16 or float audio at any rate."""
        matrix = self.raw_features(waveform, sample_rate)
        return matrix if self.normalizer is None else self.normalizer(matrix)

    def extract_file(self, path: str | PathLike[str], normalize: bool = True) -> np.ndarray:
        """Features ``(F, T)`` of an audio file (normalised unless ``normalize`` is False)."""
        waveform = load_audio(path, self.audio.sample_rate)
        if normalize:
            return self(waveform, self.audio.sample_rate)
        return self.raw_features(waveform, self.audio.sample_rate)

    def with_normalizer(self, normalizer: Normalizer | None) -> FrontEnd:
        """Return this front end with other normalisation statistics."""
        return replace(self, normalizer=normalizer)

    def with_encoder_device(self, device: str) -> FrontEnd:
        """Return this front end with its encoder (if it has one) on ``device``."""
        return replace(self, encoder_device=device)

    def runtime(self) -> dict[str, str]:
        """Return what the features depend on beyond the stored configuration (cache keys).

        A speech-encoder set's device and precision (loads the encoder); nothing for others.
        """
        if self.features.kind == 'speech_encoder':
            return speech_encoder.encoder_runtime(self.features.name, self.encoder_device)
        return {}

    def padding_column(self) -> np.ndarray | None:
        """Normalised features of one frame of the zeros that 'pre' padding puts before speech.

        None when padding does not give identical columns (pad modes other than 'pre', or a
        feature set whose padding frames differ). A short noise probe is used because the
        features of pure silence are referenced to silence itself (mel: 0 dB, not the floor).
        With dB relative to the loudest bin, padding sits on the floor (``top_db`` under it)
        for any utterance at a speaking level; a whisper-quiet one pads with other values and
        simply does not match.
        """
        if self.audio.pad_mode != 'pre':
            return None
        probe_samples = int(self.audio.num_samples * PADDING_PROBE_FRACTION)
        probe = np.random.default_rng(0).standard_normal(probe_samples).astype(np.float32)
        features = self(PADDING_PROBE_LEVEL * probe, self.audio.sample_rate)
        leading = features[:, :features.shape[1] // 2]
        if not np.array_equal(leading, np.broadcast_to(leading[:, :1], leading.shape)):
            return None
        return leading[:, 0].copy()

    def warm_up(self) -> None:
        """Run one extraction on silence so numba compiles now, not on the first utterance."""
        silence = np.zeros(self.audio.num_samples, dtype=np.float32)
        self(silence, self.audio.sample_rate)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dictionary (JSON-able) for checkpoints."""
        return {
            'audio': self.audio.to_dict(),
            'features': self.features.to_dict(),
            'normalizer': None if self.normalizer is None else self.normalizer.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrontEnd:
        """Rebuild from :meth:`to_dict` output; unknown or missing keys are refused."""
        require_exact_keys(cls, data, runtime=('encoder_device',))
        normalizer = data['normalizer']
        return cls(
            audio=AudioConfig.from_dict(data['audio']),
            features=FeatureConfig.from_dict(data['features']),
            normalizer=None if normalizer is None else Normalizer.from_dict(normalizer),
        )
