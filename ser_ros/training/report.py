"""Evaluation reports on disk (JSON + confusion PNG) and Markdown tables for the paper studies."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from numbers import Number
from pathlib import Path
from typing import Any

from ser_ros.training.metrics import EvaluationReport
from ser_ros.training.plots import plot_confusion

JSON_INDENT = 2
MISSING_CELL = '-'
REPORT_SUFFIX = '_report.json'
CONFUSION_SUFFIX = '_confusion.png'


def write_json(data: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a JSON document (creating the folder); refuses NaN, which JSON cannot hold."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=JSON_INDENT, allow_nan=False)
    target.write_text(text + '\n', encoding='utf-8')
    return target


def write_report(report: EvaluationReport, out_dir: str | os.PathLike[str], stem: str = 'test',
                 extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``<stem>_report.json`` and ``<stem>_confusion.png`` into ``out_dir``.

    ``extra`` adds fields to the JSON (for example the model and data paths); it may not
    overwrite the metric fields. Returns the JSON path and the PNG path.
    """
    if not stem or os.sep in stem or (os.altsep and os.altsep in stem):
        raise ValueError(f'stem must be a plain file-name prefix, got {stem!r}')
    data = report.to_dict()
    clashes = sorted(set(extra or {}) & set(data))
    if clashes:
        raise ValueError(f'extra fields {clashes} would overwrite report fields')
    data.update(extra or {})
    folder = Path(out_dir)
    json_path = write_json(data, folder / f'{stem}{REPORT_SUFFIX}')
    png_path = plot_confusion(report, folder / f'{stem}{CONFUSION_SUFFIX}')
    return json_path, png_path


def _cell(value: Any, float_format: str) -> str:
    if value is None:
        return MISSING_CELL
    if isinstance(value, float):
        return format(value, float_format)
    return str(value).replace('|', r'\|').replace('\n', ' ')


def _is_numeric(value: Any) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


def markdown_table(rows: Sequence[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str],
                   float_format: str = '.1f') -> str:
    """Render rows as a GitHub Markdown table; numeric columns are right-aligned.

    A row is a mapping from column name to value (absent names and None print as ``-``) or a
    sequence with one value per column. Floats use ``float_format`` (e.g. ``'.1f'`` for
    percentages, so our numbers and the paper's line up).
    """
    if not columns:
        raise ValueError('markdown_table needs at least one column')
    table: list[list[Any]] = []
    for index, row in enumerate(rows):
        if isinstance(row, Mapping):
            unknown = sorted(set(row) - set(columns))
            if unknown:
                raise ValueError(f'row {index} has keys {unknown} that are not columns')
            table.append([row.get(column) for column in columns])
        else:
            values = list(row)
            if len(values) != len(columns):
                raise ValueError(
                    f'row {index} has {len(values)} values for {len(columns)} columns'
                )
            table.append(values)
    numeric = [
        any(row[i] is not None for row in table)
        and all(row[i] is None or _is_numeric(row[i]) for row in table)
        for i in range(len(columns))
    ]
    lines = [
        '| ' + ' | '.join(_cell(column, float_format) for column in columns) + ' |',
        '|' + '|'.join('---:' if right else '---' for right in numeric) + '|',
    ]
    lines.extend('| ' + ' | '.join(_cell(value, float_format) for value in row) + ' |'
                 for row in table)
    return '\n'.join(lines) + '\n'
