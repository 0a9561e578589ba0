"""End to end through the console scripts: ser_train on a small corpus, resume, ser_evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ser_ros.cli.evaluate import main as evaluate_main
from ser_ros.cli.train import main as train_main
from ser_ros.core.checkpoint import Checkpoint
from ser_ros.training.experiment import load_experiment
from ser_ros.training.model_card import main as model_card_main

REPO = Path(__file__).resolve().parents[2]
TINY = [
    'audio.duration_s=1.0',
    'model.conv_blocks=1', 'model.filters=[8]', 'model.window_frames=32',
    'model.window_hop=16', 'model.shared_blocks=1', 'model.lstm_units=8',
    'model.attention_units=8', 'training.batch_size=16', 'training.threads=1',
]


def _args(root: Path, run_dir: Path, cache: Path, *extra: str) -> list[str]:
    overrides = [f'data.root={root}', f'output.run_dir={run_dir}', f'output.cache_dir={cache}',
                 *TINY, *extra]
    args = ['--config', str(REPO / 'config' / 'train_ravdess.yaml'), '--quiet', '--no-plots',
            '--jobs', '1']
    for item in overrides:
        args += ['--set', item]
    return args


def test_train_resume_and_evaluate(small_corpus, tmp_path, capsys):
    cache = tmp_path / 'cache'
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    assert train_main(_args(small_corpus, straight, cache, 'training.max_epochs=2')) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['epochs_run'] == 2 and 0.0 <= summary['wa'] <= 1.0

    # Interrupted after one epoch, then the same command with the full budget resumes it.
    assert train_main(_args(small_corpus, resumed, cache, 'training.max_epochs=1')) == 0
    assert train_main(_args(small_corpus, resumed, cache, 'training.max_epochs=2')) == 0
    history = json.loads((resumed / 'history.json').read_text())
    assert [record['epoch'] for record in history['history']] == [1, 2]
    first = Checkpoint.load(straight / 'model.pt')
    second = Checkpoint.load(resumed / 'model.pt')
    for key, value in first.state_dict.items():
        assert torch.equal(value, second.state_dict[key]), key

    # The checkpoint describes itself: labels, front end, provenance of the split.
    assert first.labels == ('neutral', 'happy', 'sad', 'angry', 'fearful', 'disgust',
                            'surprised')
    assert first.front_end().audio.duration_s == 1.0
    assert 'paper' in first.provenance['split']

    out = tmp_path / 'report.json'
    code = evaluate_main(['--model', str(straight / 'model.pt'), '--data', str(small_corpus),
                          '--split', str(straight / 'split.json'), '--json', str(out),
                          '--device', 'cpu', '--jobs', '1'])
    assert code == 0
    report = json.loads(out.read_text())
    test_report = json.loads((straight / 'test_report.json').read_text())
    assert report['n'] == test_report['n'] == len(json.loads(
        (straight / 'split.json').read_text())['test_files'])
    assert report['confusion'] == test_report['confusion']
    assert set(report) >= {'wa', 'ua', 'per_class_recall', 'confusion', 'labels', 'n'}
    assert (straight / 'test_confusion.png').stat().st_size > 0


REGULARISED = ['training.lr_schedule=cosine', 'training.max_epochs=3', 'training.ema_decay=0.9',
               'training.mixup_alpha=0.4', 'training.label_smoothing=0.1',
               'training.weight_decay=0.01', 'training.augment.freq_warp=0.1',
               'training.augment.noise_probability=0.5',
               'training.augment.vad_cut_probability=0.5']


def test_regularised_recipe_resumes_to_the_same_weights(small_corpus, tmp_path, capsys):
    cache = tmp_path / 'cache'
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    assert train_main(_args(small_corpus, straight, cache, *REGULARISED)) == 0
    # A time budget this small stops after the first epoch; the rerun without it resumes.
    assert train_main(_args(small_corpus, resumed, cache, *REGULARISED,
                            'training.time_budget_s=0.001')) == 0
    cut = json.loads((resumed / 'history.json').read_text())
    assert len(cut['history']) == 1 and cut['stop_reason'] == 'time_budget'
    assert train_main(_args(small_corpus, resumed, cache, *REGULARISED)) == 0
    history = json.loads((resumed / 'history.json').read_text())
    assert [record['epoch'] for record in history['history']] == [1, 2, 3]
    assert history['stop_reason'] == 'max_epochs'
    assert json.loads((resumed / 'vad_cuts.json').read_text())['segmenter']['detector']
    first = Checkpoint.load(straight / 'model.pt')
    second = Checkpoint.load(resumed / 'model.pt')
    for key, value in first.state_dict.items():
        assert torch.equal(value, second.state_dict[key]), key


def test_changed_configuration_does_not_resume_a_foreign_state(small_corpus, tmp_path, capsys):
    run_dir, cache = tmp_path / 'run', tmp_path / 'cache'
    assert train_main(_args(small_corpus, run_dir, cache, 'training.max_epochs=1')) == 0
    code = train_main(_args(small_corpus, run_dir, cache, 'training.max_epochs=1',
                            'training.learning_rate=0.01'))
    assert code == 2
    assert 'another configuration' in capsys.readouterr().err


def test_bad_configuration_gives_a_clear_error(tmp_path, capsys):
    assert train_main(['--config', str(REPO / 'config' / 'train_ravdess.yaml'),
                       '--set', 'training.monitor=accuracy']) == 2
    assert 'training.monitor must be one of' in capsys.readouterr().err
    assert train_main(['--config', str(tmp_path / 'missing.yaml')]) == 2


def test_overrides_are_parsed_as_yaml_and_unknown_keys_refused():
    experiment = load_experiment(REPO / 'config' / 'train_ravdess.yaml',
                                 ['features.exclude=[rms]', 'training.max_epochs=3'])
    assert experiment.features.exclude == ('rms',) and experiment.training.max_epochs == 3
    with pytest.raises(ValueError, match='unknown keys'):
        load_experiment(REPO / 'config' / 'train_ravdess.yaml', ['training.epochs=3'])


def test_lr_patience_without_a_plateau_schedule_is_refused_not_ignored():
    config = REPO / 'config' / 'train_ravdess.yaml'
    plateau = load_experiment(config, ['training.lr_schedule=plateau', 'training.lr_patience=8'])
    assert plateau.training.lr_patience == 8
    for overrides in (['training.lr_patience=8'], ['training.lr_schedule=plateau'],
                      ['training.lr_schedule=cosine', 'training.lr_patience=8']):
        with pytest.raises(ValueError, match='lr_patience applies to lr_schedule plateau'):
            load_experiment(config, overrides)


def test_fingerprint_ignores_the_stopping_rule_but_not_the_recipe():
    config = REPO / 'config' / 'train_ravdess.yaml'
    base = load_experiment(config).fingerprint()
    assert load_experiment(config, ['training.max_epochs=9', 'training.patience=2',
                                    'output.run_dir=elsewhere']).fingerprint() == base
    assert load_experiment(config, ['features.exclude=[rms]']).fingerprint() != base
    assert load_experiment(config, ['training.seed=1']).fingerprint() != base
    # A cosine schedule's rates depend on max_epochs, so there it is part of the recipe.
    cosine = load_experiment(config, ['training.lr_schedule=cosine']).fingerprint()
    assert load_experiment(config, ['training.lr_schedule=cosine',
                                    'training.max_epochs=9']).fingerprint() != cosine
    # What the run reads from elsewhere (the VAD cuts' segmenter settings) counts too.
    experiment = load_experiment(config)
    assert experiment.fingerprint({'hangover_ms': 200.0}) != base
    assert experiment.fingerprint({'hangover_ms': 200.0}) != experiment.fingerprint(
        {'hangover_ms': 300.0})


def test_experiment_files_extend_a_base_file(tmp_path):
    speaker = load_experiment(REPO / 'config' / 'train_ravdess_speaker.yaml')
    paper = load_experiment(REPO / 'config' / 'train_ravdess.yaml')
    assert speaker.protocol.name == 'speaker' and paper.protocol.name == 'paper'
    assert speaker.model == paper.model and speaker.training == paper.training
    loop = tmp_path / 'loop.yaml'
    loop.write_text('base: loop.yaml\nexperiment: x\n')
    with pytest.raises(ValueError, match='extends itself'):
        load_experiment(loop)


def test_short_training_beats_chance_on_validation(ravdess_dir, tmp_path, capsys):
    """A real (small) run learns: validation UA well above chance (1/7) within 25 epochs."""
    corpus = tmp_path / 'ravdess'
    corpus.mkdir()
    for actor in ('Actor_01', 'Actor_02', 'Actor_03', 'Actor_04'):
        (corpus / actor).symlink_to(ravdess_dir / actor, target_is_directory=True)
    overrides = [f'data.root={corpus}', f'output.run_dir={tmp_path / "run"}',
                 f'output.cache_dir={tmp_path / "cache"}', 'audio.duration_s=2.5',
                 'model.conv_blocks=2', 'model.filters=[16, 16]', 'model.window_frames=64',
                 'model.window_hop=32', 'model.lstm_units=32', 'model.attention_units=32',
                 'training.max_epochs=25', 'training.patience=25', 'training.augment={}']
    args = ['--config', str(REPO / 'config' / 'train_ravdess.yaml'), '--quiet', '--no-plots',
            '--jobs', '2']
    for item in overrides:
        args += ['--set', item]
    assert train_main(args) == 0
    history = json.loads((tmp_path / 'run' / 'history.json').read_text())['history']
    chance = 1 / 7
    assert history[0]['val_ua'] < 0.2
    assert max(record['val_ua'] for record in history) >= chance + 0.1


def test_model_card_is_written_from_what_the_run_recorded(small_corpus, tmp_path, capsys):
    run_dir, models = tmp_path / 'run', tmp_path / 'models'
    assert train_main(_args(small_corpus, run_dir, tmp_path / 'cache',
                            'training.max_epochs=1')) == 0
    capsys.readouterr()
    assert model_card_main(['--run', str(run_dir), '--models', str(models),
                            '--name', 'tiny']) == 0
    card = (models / 'tiny.md').read_text()
    report = json.loads((run_dir / 'test_report.json').read_text())
    assert f'| {100 * report["wa"]:.1f} | {100 * report["ua"]:.1f} | {report["n"]} |' in card
    assert 'epochs run 1' in card and 'stopped by: max_epochs' in card
    assert (models / 'tiny_split.json').read_text() == (run_dir / 'split.json').read_text()
    shipped, trained = Checkpoint.load(models / 'tiny.pt'), Checkpoint.load(run_dir / 'model.pt')
    assert all(torch.equal(value, trained.state_dict[key])
               for key, value in shipped.state_dict.items())
    # An incomplete run folder is a clear error, not a half-written card.
    assert model_card_main(['--run', str(tmp_path / 'nothing'), '--models', str(models)]) == 2
    assert 'model_card:' in capsys.readouterr().err
