"""Validation UA of the six runs with the encoder in float32 and in int8 (CTranslate2, CPU).

The networks are unchanged (trained on float32 features); only the encoder's precision at
inference differs. Decides whether the CPU may run the encoder in int8 (docs/model_notes.md).

    .venv/bin/python docs/runs/2026-12-01_whisper_cpu/int8/compare.py > result.json
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ser_ros.core import speech_encoder
from ser_ros.core.inference import EmotionRecognizer
from ser_ros.data.registry import load_corpus
from ser_ros.training.metrics import evaluate_predictions

RUNS = Path('runs/whisper/noise_vad_cut')
DATA = Path('/work/shared/data/ravdess-16k')
LABELS = {str(item.path.relative_to(DATA)): item.label
          for item in load_corpus('ravdess', DATA, 7).utterances}
NAMES = ['ravdess_paper', *(f'ravdess_speaker_fold{k}' for k in range(5))]


def use(compute_type: str) -> None:
    """Make the CPU encoder run at ``compute_type`` from now on."""
    spec = dataclasses.replace(speech_encoder.SPEECH_ENCODERS['whisper_tiny_en'],
                               cpu_compute_type=compute_type)
    speech_encoder.SPEECH_ENCODERS = MappingProxyType({'whisper_tiny_en': spec})
    speech_encoder.load_encoder.cache_clear()


def main() -> int:
    """Print one JSON object: validation UA per run and compute type, and the means."""
    result = {}
    for compute_type in ('float32', 'int8_float32'):
        use(compute_type)
        uas = {}
        for name in NAMES:
            run = RUNS / name
            split = json.loads((run / 'split.json').read_text())
            recognizer = EmotionRecognizer.from_checkpoint(run / 'model.pt', device='cpu',
                                                           trailing_silence_s=0.0)
            labels = list(recognizer.labels)
            truth, predicted = [], []
            for relative in split['validation_files']:
                truth.append(labels.index(LABELS[relative]))
                predicted.append(labels.index(recognizer.predict_file(DATA / relative).label))
            report = evaluate_predictions(np.array(truth), np.array(predicted), labels)
            uas[name] = round(100 * report.ua, 2)
            print(compute_type, name, uas[name], file=sys.stderr)
        result[compute_type] = {'runs': uas, 'mean': round(float(np.mean(list(uas.values()))), 2)}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
