"""Fixtures for tests through a real ROS 2 runtime: own rclpy context, nodes, child processes.

Every test in this folder is marked `ros` and gets a pytest-timeout deadline, so a lost
message or hung process fails the test instead of hanging CI. The isolation variables
(LOCALHOST discovery, domain id, log folder) come from test/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node

from .harness import DEFAULT_PROCESS_TIMEOUT_S, RosProcess

ROS_TEST_DIR = Path(__file__).resolve().parent
# Each ROS test takes a few seconds; this deadline only catches hangs.
ROS_TEST_TIMEOUT_S = 60
PROCESSES_ATTRIBUTE = 'ros_processes'


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests in this folder `ros` and give them a hang deadline unless they set one."""
    for item in items:
        if ROS_TEST_DIR not in Path(item.path).resolve().parents:
            continue
        item.add_marker(pytest.mark.ros)
        if item.get_closest_marker('timeout') is None:
            item.add_marker(pytest.mark.timeout(ROS_TEST_TIMEOUT_S))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Attach the output of the test's child processes to its report when it fails."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for process in getattr(item, PROCESSES_ATTRIBUTE, []):
            report.sections.append((f'ROS process {process.name} (pid {process.pid})',
                                    process.describe()))


@pytest.fixture
def ros_context() -> Iterator[Context]:
    """Give the test an initialised rclpy context of its own, shut down afterwards."""
    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        context.try_shutdown()


@pytest.fixture
def make_node(ros_context: Context) -> Iterator[Callable[[str], Node]]:
    """Give a factory of nodes in the test's context; destroy the nodes afterwards."""
    nodes: list[Node] = []

    def make(name: str) -> Node:
        node = Node(name, context=ros_context)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()


@pytest.fixture
def ros_process(request: pytest.FixtureRequest) -> Iterator[Callable[..., RosProcess]]:
    """Give a factory that starts child processes (`harness.RosProcess`); stop them afterwards.

    Call it as `ros_process(command, parameters={...}, timeout=...)`. A failing test shows
    each process's command, exit status and output.
    """
    processes: list[RosProcess] = []
    setattr(request.node, PROCESSES_ATTRIBUTE, processes)

    def start(command: Sequence[str], parameters: Mapping[str, object] | None = None,
              timeout: float = DEFAULT_PROCESS_TIMEOUT_S, name: str | None = None) -> RosProcess:
        process = RosProcess(command, parameters=parameters, timeout=timeout, name=name)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.close()
