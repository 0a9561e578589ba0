"""Lint and docstring checks as tests, the way ament packages run ament_flake8 / ament_pep257.

Ruff runs once with the repository's ruff.toml (so its ignores and per-file rules hold), from
the interpreter's own environment; the docstring rules (D) are reported by their own test and
everything else by the lint test.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKED_PATHS = ('ser_ros', 'test', 'launch', 'setup.py')
# pydocstyle codes are D plus digits (DTZ, DJ, ... are other plugins).
DOCSTRING_CODE = re.compile(r'D\d+')
RUFF_TIMEOUT_S = 120


def ruff_command() -> list[str]:
    """Ruff from this interpreter's bin folder, else as a module of this interpreter."""
    beside_python = Path(sys.executable).parent / 'ruff'
    if beside_python.is_file():
        return [str(beside_python)]
    if importlib.util.find_spec('ruff') is None:
        pytest.fail(f'ruff is not installed for {sys.executable} (see requirements/test.in)')
    return [sys.executable, '-m', 'ruff']


@cache
def ruff_findings() -> tuple[dict, ...]:
    """Run `ruff check` over the checked paths once; return its findings (JSON records)."""
    paths = [p for p in CHECKED_PATHS if (REPO_ROOT / p).exists()]
    result = subprocess.run(
        [*ruff_command(), 'check', '--no-cache', '--config', str(REPO_ROOT / 'ruff.toml'),
         '--output-format', 'json', *paths],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUFF_TIMEOUT_S, check=False)
    # Exit status 1 means findings; anything else is ruff itself failing.
    if result.returncode not in (0, 1):
        pytest.fail(f'ruff failed (exit status {result.returncode}):\n{result.stderr}')
    return tuple(json.loads(result.stdout))


def describe(findings: list[dict]) -> str:
    """One `path:row:column: CODE message` line per finding."""
    lines = []
    for finding in findings:
        path = Path(finding['filename']).relative_to(REPO_ROOT)
        location = finding['location']
        lines.append(f"{path}:{location['row']}:{location['column']}: "
                     f"{finding['code']} {finding['message']}")
    return '\n'.join(lines)


def is_docstring_rule(finding: dict) -> bool:
    """Whether a finding comes from the pydocstyle (D) rules."""
    return DOCSTRING_CODE.fullmatch(finding['code'] or '') is not None


def test_ruff_lint():
    findings = [f for f in ruff_findings() if not is_docstring_rule(f)]
    if findings:
        pytest.fail(f'ruff check found problems:\n{describe(findings)}', pytrace=False)


def test_docstrings():
    findings = [f for f in ruff_findings() if is_docstring_rule(f)]
    if findings:
        pytest.fail(f'docstring problems:\n{describe(findings)}', pytrace=False)
