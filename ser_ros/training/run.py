"""One experiment from configuration to shipped checkpoint: data, split, features, fit, evaluate.

Everything a run produces lands in its run folder: the resolved configuration, the split,
the per-epoch history, a resumable training state, the checkpoint (``model.pt``), the test
report (JSON + confusion PNG) and the paper's t-SNE pair. Rerunning the same command after an
interruption resumes from the last finished epoch.
"""

from __future__ import annotations

import os
import platform
import random
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from ser_ros.core.audio import AudioConfig
from ser_ros.core.checkpoint import Checkpoint, build_provenance
from ser_ros.core.features import FrontEnd, Normalizer, feature_preset
from ser_ros.core.heap import retain_freed_memory
from ser_ros.core.inference import bf16_supported, resolve_device
from ser_ros.core.model import ModelConfig, SerNet
from ser_ros.core.threads import limit_cpu_threads
from ser_ros.data.corpus import Corpus
from ser_ros.data.registry import load_corpus
from ser_ros.data.splits import Split, make_split
from ser_ros.training.augment import (
    AugmentConfig,
    CopyNoise,
    NoiseMixer,
    NoiseSource,
    noise_bank,
)
from ser_ros.training.experiment import Experiment
from ser_ros.training.feature_cache import WaveformTransform, cached_features
from ser_ros.training.fit import FitResult, FitSettings, fit, predict_logits
from ser_ros.training.metrics import EvaluationReport, evaluate_predictions
from ser_ros.training.noisy_copies import CutNoisyCopy, noisy_copies
from ser_ros.training.plots import plot_tsne_pair
from ser_ros.training.report import write_json, write_report
from ser_ros.training.vad_cuts import VadCutter, emotion_node_trailing_silence, vad_node_config

MODEL_FILE = 'model.pt'
STATE_FILE = 'train_state.pt'
# The segmenter settings a run's VAD-cut training examples were cut with.
VAD_CUTS_FILE = 'vad_cuts.json'
# The noisy copies of a run whose features NoiseMixer cannot mix noise into.
NOISY_COPIES_FILE = 'noisy_copies.json'
NOISY_COPIES_KEY = 'noisy_copies'
# t-SNE of 1,440 x 80,128 input values takes minutes; a stratified sample shows the same.
TSNE_MAX_POINTS = 400
# Training utterances whose spectrograms make the babble noise (see NoiseMixer).
BABBLE_SOURCES = 64


@dataclass
class RunResult:
    """Where a run wrote its outputs and what it measured on the test set."""

    run_dir: Path
    checkpoint: Path
    report: EvaluationReport
    fit: FitResult


def record_command(experiment: Experiment, argv: list[str]) -> Path:
    """Append the command line to the run folder's ``commands.txt`` (one line per start)."""
    run_dir = Path(experiment.output.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / 'commands.txt'
    with target.open('a') as handle:
        handle.write(shlex.join(argv) + '\n')
    return target


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (model initialisation and dropout)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def hardware_description(device: torch.device) -> str:
    """Short text naming the processor (and GPU) a run used."""
    if device.type == 'cuda':
        return f'{torch.cuda.get_device_name(device)} (CUDA), torch {torch.__version__}'
    return (f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, '
            f'{torch.get_num_threads()} torch threads, torch {torch.__version__}')


def build_front_end(experiment: Experiment) -> FrontEnd:
    """Audio and feature configuration of an experiment (no normalisation yet)."""
    return FrontEnd(AudioConfig(**experiment.audio),
                    feature_preset(experiment.features.preset, experiment.features.exclude))


def resolve_bf16(mode: str, device: torch.device) -> bool:
    """'auto' -> whether the device has native bf16; 'on' / 'off' as given."""
    return bf16_supported(device) if mode == 'auto' else mode == 'on'


def split_corpus(corpus: Corpus, experiment: Experiment) -> Split:
    """Apply the experiment's protocol to a loaded corpus."""
    protocol = experiment.protocol
    return make_split(corpus, protocol.name, protocol.seed, protocol.test_fraction,
                      protocol.validation_fraction, protocol.folds, protocol.fold)


def _tsne_sample(targets: np.ndarray, seed: int) -> np.ndarray:
    if len(targets) <= TSNE_MAX_POINTS:
        return np.arange(len(targets))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(targets), TSNE_MAX_POINTS, replace=False))


@torch.inference_mode()
def _embeddings(model: SerNet, features: torch.Tensor, device: torch.device,
                bf16: bool) -> np.ndarray:
    model.eval()
    outputs = []
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(features), 64):
            outputs.append(model.embed(features[start:start + 64].to(device)).float().cpu())
    return torch.cat(outputs).numpy()


def _mixes_in_features(front_end: FrontEnd) -> bool:
    """Whether NoiseMixer can add noise to these features (mel in dB under the loudest bin)."""
    features = front_end.features
    return features.kind == 'mel' and features.db_reference == 'max' and features.top_db is not None


def _noise_mixer(front_end: FrontEnd, normalizer: Normalizer, train_raw: np.ndarray,
                 seed: int) -> NoiseMixer:
    """Build the training noise of a mel front end: white, pink, babble of training speech."""
    rng = np.random.default_rng(seed)
    talkers = train_raw[np.sort(rng.choice(len(train_raw), min(BABBLE_SOURCES, len(train_raw)),
                                           replace=False))]
    rate = front_end.audio.sample_rate
    bank = noise_bank(lambda waveform: front_end.raw_features(waveform, rate),
                      front_end.audio.num_samples, talkers, rng)
    return NoiseMixer(normalizer.mean, normalizer.std, bank, front_end.features.top_db)


def run_experiment(experiment: Experiment, progress: bool = True, jobs: int = 0,
                   plots: bool = True) -> RunResult:
    """Train and evaluate one experiment; resume if its run folder holds a matching state."""
    settings = experiment.training
    limit_cpu_threads(settings.threads)
    run_dir = Path(experiment.output.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / 'config.yaml').write_text(yaml.safe_dump(experiment.to_dict(), sort_keys=False))

    corpus = load_corpus(experiment.data.corpus, experiment.data.root, experiment.data.classes)
    split = split_corpus(corpus, experiment)
    write_json(split.describe(corpus), run_dir / 'split.json')
    front_end = build_front_end(experiment).with_encoder_device(settings.device)
    raw = cached_features(corpus.paths, front_end, experiment.output.cache_dir, jobs, progress)
    normalizer = Normalizer.fit(raw[split.train])
    features = torch.from_numpy(normalizer(raw))
    targets = torch.from_numpy(corpus.targets)
    num_features, num_frames = front_end.feature_shape

    seed_everything(settings.seed)
    model_config = ModelConfig(num_classes=len(corpus.labels), num_features=num_features,
                               num_frames=num_frames, **experiment.model)
    model = SerNet(model_config)
    device = resolve_device(settings.device)
    bf16 = resolve_bf16(settings.bf16, device)
    if device.type == 'cpu':
        # Every step allocates and frees ~100 MB of activations: without this glibc hands them
        # back to the kernel and faults them in again (85 -> 48 s per bf16 epoch here).
        retain_freed_memory()
    if progress:
        tqdm.write(f'{model.describe()}\n{corpus.name}: train {len(split.train)}, validation '
                   f'{len(split.validation)}, test {len(split.test)} ({split.protocol} '
                   f'protocol); {hardware_description(device)}, bf16 {bf16}')
    augment = AugmentConfig.from_dict(settings.augment)
    cutter = (VadCutter(vad_node_config(), emotion_node_trailing_silence())
              if augment.vad_cut_probability else None)
    train_paths = [corpus.paths[index] for index in split.train]
    copies = (noisy_copies(train_paths, augment.noise_copies, settings.seed,
                           augment.noise_snr_min_db, augment.noise_snr_max_db,
                           front_end.audio.sample_rate)
              if augment.noise_probability and not _mixes_in_features(front_end) else [])
    if augment.noisy_cuts and not copies:
        raise ValueError('training.augment.noisy_cuts is for feature sets with noisy copies; '
                         f'{front_end.features.name} mixes noise into the VAD cuts already')
    inputs = dict(cutter.describe()) if cutter else {}
    if copies:
        inputs[NOISY_COPIES_KEY] = [copy.describe() for copy in copies]
    fit_settings = FitSettings.from_training(
        settings, device=device, bf16=bf16, fingerprint=experiment.fingerprint(inputs or None))
    noise: NoiseSource | None = None
    if copies:
        write_json({NOISY_COPIES_KEY: inputs[NOISY_COPIES_KEY]}, run_dir / NOISY_COPIES_FILE)

        def copy_features(transforms: list[WaveformTransform]) -> torch.Tensor:
            return torch.stack([torch.from_numpy(normalizer(cached_features(
                train_paths, front_end, experiment.output.cache_dir, jobs, progress,
                transform=transform))) for transform in transforms])

        noise = CopyNoise(copy_features(copies), copy_features(
            [CutNoisyCopy(copy, cutter) for copy in copies]) if augment.noisy_cuts else None)
    elif augment.noise_probability:
        noise = _noise_mixer(front_end, normalizer, raw[split.train], settings.seed)
    train_cuts = None
    if cutter is not None:
        # Every file's cut is cached (not only this split's): one cache serves all folds.
        write_json(cutter.describe(), run_dir / VAD_CUTS_FILE)
        cut_raw = cached_features(corpus.paths, front_end, experiment.output.cache_dir, jobs,
                                  progress, transform=cutter)
        train_cuts = torch.from_numpy(normalizer(cut_raw[split.train]))
    result = fit(model, (features[split.train], targets[split.train]),
                 (features[split.validation], targets[split.validation]), fit_settings,
                 state_path=run_dir / STATE_FILE, progress=progress, noise=noise,
                 train_cuts=train_cuts)
    write_json({'history': [asdict(record) for record in result.history],
                'best_epoch': result.best_epoch, 'epochs_run': result.epochs_run,
                'stopped_early': result.stopped_early, 'stop_reason': result.stop_reason,
                'seconds': result.seconds},
               run_dir / 'history.json')

    test_logits = predict_logits(model, features[split.test], device, bf16)
    report = evaluate_predictions(targets[split.test].numpy(),
                                  test_logits.argmax(dim=1).numpy(), corpus.labels)
    provenance = build_provenance(
        dataset=f'{corpus.name} ({experiment.data.root}, {len(corpus)} utterances, '
                f'speakers {", ".join(corpus.speakers)})',
        split=f'{split.protocol}: seed {split.seed}, train {len(split.train)}, validation '
              f'{len(split.validation)}, test {len(split.test)}'
              + (f', test units {", ".join(split.test_units)}' if split.test_units else ''),
        seed=settings.seed,
        metrics={'test_wa': report.wa, 'test_ua': report.ua},
        experiment=experiment.to_dict(), best_epoch=result.best_epoch,
        epochs_run=result.epochs_run, train_seconds=round(result.seconds, 1),
        hardware=hardware_description(device), bf16=bf16)
    checkpoint = Checkpoint.from_model(model.cpu(), front_end.audio, front_end.features,
                                       normalizer, corpus.labels, provenance)
    checkpoint_path = checkpoint.save(run_dir / MODEL_FILE)
    write_report(report, run_dir, 'test', extra={'protocol': split.protocol,
                                                 'best_epoch': result.best_epoch})
    if plots:
        _plot_tsne(model.to(device), features, targets, split, corpus.labels, run_dir, device,
                   bf16, settings.seed)
    if progress:
        tqdm.write(f'test: {report.summary()}; checkpoint {checkpoint_path}')
    return RunResult(run_dir, checkpoint_path, report, result)


def _plot_tsne(model: SerNet, features: torch.Tensor, targets: torch.Tensor, split: Split,
               labels: tuple[str, ...], run_dir: Path, device: torch.device, bf16: bool,
               seed: int) -> None:
    test_features = features[split.test]
    test_targets = targets[split.test].numpy()
    sample = _tsne_sample(test_targets, seed)
    embeddings = _embeddings(model, test_features[sample], device, bf16)
    plot_tsne_pair(test_features[sample].numpy(), embeddings, test_targets[sample], list(labels),
                   run_dir / 'tsne_features.png', run_dir / 'tsne_embeddings.png', seed)


def summarise(result: RunResult) -> dict[str, Any]:
    """Short JSON-able summary of a finished run."""
    return {'run_dir': str(result.run_dir), 'checkpoint': str(result.checkpoint),
            'wa': result.report.wa, 'ua': result.report.ua, 'n': result.report.n,
            'best_epoch': result.fit.best_epoch, 'epochs_run': result.fit.epochs_run,
            'seconds': round(result.fit.seconds, 1)}
