"""Console-script entry points: a Ctrl-C while the script's module loads ends it quietly."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser_ros.console import TOOL_INTERRUPTED, caused_by_interrupt, run_script

MODULES = {
    # What rclpy's loader does when Ctrl-C lands in its C extension's initialisation.
    'wrapped_interrupt': ('try:\n    raise KeyboardInterrupt\n'
                          'except KeyboardInterrupt as error:\n'
                          '    raise ImportError("initialization failed") from error\n'),
    'plain_interrupt': 'raise KeyboardInterrupt\n',
    'broken': 'raise ImportError("no such library")\n',
    'working': 'def main():\n    return 7\n',
}


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Real modules on sys.path, one per case above; give their name prefix."""
    prefix = f'ser_console_case_{tmp_path.name.replace("-", "_")}_'
    for name, source in MODULES.items():
        (tmp_path / f'{prefix}{name}.py').write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return prefix


def test_an_interrupt_while_importing_gives_the_interrupted_status(modules: str) -> None:
    assert run_script(f'{modules}wrapped_interrupt', TOOL_INTERRUPTED) == TOOL_INTERRUPTED
    assert run_script(f'{modules}plain_interrupt', 0) == 0


def test_other_failures_and_statuses_pass_through(modules: str) -> None:
    assert run_script(f'{modules}working', TOOL_INTERRUPTED) == 7
    with pytest.raises(ImportError, match='no such library'):
        run_script(f'{modules}broken', TOOL_INTERRUPTED)


def test_the_interrupt_is_found_along_the_cause_chain() -> None:
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError('while handling it') from None
    except RuntimeError as error:
        # `from None` hides the cause from tracebacks but keeps it as the context.
        assert caused_by_interrupt(error)
    assert not caused_by_interrupt(ValueError('unrelated'))
