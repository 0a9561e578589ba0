"""The console scripts' entry points: import the script's module where Ctrl-C ends it quietly.

The modules behind the scripts import rclpy, torch and librosa, about two seconds here and more
on the robot before ``main()`` can catch anything. A Ctrl-C in that time (an operator stopping
``ros2 launch`` just after starting it) ended in a KeyboardInterrupt traceback from the middle
of an import; through these entry points it ends the script quietly, with the status the
script gives for a Ctrl-C once it runs. setup.py names ``ser_ros.console:<script>`` for each
script below.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

from ser_ros.ros.node_set import NODES

# Ctrl-C is how a ROS node is stopped (ros2 launch reports any other status as a failure);
# for an offline tool it is an interrupted command (128 + SIGINT, as shells report it).
NODE_STOPPED = 0
TOOL_INTERRUPTED = 130

# Script name -> (module with ``main()``, exit status when Ctrl-C comes before main() handles it).
SCRIPTS: dict[str, tuple[str, int]] = {
    **{spec.executable: (spec.module, NODE_STOPPED) for spec in NODES},
    'ser_pipeline': ('ser_ros.ros.pipeline', NODE_STOPPED),
    'ser_predict': ('ser_ros.cli.predict', TOOL_INTERRUPTED),
    'ser_train': ('ser_ros.cli.train', TOOL_INTERRUPTED),
    'ser_evaluate': ('ser_ros.cli.evaluate', TOOL_INTERRUPTED),
    'ser_dataset': ('ser_ros.cli.dataset', TOOL_INTERRUPTED),
    'ser_bag': ('ser_ros.cli.bag', TOOL_INTERRUPTED),
    'ser_study': ('ser_ros.cli.study', TOOL_INTERRUPTED),
    'ser_export': ('ser_ros.cli.export', TOOL_INTERRUPTED),
    'ser_ensemble': ('ser_ros.cli.ensemble', TOOL_INTERRUPTED),
}


def caused_by_interrupt(error: BaseException) -> bool:
    """Whether ``error`` is a KeyboardInterrupt or was raised while handling one.

    A Ctrl-C while a C extension initialises reaches us as the cause of another error: rclpy's
    loader turns it into ``ImportError: initialization failed``.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def run_script(module: str, interrupted_status: int) -> int:
    """Import ``module`` and return its ``main()``'s status; ``interrupted_status`` on Ctrl-C."""
    try:
        return importlib.import_module(module).main()
    except BaseException as error:
        if caused_by_interrupt(error):
            return interrupted_status
        raise


def __getattr__(name: str) -> Callable[[], int]:
    """Give the entry point of script ``name`` (``from ser_ros.console import emotion_node``)."""
    try:
        module, interrupted_status = SCRIPTS[name]
    except KeyError:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}') from None
    return functools.partial(run_script, module, interrupted_status)
