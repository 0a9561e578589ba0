"""Small helpers shared by the bench scripts: timing, percentiles, machine facts, output.

Every bench script prints one JSON object (the machine-readable result) and a short human table
(on stderr, so ``script | jq`` works). Keep this module generic: no ser_ros imports.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

import numpy as np

MS_PER_SECOND = 1000.0


class Stopwatch:
    """Accumulate wall-clock seconds over several ``with watch.time():`` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.laps: list[float] = []

    @contextmanager
    def time(self) -> Iterator[None]:
        """Time the block and add it to the total (and to ``laps``)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            lap = time.perf_counter() - started
            self.seconds += lap
            self.laps.append(lap)


def timed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Call ``function`` and return its result and the wall-clock seconds it took."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 95),
                digits: int = 2) -> dict[str, float | None]:
    """Return ``{'p50': ..., 'p95': ...}`` (None for an empty sequence), rounded to ``digits``."""
    if len(values) == 0:
        return {f'p{point}': None for point in points}
    array = np.asarray(values, dtype=np.float64)
    return {f'p{point}': round(float(np.percentile(array, point)), digits) for point in points}


def machine() -> dict[str, Any]:
    """Facts that make a timing comparable: date, CPU, cores, Python and key library versions."""
    info: dict[str, Any] = {
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'host_cpu': _cpu_name(),
        'cores': os.cpu_count(),
        'machine': platform.machine(),
        'python': platform.python_version(),
        # Other work on the machine (e.g. a training run) slows every timing: record it.
        'load_avg_1m': round(os.getloadavg()[0], 2) if hasattr(os, 'getloadavg') else None,
    }
    return info


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as handle:
            for line in handle:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Format rows as a plain fixed-width text table (numbers as given, None as '-')."""
    cells = [[str(h) for h in header]] + [['-' if v is None else str(v) for v in row]
                                          for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ['  '.join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
             for row in cells]
    lines.insert(1, '  '.join('-' * width for width in widths))
    return '\n'.join(lines)


def emit(result: dict[str, Any], human: str, stream: TextIO | None = None) -> None:
    """Print ``result`` as one JSON object on stdout and ``human`` on ``stream`` (stderr)."""
    print(human, file=stream if stream is not None else sys.stderr)
    print(json.dumps(result, sort_keys=False))
