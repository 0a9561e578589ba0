"""Helpers for tests that go through a real ROS 2 runtime: spin, wait, run node processes.

Every helper has a deadline so that a lost message or a hung process fails its test instead of
hanging CI. Subprocesses inherit the isolated environment set in test/conftest.py (LOCALHOST
discovery, own domain id, temporary log folder).
"""

from __future__ import annotations

import array
import dataclasses
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from rclpy.context import Context
from rclpy.executors import Executor, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.publisher import Publisher

from ser_ros.bags import BagRecord
from ser_ros.ros.topics import qos_for

REPO_ROOT = Path(__file__).resolve().parents[2]
POLL_INTERVAL_S = 0.01
# How long a spin() call blocks before it checks for shutdown again.
SPIN_TIMEOUT_S = 0.05
EXECUTOR_JOIN_TIMEOUT_S = 5.0
DEFAULT_PROCESS_TIMEOUT_S = 30.0
# Grace periods before escalating from SIGINT (rclpy's clean shutdown) to SIGTERM to SIGKILL.
STOP_GRACE_S = 3.0
KILL_GRACE_S = 2.0
# Enough peers on loopback discover each other in well under a second (measured 0.1-0.25 s).
DISCOVERY_TIMEOUT_S = 5.0


def wait_for(predicate: Callable[[], bool], timeout: float,
             interval: float = POLL_INTERVAL_S) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


@contextmanager
def spinning(context: Context, *nodes: Node, multi_threaded: bool = False) -> Iterator[Executor]:
    """Spin `nodes` in a background executor thread; stop and join it on exit.

    An exception raised in a callback stops the spinning and is raised again on exit, so a
    broken callback fails the test with its own traceback rather than as a missing message.
    """
    executor: Executor = (MultiThreadedExecutor(context=context) if multi_threaded
                          else SingleThreadedExecutor(context=context))
    for node in nodes:
        executor.add_node(node)
    stop = threading.Event()
    errors: list[BaseException] = []

    def spin() -> None:
        try:
            while not stop.is_set() and context.ok():
                executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)
        except BaseException as error:  # noqa: B036 - handed to the test thread below
            errors.append(error)

    thread = threading.Thread(target=spin, name='ros-executor', daemon=True)
    thread.start()
    try:
        yield executor
    finally:
        stop.set()
        thread.join(EXECUTOR_JOIN_TIMEOUT_S)
        executor.shutdown(timeout_sec=EXECUTOR_JOIN_TIMEOUT_S)
        if thread.is_alive():
            raise RuntimeError('ROS executor thread did not stop within '
                               f'{EXECUTOR_JOIN_TIMEOUT_S} s')
        if errors:
            raise RuntimeError('a ROS callback raised an exception') from errors[0]


def ros_arguments(parameters: Mapping[str, object]) -> list[str]:
    """`--ros-args -p name:=value ...` for `parameters` (empty when there are none)."""
    if not parameters:
        return []
    arguments = ['--ros-args']
    for name, value in parameters.items():
        arguments += ['-p', f'{name}:={_parameter_text(value)}']
    return arguments


def _parameter_text(value: object) -> str:
    # Parameter values are parsed as YAML: booleans and lists need their YAML spelling.
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_parameter_text(v) for v in value) + ']'
    return str(value)


def child_environment() -> dict[str, str]:
    """Environment for child processes: ours, with the checkout importable."""
    environment = dict(os.environ)
    paths = [str(REPO_ROOT)] + [p for p in environment.get('PYTHONPATH', '').split(os.pathsep)
                                if p]
    environment['PYTHONPATH'] = os.pathsep.join(paths)
    environment['PYTHONUNBUFFERED'] = '1'
    # A node that crashes (a rare SIGSEGV on Ctrl-C, seen in rclpy/DDS teardown) prints every
    # thread's Python stack into the output a failing test shows.
    environment['PYTHONFAULTHANDLER'] = '1'
    return environment



class RosProcess:
    """A child process (node executable, script or module) in its own process group.

    Output goes to a temporary file rather than a pipe, so a chatty process can never block on
    a full pipe; `output()` reads it. A watchdog kills the whole group after `timeout` seconds.
    """

    def __init__(self, command: Sequence[str], parameters: Mapping[str, object] | None = None,
                 timeout: float = DEFAULT_PROCESS_TIMEOUT_S, name: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        if timeout <= 0:
            raise ValueError(f'timeout must be positive, got {timeout}')
        self.command = [*command, *ros_arguments(parameters or {})]
        self.name = name or ' '.join(Path(part).name for part in command[:2])
        self.timed_out = False
        self._closed_output: str | None = None
        self._log = tempfile.TemporaryFile(mode='w+b', prefix='ser_ros_process_')
        environment = child_environment()
        environment.update(env or {})
        self._process = subprocess.Popen(
            self.command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT, env=environment, start_new_session=True)
        self._watchdog = threading.Timer(timeout, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    @property
    def pid(self) -> int:
        """Process id (also the process group id)."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """Exit status, or None while running."""
        return self._process.poll()

    def _expire(self) -> None:
        if self._process.poll() is None:
            self.timed_out = True
            self._signal_group(signal.SIGKILL)

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self._process.pid, signum)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit; raise TimeoutError (with its output) if it does not."""
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f'{self.name} still running after {timeout} s; output:\n'
                               f'{self.output()}') from None

    def stop(self) -> int:
        """End the whole process group: SIGINT, then SIGTERM, then SIGKILL; return the status."""
        self._watchdog.cancel()
        for signum, grace in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGTERM, KILL_GRACE_S),
                              (signal.SIGKILL, KILL_GRACE_S)):
            if self._process.poll() is not None:
                break
            self._signal_group(signum)
            try:
                self._process.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        # Children the process left behind in its group go too.
        self._signal_group(signal.SIGKILL)
        return self._process.wait()

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        if self._closed_output is not None:
            return self._closed_output
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode('utf-8', errors='replace')

    def describe(self) -> str:
        """Command, status and output, for a failure report."""
        status = 'running' if self.returncode is None else f'exit status {self.returncode}'
        if self.timed_out:
            status += ' (killed by the watchdog)'
        return f'$ {" ".join(self.command)}\n[{status}]\n{self.output()}'

    def close(self) -> None:
        """Stop the process if needed and release its output file (keeping the text)."""
        self.stop()
        if self._closed_output is None:
            self._closed_output = self.output()
            self._log.close()


def python_command(script: str | Path | None = None, module: str | None = None,
                   code: str | None = None) -> list[str]:
    """Command line running a script, a module (-m) or code (-c) with this interpreter."""
    given = [x for x in (script, module, code) if x is not None]
    if len(given) != 1:
        raise ValueError('give exactly one of script, module or code')
    if script is not None:
        return [sys.executable, str(script)]
    if module is not None:
        return [sys.executable, '-m', module]
    return [sys.executable, '-c', str(code)]


def wait_for_subscribers(publisher: object, count: int = 1,
                         timeout: float = DISCOVERY_TIMEOUT_S) -> bool:
    """Wait until `publisher` is matched with at least `count` subscriptions."""
    return wait_for(lambda: publisher.get_subscription_count() >= count, timeout)


def wait_for_publishers(subscription: object, count: int = 1,
                        timeout: float = DISCOVERY_TIMEOUT_S) -> bool:
    """Wait until `subscription` is matched with at least `count` publishers."""
    return wait_for(lambda: subscription.get_publisher_count() >= count, timeout)


def message_class(msgtype: str) -> type:
    """Import the rclpy message class of a type name like 'audio_common_msgs/msg/AudioInfo'."""
    package, interface, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{interface}'), name)


def replay_records(node: Node, records: Sequence[BagRecord],
                   discovery_timeout: float = DISCOVERY_TIMEOUT_S) -> dict[str, Publisher]:
    """Publish bag records as they are stored (serialised bytes) on their topics, in order.

    Each topic gets a publisher with our QoS profile for it; publishing starts only when every
    publisher has found a subscriber, so that nothing is sent before anyone listens.
    """
    publishers: dict[str, Publisher] = {}
    for record in records:
        if record.topic not in publishers:
            publishers[record.topic] = node.create_publisher(
                message_class(record.msgtype), record.topic, qos_for(record.topic).to_rclpy())
    for topic, publisher in publishers.items():
        if not wait_for_subscribers(publisher, timeout=discovery_timeout):
            raise TimeoutError(f'no subscriber for {topic} within {discovery_timeout} s')
    for record in records:
        publishers[record.topic].publish(record.data)
    return publishers


def message_fields(message: object) -> object:
    """Plain-Python form (dicts, lists, scalars) of an rclpy or a rosbags message.

    Lets a test compare what rclpy received with what rosbags decoded from a bag.
    """
    if hasattr(message, 'get_fields_and_field_types'):
        return {name: message_fields(getattr(message, name))
                for name in message.get_fields_and_field_types()}
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        # rosbags adds a '__msgtype__' field that is not part of the message.
        return {field.name: message_fields(getattr(message, field.name))
                for field in dataclasses.fields(message) if not field.name.startswith('__')}
    if isinstance(message, (np.ndarray, array.array)):
        return message.tolist()
    if isinstance(message, (bytes, bytearray)):
        return list(message)
    if isinstance(message, (list, tuple)):
        return [message_fields(item) for item in message]
    return message
