"""The node set as separate processes, the way ``ros2 launch ser_ros ser.launch.py`` runs it.

The pipeline benchmarks measure two topologies: ``in-process`` (``ser_pipeline``: every node on
one executor in one Python process, see pipeline_latency.run_in_process) and ``processes``
(this module: vad_node, emotion_node and dialogue_policy_node each in its own process, as on
the robot, so no node waits for another's Python lock). Here every node runs in a host
process (``python bench/processes.py host MODULE DUMP -- ROS_ARGS``) that builds the node
class from its module with the same ``--ros-args`` the launch file passes (the parameters
file, the model, ``device: cpu``), spins it on a SingleThreadedExecutor like the console
scripts do, and on SIGINT writes the node's own records (vad_node: when each utterance went
out; emotion_node: per-utterance timings; counters of both) to DUMP as JSON. time.monotonic()
is CLOCK_MONOTONIC, one clock for every process of the machine, so those records join with
this process's: the player's publish times and the arrivals of /emotion at its listener.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_stream import REPO  # noqa: E402

HOSTED_NODES = ('vad_node', 'emotion_node', 'dialogue_policy_node')
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.002
SETTLE_S = 1.0
DISCOVERY_SETTLE_S = 1.0
# Fast replay flow control across processes: the player never has more audio messages out
# than this beyond the count vad_node last reported on /diagnostics (its true count is never
# lower), so the VAD's keep-last queue of 100 cannot overwrite audio ...
MAX_AHEAD_OF_VAD = 75
# ... and holds while this many utterances wait for emotion_node (what the VAD may still cut
# from the audio it holds must fit the rest of emotion_node's queue).
MAX_WAITING_UTTERANCES = 4
# Flow control holding the player this long means the pipeline stopped answering: fail.
MAX_HOLD_S = 60.0
# /diagnostics period of the node processes in fast replays (the flow control's clock).
FAST_DIAGNOSTICS_PERIOD_S = 0.1


# -- the host: one node in this process, its records dumped at the end ---------------------

def _records(node: Any) -> dict[str, Any]:
    """Return what a benchmark needs from a node, as plain JSON types."""
    records: dict[str, Any] = {}
    if hasattr(node, 'published'):          # vad_node
        records.update(published=[dataclasses.asdict(item) for item in node.published],
                       counters=dict(node.counters), callback_s=node.callback_s,
                       decision_delay_ms=node.config.decision_delay_ms)
    if hasattr(node, 'timings'):            # emotion_node
        records.update(timings=[dataclasses.asdict(item) for item in node.timings()],
                       stats=node.stats(), bf16=node.bf16)
    elif hasattr(node, 'stats'):
        records.update(stats=node.stats())
    return records


def host(module_name: str, dump: Path, ros_args: Sequence[str]) -> int:
    """Spin one node of ``module_name`` until SIGINT; write its records to ``dump``."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from ser_ros.ros.node_main import stopping_quietly
    from ser_ros.ros.pipeline import node_class

    rclpy.init(args=[module_name])
    executor = SingleThreadedExecutor()
    node = None
    try:
        with stopping_quietly():
            node = node_class(module_name)(cli_args=['--ros-args', *ros_args])
            executor.add_node(node)
            executor.spin()
    finally:
        executor.shutdown()
        if node is not None:
            dump.write_text(json.dumps(_records(node)))
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


# -- the runner: hosts started, the bag played, everything joined ---------------------------

def _process_cpu_s(pid: int) -> float:
    from pipeline_latency import stat_cpu_seconds

    try:
        return stat_cpu_seconds(Path(f'/proc/{pid}/stat').read_text())
    except OSError:
        return 0.0


class Hosts:
    """The node processes, started with the launch file's arguments and stopped with SIGINT."""

    def __init__(self, model: Path, config: Path, folder: Path,
                 cpus: dict[str, set[int]] | None = None) -> None:
        self.folder = folder
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        for name in HOSTED_NODES:
            ros_args = ['--params-file', str(config)]
            if name == 'emotion_node':
                ros_args += ['-p', f'model_path:={model}', '-p', 'device:=cpu']
            log = (folder / f'{name}.log').open('wb')
            self.processes[name] = subprocess.Popen(
                [sys.executable, __file__, 'host', f'ser_ros.ros.{name}',
                 str(folder / f'{name}.json'), '--', *ros_args],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
            if cpus:   # before the interpreter starts a thread: all its threads inherit it
                os.sched_setaffinity(self.processes[name].pid, cpus[name])

    def failed(self) -> str | None:
        """Return the first node that has exited, with its log's end; None while all run."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.folder / f'{name}.log').read_text(errors='replace')[-2000:]
                return f'{name} exited with {process.returncode}:\n{tail}'
        return None

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds used so far by each node process."""
        return {name: _process_cpu_s(process.pid) for name, process in self.processes.items()}

    def stop(self) -> dict[str, dict[str, Any]]:
        """SIGINT every node, wait, and return each one's records."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        records = {}
        for name, process in self.processes.items():
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            dump = self.folder / f'{name}.json'
            records[name] = json.loads(dump.read_text()) if dump.is_file() else {}
        return records


class Player:
    """This process's node: plays the feed on the audio topics and listens to the results."""

    def __init__(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        from ser_ros.ros.pipeline import FeedPlayer, Monitor
        from ser_ros.ros.topics import DIAGNOSTICS, qos_for

        self.node = Node('bench_player')
        self.answers: list[tuple[float, dict[str, Any]]] = []
        self.monitor = Monitor(self.node, None,
                               lambda line: self.answers.append((time.monotonic(),
                                                                 json.loads(line))))
        self.monitor.attach()
        self.feed_player = FeedPlayer(self.node, self.monitor)
        self.emotion_ready = False
        self.vad_reporting = False
        self.vad_messages = 0
        self._held_since: float | None = None
        self.node.create_subscription(DiagnosticArray, DIAGNOSTICS, self._on_diagnostics,
                                      qos_for(DIAGNOSTICS).to_rclpy())
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, name='executor', daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        from ser_ros.ros.node_main import stopping_quietly

        with stopping_quietly():
            self.executor.spin()

    def _on_diagnostics(self, message: Any) -> None:
        for status in message.status:
            values = {pair.key: pair.value for pair in status.values}
            if status.name.startswith('emotion_node') and values.get('state') in ('ready',
                                                                                 'busy'):
                self.emotion_ready = True
            elif status.name.startswith('vad_node') and 'messages' in values:
                self.vad_reporting = True
                self.vad_messages = max(self.vad_messages, int(values['messages']))

    def ready(self) -> bool:
        """Whether the VAD listens, emotion_node has warmed up and every node sees the others.

        Utterances and emotions are not latched: the node set must be connected before the
        first one goes out (this node and emotion_node on utterance, this node and the policy
        on emotion). vad_node's diagnostics are the flow control's clock: without them a paced
        replay would hold forever once it is MAX_AHEAD_OF_VAD messages ahead.
        """
        from ser_ros.ros.topics import EMOTION, UTTERANCE

        node = self.node
        return (self.emotion_ready and self.vad_reporting and self.feed_player.connected()
                and node.count_publishers(UTTERANCE) > 0 and node.count_subscribers(UTTERANCE) > 1
                and node.count_publishers(EMOTION) > 0 and node.count_subscribers(EMOTION) > 1)

    @property
    def played(self) -> int:
        """Audio messages published so far."""
        return self.feed_player.played

    def counts(self) -> tuple[int, int]:
        """Utterances and emotions seen so far."""
        with self.monitor.lock:
            return len(self.monitor.utterances), self.monitor.emotions

    def play(self, feed: Any, rate: float, paced_by_pipeline: bool) -> tuple[float, float]:
        """Publish the feed at ``rate`` x real time; return when playing started and ended."""
        play_started = time.monotonic()
        self.feed_player.play(feed.items, rate, lambda: paced_by_pipeline and self._must_wait(),
                              threading.Event(), poll_s=POLL_S)
        return play_started, time.monotonic()

    def _must_wait(self) -> bool:
        utterances, emotions = self.counts()
        hold = (utterances - emotions >= MAX_WAITING_UTTERANCES
                or self.played - self.vad_messages >= MAX_AHEAD_OF_VAD)
        now = time.monotonic()
        if not hold:
            self._held_since = None
        elif self._held_since is None:
            self._held_since = now
        elif now - self._held_since > MAX_HOLD_S:
            raise RuntimeError(f'the pipeline stopped answering: held {MAX_HOLD_S:.0f} s with '
                               f'{utterances} utterances, {emotions} emotions, the VAD at '
                               f'{self.vad_messages} of {self.played} audio messages')
        return hold

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self.executor.shutdown()
        self._spinner.join()
        self.node.destroy_node()


def reserved_core_plan() -> dict[str, set[int]]:
    """emotion_node alone on the last CPU, every other process on the rest."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        raise RuntimeError(f'reserving a core for emotion_node needs 2 CPUs, this process '
                           f'may use {available}')
    reserved, rest = {available[-1]}, set(available[:-1])
    return {name: reserved if name == 'emotion_node' else rest
            for name in (*HOSTED_NODES, 'player')}


def run_as_processes(bag: Path, model: Path, rate: float, *, config: Path | None = None,
                     join_ms: int | None = None, paced_by_pipeline: bool = False,
                     reserve_core: bool = False, timeout_s: float = 120.0) -> Any:
    """Play ``bag`` into the node processes; return a pipeline_latency.RunRecord.

    ``paced_by_pipeline`` (fast replays) holds the player while utterances wait for
    emotion_node or while it runs too far ahead of the VAD (see the constants above); the
    nodes then report on /diagnostics every FAST_DIAGNOSTICS_PERIOD_S. ``reserve_core`` runs
    emotion_node on a CPU of its own (reserved_core_plan).
    """
    import rclpy
    from pipeline_latency import RunRecord, config_with

    from ser_ros.ros.emotion_node import UtteranceTiming
    from ser_ros.ros.pipeline import bag_feed
    from ser_ros.ros.vad_node import PublishedUtterance

    feed = bag_feed(bag, join_ms=join_ms)
    config = config or REPO / 'config' / 'ser.yaml'
    if paced_by_pipeline:
        config = config_with(config, {name: {'diagnostics_period_s': FAST_DIAGNOSTICS_PERIOD_S}
                                      for name in HOSTED_NODES})
    cpus = reserved_core_plan() if reserve_core else None
    own_cpus = os.sched_getaffinity(0)
    with tempfile.TemporaryDirectory(prefix='ser_bench_nodes_') as folder:
        if cpus:   # this thread only, before rclpy starts the player's DDS threads
            os.sched_setaffinity(0, cpus['player'])
        hosts = Hosts(model, config, Path(folder), cpus)
        rclpy.init(args=['bench_player'])
        player = None
        try:
            player = Player()
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not player.ready():
                problem = hosts.failed()
                if problem or time.monotonic() > deadline:
                    raise RuntimeError(problem or 'the node processes did not get ready')
                time.sleep(0.05)
            # What this node sees, the others may see a moment later (each pair of processes
            # discovers the other on its own): let their matching finish before playing.
            time.sleep(DISCOVERY_SETTLE_S)
            cpu_before = hosts.cpu_s()
            own_before = time.process_time()
            play_started, play_ended = player.play(feed, rate, paced_by_pipeline)
            # The VAD took every message, every utterance is answered, nothing new: done.
            deadline = time.monotonic() + timeout_s
            status = 1
            while time.monotonic() < deadline and not hosts.failed():
                utterances, emotions = player.counts()
                if (utterances and utterances == emotions
                        and player.vad_messages >= player.played
                        and time.monotonic() - player.monitor.last_event > SETTLE_S):
                    status = 0
                    break
                time.sleep(0.05)
            cpu_after = hosts.cpu_s()
            cpu = {name: round(cpu_after[name] - cpu_before[name], 2) for name in cpu_after}
            cpu['player (this process)'] = round(time.process_time() - own_before, 2)
            answers = [answer for answer in player.answers if answer[1].get('type') == 'emotion']
            chunks = list(player.monitor.published)
        finally:
            if player is not None:
                player.close()
            rclpy.try_shutdown()
            records = hosts.stop()
            os.sched_setaffinity(0, own_cpus)
    vad, emotion = records.get('vad_node', {}), records.get('emotion_node', {})
    if not vad or not emotion:
        raise RuntimeError('a node process wrote no records (see its log above)')
    return RunRecord(
        status=status, play_started=play_started, play_ended=play_ended, answers=answers,
        chunks=chunks,
        vad_published=[PublishedUtterance(**item) for item in vad['published']],
        timings=[UtteranceTiming(**item) for item in emotion['timings']],
        vad_stats=vad['counters'], emotion_stats=emotion['stats'],
        vad_callback_s=vad['callback_s'], decision_delay_ms=vad['decision_delay_ms'],
        bf16=emotion['bf16'], thread_cpu_s=cpu)


def main(argv: Sequence[str]) -> int:
    """``host MODULE DUMP -- ROS_ARGS``: run one node (started by run_as_processes)."""
    if len(argv) < 3 or argv[0] != 'host' or '--' not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    separator = argv.index('--')
    return host(argv[1], Path(argv[2]), argv[separator + 1:])


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
