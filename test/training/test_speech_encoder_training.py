"""ser_train with the pretrained encoder's config: trains the pooled head, and the model runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ser_ros.cli.train import main as train_main
from ser_ros.core.inference import EmotionRecognizer

REPO = Path(__file__).resolve().parents[2]


def test_the_whisper_recipe_trains_and_its_model_predicts(small_corpus: Path, tmp_path: Path,
                                                          ravdess_files: list[Path],
                                                          capsys) -> None:
    run_dir = tmp_path / 'run'
    args = ['--config', str(REPO / 'config' / 'train_ravdess_whisper.yaml'), '--quiet',
            '--no-plots', '--jobs', '1']
    for item in (f'data.root={small_corpus}', f'output.run_dir={run_dir}',
                 f'output.cache_dir={tmp_path / "cache"}', 'audio.duration_s=2.0',
                 'training.max_epochs=30', 'training.threads=1'):
        args += ['--set', item]
    assert train_main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    history = json.loads((run_dir / 'history.json').read_text())['history']
    # Seven classes: chance is 1/7; the head on the encoder's frames learns well above it
    # (0.74 here).
    assert max(record['val_accuracy'] for record in history) > 0.5, history
    assert 0.0 <= summary['wa'] <= 1.0

    recognizer = EmotionRecognizer.from_checkpoint(run_dir / 'model.pt', device='cpu')
    prediction = recognizer.predict_file(ravdess_files[0])
    probabilities = np.array(list(prediction.probabilities.values()))
    assert probabilities.shape == (7,)
    assert abs(probabilities.sum() - 1.0) < 1e-4
