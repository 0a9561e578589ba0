"""Probe (validation only): which layer of Whisper tiny.en's encoder carries emotion best.

The package's feature set took the encoder's last layer (CTranslate2 gives no other). Here the
encoder runs in torch from the same weights (ser_ros/core/whisper_torch.py, checked against
CTranslate2 in float32: max difference 4e-4), on the package's 5 s window, and each layer's
frames are
pooled (mean and standard deviation, 768 numbers). Classifier and splits are
bench/peers_opensmile.py's (standardised logistic regression, C by validation UA); only the
validation UA is printed, the test parts are never scored.

    .venv/bin/python docs/runs/2026-12-01_whisper_layers/probe_layers.py extract POOLED.npy
    .venv/bin/python docs/runs/2026-12-01_whisper_layers/probe_layers.py score POOLED.npy
Layer 0 is the convolutions' output with the positional encoding, 1-4 the blocks' outputs,
5 the last block after the final layer norm (what the package uses).
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'bench'))
import peers_opensmile as peers  # noqa: E402

from ser_ros.core import speech_encoder  # noqa: E402
from ser_ros.core.audio import load_audio  # noqa: E402
from ser_ros.core.features import _mel_basis  # noqa: E402
from ser_ros.core.whisper_torch import WhisperEncoderTorch  # noqa: E402
from ser_ros.data.registry import load_corpus  # noqa: E402
from ser_ros.data.splits import make_split  # noqa: E402
from ser_ros.training.experiment import load_experiment  # noqa: E402
from ser_ros.training.run import build_front_end  # noqa: E402

SAMPLE_RATE = 16000
LAYER_SETS = {'0': [0], '1': [1], '2': [2], '3': [3], '4': [4], '5 (package)': [5],
              '2+3': [2, 3], '3+4': [3, 4], '2+5': [2, 5], '3+5': [3, 5], '1-5': [1, 2, 3, 4, 5],
              'mean 1-4': 'mean'}


def extract(path: str) -> None:
    """Pooled frames of every layer for every corpus file, (files, 6, 768)."""
    torch.set_num_threads(2)
    front_end = build_front_end(load_experiment('config/train_ravdess_whisper.yaml', []))
    config = front_end.features
    corpus = load_corpus('ravdess', peers.DEFAULT_DATA, 7)
    basis = _mel_basis(SAMPLE_RATE, config.n_fft, config.n_mels, config.fmin, config.fmax)
    encoder = WhisperEncoderTorch(speech_encoder.installed_model_dir(
        speech_encoder.encoder_spec('whisper_tiny_en')) / 'model.bin', (0, 1, 2, 3, 4), 6)
    pooled = np.zeros((len(corpus), 6, 768), np.float32)
    for index, file in enumerate(corpus.paths):
        waveform = front_end.prepare(load_audio(file, SAMPLE_RATE), SAMPLE_RATE)
        log_mel = speech_encoder.whisper_log_mel(
            waveform, SAMPLE_RATE, basis, n_fft=config.n_fft, win_length=config.win_length,
            hop_length=config.hop_length, window=config.window, pad_mode=config.stft_pad_mode,
            top_db=config.top_db)
        outputs = encoder(torch.from_numpy(log_mel[None]))
        outputs.append(encoder.final_norm(outputs[-1]))   # what CTranslate2 returns
        for layer, frames in enumerate(outputs):
            std, mean = torch.std_mean(frames[0], dim=0, correction=0)
            pooled[index, layer] = torch.cat((mean, std)).numpy()
    np.save(path, pooled)


def score(path: str) -> None:
    """Print the linear probe's validation UA per layer set, paper split and speaker folds."""
    pooled = np.load(path)
    settings = peers.protocol_settings()
    corpus = load_corpus('ravdess', peers.DEFAULT_DATA, settings['classes'])
    common = {key: settings[key] for key in ('seed', 'test_fraction', 'validation_fraction',
                                             'folds')}
    splits = {'paper': make_split(corpus, 'paper', **common)}
    for fold in range(settings['folds']):
        splits[f'fold{fold}'] = make_split(corpus, 'speaker', fold=fold, **common)
    targets, labels = corpus.targets, list(corpus.labels)
    for name, layers in LAYER_SETS.items():
        x = (pooled[:, 1:5].mean(axis=1) if layers == 'mean'
             else pooled[:, layers].reshape(len(pooled), -1))
        row = {'layers': name}
        for split_name, split in splits.items():
            started = time.perf_counter()
            _, c_value, val_ua = peers.fit_classifier(
                x[split.train], targets[split.train], x[split.validation],
                targets[split.validation], labels)
            row[split_name] = round(100 * val_ua, 1)
            row[split_name + '_C'] = c_value
            row['seconds'] = round(row.get('seconds', 0) + time.perf_counter() - started, 1)
        row['folds_mean'] = round(float(np.mean([row[f'fold{f}'] for f in range(5)])), 1)
        print(json.dumps(row), flush=True)


if __name__ == '__main__':
    {'extract': extract, 'score': score}[sys.argv[1]](sys.argv[2])
