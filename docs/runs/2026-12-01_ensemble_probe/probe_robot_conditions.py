"""Probe: whether the chosen ensemble's gain holds on what the robot hears.

The members chosen by probe_ensemble.py (highest mean validation UA, both protocols: noise +
vad_cut + iemocap_features) against the shipped recipe alone, on the paper split and the five
speaker folds, in the conditions of the ship rule (config/recipe_sweep.yaml): whole files clean,
whole files under white and babble noise at 10 dB, and vad_node's cuts of clean files followed by
emotion_node's trailing silence. Noise and cuts are bench/noise_robustness.py's own (same seeds,
same talkers). Validation decides; test is reported (the cuts only). Clean whole files are
probe_ensemble.py's. One process per group of runs (RUN ... on the command line):

    .venv/bin/python docs/runs/2026-12-01_ensemble_probe/probe_robot_conditions.py \
        [--member2=PATTERN] RUN... > OUT.json

``--member2=runs/cpu_sweep/iemocap_vad_cut/{run}`` puts other runs in the third member's place
(the rule in docs/model_notes.md, "ensembles"), and scores clean validation files too.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'bench'))
import noise_robustness as bench  # noqa: E402

from ser_ros.core.audio import load_audio  # noqa: E402
from ser_ros.core.inference import EmotionRecognizer  # noqa: E402
from ser_ros.data.registry import load_corpus  # noqa: E402
from ser_ros.data.splits import split_part_indices  # noqa: E402

MEMBERS = {
    'noise (shipped)': 'runs/noise/{run}',
    'vad_cut': 'runs/cpu_sweep/vad_cut/{run}',
    'iemocap_features': 'runs/cpu_iemocap/A/{run}',
}
RUNS = sys.argv[1:]
CONDITIONS = {'validation': ('white_10dB', 'babble_10dB', 'vad_cut'), 'test': ('vad_cut',)}
if RUNS and RUNS[0].startswith('--member2='):
    MEMBERS['iemocap_features'] = RUNS.pop(0).split('=', 1)[1]
    CONDITIONS['validation'] = ('clean', *CONDITIONS['validation'])
SNR_DB = 10.0
RATE = bench.RATE

torch.set_num_threads(1)
corpus = load_corpus('ravdess', bench.DEFAULT_DATA, 7)
cutter = bench.VadCutter(bench.vad_node_config())
silence = bench.emotion_node_trailing_silence()


def conditions(waveforms: list[np.ndarray],
               wanted: tuple[str, ...]) -> dict[str, list[np.ndarray | None]]:
    """Make the audio of each wanted condition as bench/noise_robustness.py does."""
    heard = {'clean': list(waveforms)} if 'clean' in wanted else {}
    if 'vad_cut' in wanted:
        heard['vad_cut'] = [cutter.longest(bench.in_silence(w, RATE), RATE) for w in waveforms]
    if wanted == ('vad_cut',):
        return heard
    spans = [bench.speech_bounds(w, RATE, bench.SPEECH_TRIM_DB) for w in waveforms]
    talkers = [np.concatenate([waveforms[(n + step) % len(waveforms)]
                               for step in range(1, bench.BABBLE_VOICES + 1)])
               for n in range(len(waveforms))]
    for kind in ('white', 'babble'):
        heard[f'{kind}_10dB'] = [
            bench.add_noise(w, [span], SNR_DB, kind, n,
                            talkers=talkers[n] if kind == 'babble' else None)
            for n, (w, span) in enumerate(zip(waveforms, spans, strict=True))]
    return heard


def scores(probabilities: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """WA and UA (percent) of the most probable labels."""
    predictions = probabilities.argmax(axis=1)
    return {'wa': round(100 * accuracy_score(targets, predictions), 1),
            'ua': round(100 * balanced_accuracy_score(targets, predictions), 1)}


results = []
for run in RUNS:
    recognizers = {}
    for name, pattern in MEMBERS.items():
        whole = EmotionRecognizer.from_checkpoint(f'{pattern.format(run=run)}/model.pt',
                                                  device='cpu')
        cut = EmotionRecognizer.from_checkpoint(f'{pattern.format(run=run)}/model.pt',
                                                device='cpu', trailing_silence_s=silence)
        recognizers[name] = (whole, cut)
    labels = next(iter(recognizers.values()))[0].labels
    split = f'{MEMBERS["noise (shipped)"].format(run=run)}/split.json'
    for part, wanted in CONDITIONS.items():
        indices = split_part_indices(corpus, split, part)
        waveforms = [load_audio(corpus[i].path, RATE) for i in indices]
        targets = np.array([labels.index(corpus[i].label) for i in indices])
        for condition, heard in conditions(waveforms, wanted).items():
            kept = [n for n, samples in enumerate(heard) if samples is not None]
            outputs = {}
            for name, (whole, cut) in recognizers.items():
                recognizer = cut if condition == 'vad_cut' else whole
                assert recognizer.labels == labels
                outputs[name] = np.array([
                    [recognizer.predict(heard[n], RATE).probabilities[label] for label in labels]
                    for n in kept])
            row = {'run': run, 'part': part, 'condition': condition, 'files': len(kept)}
            row['shipped'] = scores(outputs['noise (shipped)'], targets[kept])
            row['ensemble'] = scores(np.mean(list(outputs.values()), axis=0), targets[kept])
            for name, values in outputs.items():
                row[name] = scores(values, targets[kept])
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
print(json.dumps({'members': MEMBERS, 'snr_db': SNR_DB, 'trailing_silence_s': silence,
                  'results': results}, indent=1))
