"""The one ``main()`` body of every node: init, spin until Ctrl-C, clean shutdown, exit status.

A refused parameter exits with ``EXIT_BAD_PARAMETER`` after one clear log line; a node that
cannot start for another reason raises :class:`StartupError` with its own exit status. Ctrl-C
and an external shutdown end the node quietly (no traceback), on Humble as on newer releases.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import rclpy
import rclpy.logging
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from ser_ros.ros.params import ParameterError, refuse


class StartupError(RuntimeError):
    """The node cannot start (bad parameter, unusable model); carries the exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextlib.contextmanager
def stopping_quietly() -> Iterator[None]:
    """End the block quietly on Ctrl-C or an external shutdown; re-raise anything else.

    rclpy raises its private RCLError from any call made after Ctrl-C shut the context down
    (a publish, an acknowledgement wait, an executor made while the node starts): a stop, not
    a failure.
    """
    try:
        yield
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise


def run_node(make_node: Callable[[], Node], node_name: str,
             args: Sequence[str] | None = None) -> int:
    """Create the node, spin it until Ctrl-C or shutdown, and return the process exit status."""
    rclpy.init(args=args)
    # Made before the node: a Ctrl-C while the node starts then ends spin() quietly, where
    # rclpy.spin() would fail to make its executor on the already shut-down context.
    executor = SingleThreadedExecutor()
    node: Node | None = None
    try:
        with stopping_quietly():
            node = make_node()
            executor.add_node(node)
            executor.spin()
    except ParameterError as error:
        return refuse(node_name, error)
    except StartupError as error:
        rclpy.logging.get_logger(node_name).fatal(f'not starting: {error}')
        return error.exit_code
    finally:
        executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
