"""The paper's study tables: one training run per row, our numbers next to the paper's.

The tables, their rows and the paper's values live in ``config/study.yaml``; this module only
runs them and writes the Markdown table, so a new ablation is a few lines of YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ser_ros.training.experiment import Experiment, load_experiment
from ser_ros.training.report import markdown_table, write_json
from ser_ros.training.run import RunResult, run_experiment

PERCENT = 100.0


@dataclass(frozen=True)
class StudyRow:
    """One row of a study table: a name, its overrides and the paper's WA (%) if any."""

    id: str
    name: str
    overrides: tuple[str, ...]
    paper_wa: float | None


@dataclass(frozen=True)
class StudyTable:
    """A table of the study: title, rows, overrides shared by every row."""

    key: str
    title: str
    rows: tuple[StudyRow, ...]
    overrides: tuple[str, ...] = ()
    quick_overrides: tuple[str, ...] = ()
    paper_note: str = ''


@dataclass(frozen=True)
class Study:
    """The study file: base experiment, where runs go, and the tables."""

    base_config: Path
    output_root: Path
    quick_overrides: tuple[str, ...]
    tables: Mapping[str, StudyTable]


def load_study(path: str | Path) -> Study:
    """Read ``config/study.yaml`` (or another file of that shape)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f'cannot read study file {path}: {error}') from error
    try:
        tables = {}
        for key, table in data['tables'].items():
            rows = tuple(StudyRow(str(row['id']), str(row['name']), tuple(row.get('set', ())),
                                  row.get('paper_wa')) for row in table['rows'])
            tables[key] = StudyTable(key, table['title'], rows, tuple(table.get('overrides', ())),
                                     tuple(table.get('quick_overrides', ())),
                                     table.get('paper_note', ''))
        return Study(path.parent / data['base_config'], Path(data['output_root']),
                     tuple(data.get('quick_overrides', ())), tables)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f'study file {path} is malformed: {error!r}') from error


def row_experiment(study: Study, table: StudyTable, row: StudyRow, quick: bool,
                   extra: Sequence[str] = ()) -> Experiment:
    """Build one row's experiment: base config, table, quick, row and command-line overrides."""
    run_dir = study.output_root / table.key / row.id
    overrides = [*table.overrides]
    if quick:
        overrides += [*study.quick_overrides, *table.quick_overrides]
        run_dir = run_dir.with_name(f'{row.id}-quick')
    overrides += [*row.overrides, f'output.run_dir={run_dir}', f'experiment={table.key}_{row.id}',
                  *extra]
    return load_experiment(study.base_config, overrides)


def run_table(study: Study, key: str, quick: bool = False, rows: Sequence[str] = (),
              extra: Sequence[str] = (), progress: bool = True, jobs: int = 0,
              runner: Callable[[Experiment], RunResult] | None = None) -> list[dict[str, Any]]:
    """Run the rows of table ``key`` (all, or those named in ``rows``); return one record each."""
    if key not in study.tables:
        raise ValueError(f'unknown table {key!r}; tables: {", ".join(study.tables)}')
    table = study.tables[key]
    known = [row.id for row in table.rows]
    unknown = sorted(set(rows) - set(known))
    if unknown:
        raise ValueError(f'{key} has no rows {unknown}; rows: {", ".join(known)}')
    runner = runner or (lambda experiment: run_experiment(experiment, progress=progress,
                                                          jobs=jobs, plots=False))
    records = []
    for row in table.rows:
        if rows and row.id not in rows:
            continue
        experiment = row_experiment(study, table, row, quick, extra)
        result = runner(experiment)
        records.append({
            'id': row.id, 'name': row.name, 'paper_wa': row.paper_wa,
            'wa': result.report.wa, 'ua': result.report.ua, 'n': result.report.n,
            'epochs': result.fit.epochs_run, 'best_epoch': result.fit.best_epoch,
            'seconds': round(result.fit.seconds, 1), 'run_dir': str(result.run_dir),
            'protocol': experiment.protocol.name,
        })
    return records


def table_markdown(table: StudyTable, records: Sequence[Mapping[str, Any]],
                   command: str) -> str:
    """Markdown table of a study with the command that produced it."""
    rows = [[record['name'],
             '-' if record['paper_wa'] is None else f"{record['paper_wa']:.0f}",
             f"{PERCENT * record['wa']:.1f}", f"{PERCENT * record['ua']:.1f}",
             record['n'], f"{record['best_epoch']}/{record['epochs']}",
             f"{record['seconds']:.0f}"] for record in records]
    columns = ['Setting', 'Paper WA %', 'Our WA %', 'Our UA %', 'Test n', 'Best/run epochs',
               'Train s']
    note = f'\n\nPaper column: {table.paper_note}.' if table.paper_note else ''
    protocol = records[0]['protocol'] if records else ''
    return (f'### {table.title}\n\n{markdown_table(rows, columns)}\n\nProtocol: {protocol}. '
            f'Command: `{command}`{note}\n')


def write_table(table: StudyTable, records: Sequence[Mapping[str, Any]], command: str,
                out_dir: str | Path) -> Path:
    """Write ``<table>.md`` and ``<table>.json`` into ``out_dir``; return the Markdown path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json({'table': table.key, 'command': command, 'rows': list(records)},
               out_dir / f'{table.key}.json')
    target = out_dir / f'{table.key}.md'
    target.write_text(table_markdown(table, records, command))
    return target
