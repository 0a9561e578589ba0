"""Memory of each node after warm-up and start-up time to the first /emotion (issue 6, 3-4).

    scripts/run_isolated.sh .venv/bin/python bench/footprint.py [--repeats 3] [--model PATH]
        [--quick]

Starts every node as its own process, the way ``ros2 run ser_ros <node> --ros-args
--params-file config/ser.yaml`` does on the robot (the venv's console scripts, the
environment inherited: run this under scripts/run_isolated.sh), with emotion_node given the
model and ``device: cpu``. microphone_node runs too when asked (``--microphone``): without a
sound card it only retries, so its memory is a lower bound.

Start-up (target <= 5 s): from just before the emotion_node process is created to
- ``ready_s``: its first /diagnostics saying ``ready`` (model loaded and warmed up;
  diagnostics every 0.1 s here), and
- ``first_emotion_s``: the first /emotion for a real utterance that this script publishes on
  /utterance as soon as emotion_node subscribes (so: ready plus one inference).
Memory (targets: emotion_node <= 700 MB, the others <= 150 MB): after start-up, a short
stream of real speech is played on /audio through vad_node -> emotion_node ->
dialogue_policy_node; then each node's resident memory is read from /proc (``rss_mb``: VmRSS
of the process and its children; ``pss_mb``: proportional share, counting shared libraries
once across processes; ``peak_rss_mb``: VmHWM). Medians over ``--repeats`` starts. Prints
one JSON object on stdout and a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_stream import REPO, cached_stream, require_isolated_ros, resolve_model  # noqa: E402
from pipeline_latency import machine_facts  # noqa: E402

NODES = ('vad_node', 'emotion_node', 'dialogue_policy_node')
TARGET_RSS_MB = {'emotion_node': 700.0, 'default': 150.0}
TARGET_STARTUP_S = 5.0
START_TIMEOUT_S = 120.0
PLAY_RATE = 4.0
STOP_GRACE_S = 5.0
KB_PER_MB = 1024.0
NS_PER_S = 1_000_000_000


def console_script(name: str) -> str:
    """Path of a console script installed beside this interpreter."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        sys.exit(f'console script {path} not found: install the package (make setup)')
    return str(path)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(')') + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, stack = [], [pid]
    while stack:
        current = stack.pop()
        tree.append(current)
        stack.extend(children.get(current, []))
    return tree


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith(key + ':'):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f'/proc/{pid}/smaps_rollup').read_text().splitlines():
            if line.startswith('Pss:'):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_of(pid: int) -> dict[str, float]:
    """Resident, proportional and peak memory (MB) of a process and its children."""
    tree = process_tree(pid)
    return {'rss_mb': round(sum(_status_kb(p, 'VmRSS') for p in tree) / KB_PER_MB, 1),
            'pss_mb': round(sum(_pss_kb(p) for p in tree) / KB_PER_MB, 1),
            'peak_rss_mb': round(max(_status_kb(p, 'VmHWM') for p in tree) / KB_PER_MB, 1),
            'processes': len(tree)}


class Probe:
    """This script's node: plays audio and utterances, listens to /emotion and /diagnostics."""

    def __init__(self) -> None:
        import rclpy
        from audio_common_msgs.msg import AudioDataStamped, AudioInfo
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from vision_msgs.msg import Classification

        from ser_ros.ros.topics import (
            AUDIO,
            AUDIO_INFO,
            DIAGNOSTICS,
            EMOTION,
            UTTERANCE,
            qos_for,
        )

        rclpy.init(args=['bench_footprint'])
        self.node = Node('bench_footprint')
        self.lock = threading.Lock()
        self.emotions: list[float] = []
        self.ready_at: float | None = None
        self.utterance = self.node.create_publisher(AudioDataStamped, UTTERANCE,
                                                    qos_for(UTTERANCE).to_rclpy())
        self.audio = self.node.create_publisher(AudioDataStamped, AUDIO,
                                                qos_for(AUDIO).to_rclpy())
        self.info = self.node.create_publisher(AudioInfo, AUDIO_INFO,
                                               qos_for(AUDIO_INFO).to_rclpy())
        self.node.create_subscription(Classification, EMOTION, self._on_emotion,
                                      qos_for(EMOTION).to_rclpy())
        self.node.create_subscription(DiagnosticArray, DIAGNOSTICS, self._on_diagnostics,
                                      qos_for(DIAGNOSTICS).to_rclpy())
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except (ExternalShutdownException, KeyboardInterrupt):
            pass

    def _on_emotion(self, message: Any) -> None:
        with self.lock:
            self.emotions.append(time.monotonic())

    def _on_diagnostics(self, message: Any) -> None:
        for status in message.status:
            if status.name.startswith('emotion_node') and self.ready_at is None:
                values = {pair.key: pair.value for pair in status.values}
                if values.get('state') in ('ready', 'busy'):
                    self.ready_at = time.monotonic()

    def reset(self) -> None:
        """Forget what was heard (before the next start)."""
        with self.lock:
            self.emotions.clear()
            self.ready_at = None

    def emotion_count(self) -> int:
        """/emotion messages heard since the last reset."""
        with self.lock:
            return len(self.emotions)

    def close(self) -> None:
        """Stop spinning and shut ROS down."""
        import rclpy

        # Stop and join the spinning thread before anything it uses goes away.
        self.executor.shutdown(timeout_sec=STOP_GRACE_S)
        self._thread.join(STOP_GRACE_S)
        self.node.destroy_node()
        rclpy.try_shutdown()


def wait_until(predicate: Any, timeout: float, interval: float = 0.005) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def utterance_message(path: Path) -> Any:
    """Build a real RAVDESS sentence message as vad_node would publish it."""
    import soundfile
    from audio_common_msgs.msg import AudioDataStamped

    samples, _ = soundfile.read(path, dtype='int16')
    message = AudioDataStamped()
    message.header.stamp.sec = 1_700_000_000
    message.header.frame_id = 'bench'
    message.audio.data = samples.tobytes()
    return message


def start_node(name: str, model: Path, log: Any) -> subprocess.Popen:
    """Start one node like ``ros2 run ser_ros <name> --ros-args --params-file config/ser.yaml``."""
    command = [console_script(name), '--ros-args', '--params-file',
               str(REPO / 'config' / 'ser.yaml')]
    if name == 'emotion_node':
        command += ['-p', f'model_path:={model}', '-p', 'device:=cpu',
                    '-p', 'diagnostics_period_s:=0.1']
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=REPO, start_new_session=True)


def stop(process: subprocess.Popen) -> int | None:
    """SIGINT (a clean ROS shutdown), then SIGKILL; return the exit status."""
    for signum in (signal.SIGINT, signal.SIGKILL):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            break
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            continue
    return process.wait()


def play(probe: Probe, bag: Path) -> int:
    """Publish a bag's audio_info and audio on /audio_info and /audio at PLAY_RATE x real time."""
    from ser_ros.bags import AUDIO_INFO_TYPE, read_records

    records = list(read_records(bag))
    first = records[0].timestamp_ns
    started = time.monotonic()
    chunks = 0
    for record in records:
        delay = started + (record.timestamp_ns - first) / NS_PER_S / PLAY_RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if record.msgtype == AUDIO_INFO_TYPE:
            probe.info.publish(record.data)
        else:
            probe.audio.publish(record.data)
            chunks += 1
    return chunks


def one_start(probe: Probe, model: Path, names: Sequence[str], bag: Path, utterance: Any,
              log: Any) -> dict[str, Any]:
    """Start the nodes, time the start-up, warm them up with speech, read their memory."""
    probe.reset()
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name in names:
            if name != 'emotion_node':
                processes[name] = start_node(name, model, log)
        started = time.monotonic()
        processes['emotion_node'] = start_node('emotion_node', model, log)
        if not wait_until(lambda: probe.utterance.get_subscription_count() > 0,
                          START_TIMEOUT_S):
            raise RuntimeError('emotion_node did not subscribe to /utterance')
        subscribed = time.monotonic()
        probe.utterance.publish(utterance)
        if not wait_until(lambda: probe.emotion_count() >= 1, START_TIMEOUT_S):
            raise RuntimeError('no /emotion for the first utterance')
        first_emotion = probe.emotions[0]
        wait_until(lambda: probe.ready_at is not None, 5.0)
        ready = probe.ready_at
        # Warm every node up with real speech through the whole chain.
        wait_until(lambda: probe.audio.get_subscription_count() > 0, START_TIMEOUT_S)
        before = probe.emotion_count()
        chunks = play(probe, bag)
        wait_until(lambda: probe.emotion_count() > before, 30.0)
        time.sleep(2.0)   # the VAD's idle flush and the last inference
        memory = {name: memory_of(process.pid) for name, process in processes.items()}
        crashed = {name: process.returncode for name, process in processes.items()
                   if process.poll() is not None}
        if crashed:
            raise RuntimeError(f'node(s) exited early: {crashed}')
        return {'subscribed_s': round(subscribed - started, 3),
                'ready_s': None if ready is None else round(ready - started, 3),
                'first_emotion_s': round(first_emotion - started, 3),
                'warm_up_chunks': chunks,
                'warm_up_emotions': probe.emotion_count() - before,
                'memory': memory}
    finally:
        statuses = {name: stop(process) for name, process in processes.items()}
        if any(status not in (0, None) for status in statuses.values()):
            print(f'footprint: node exit statuses {statuses}', file=sys.stderr)


def import_times(module: str = 'ser_ros.ros.emotion_node', top: int = 8) -> dict[str, Any]:
    """Time ``import module`` in a fresh interpreter; name the slowest packages it pulls in.

    From ``python -X importtime``: cumulative seconds of each top-level package where it is
    first imported, and of ``module`` itself (all of it).
    """
    started = time.monotonic()
    process = subprocess.run([sys.executable, '-X', 'importtime', '-c', f'import {module}'],
                             capture_output=True, text=True, cwd=REPO, timeout=START_TIMEOUT_S,
                             check=False)
    wall = time.monotonic() - started
    packages: dict[str, float] = {}
    for line in process.stderr.splitlines():
        if not line.startswith('import time:') or '|' not in line:
            continue
        parts = [part.strip() for part in line[len('import time:'):].split('|')]
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        name = parts[2]
        # Top-level packages at any depth (torch under ser_ros.core...), and ours whole.
        if '.' not in name or name == module:
            packages[name] = max(packages.get(name, 0.0), int(parts[1]) / 1e6)
    slowest = sorted(packages.items(), key=lambda kv: -kv[1])[:top]
    return {'module': module, 'wall_s': round(wall, 2), 'ok': process.returncode == 0,
            'slowest_s': {name: round(seconds, 3) for name, seconds in slowest}}


def main(argv: list[str] | None = None) -> int:
    """Run the footprint benchmark; print one JSON object (stdout) and a table (stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=3, help='starts (medians reported)')
    parser.add_argument('--model', default=None)
    parser.add_argument('--microphone', action='store_true',
                        help='also start microphone_node (retries without a sound card)')
    parser.add_argument('--quick', action='store_true', help='one start: checks that it runs')
    arguments = parser.parse_args(argv)
    require_isolated_ros()
    repeats = 1 if arguments.quick else arguments.repeats
    model, model_kind = resolve_model(arguments.model)
    stream = cached_stream('latency', utterances=2 if arguments.quick else 6)
    truth = json.loads(Path(stream.truth).read_text(encoding='utf-8'))
    data_root = REPO.parent / 'shared' / 'data' / 'ravdess-16k'
    utterance = utterance_message(data_root / truth['files'][0]['file'])
    names = (('microphone_node',) if arguments.microphone else ()) + NODES
    probe = Probe()
    runs = []
    with tempfile.TemporaryFile('w+b') as log:
        try:
            for _ in range(repeats):
                runs.append(one_start(probe, model, names, Path(stream.bag), utterance, log))
        except RuntimeError as error:
            log.seek(0)
            tail = log.read().decode('utf-8', 'replace')[-3000:]
            print(f'footprint: {error}\n{tail}', file=sys.stderr)
            return 1
        finally:
            probe.close()

    def median(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 3) if present else None

    memory = {name: {key: median([run['memory'][name][key] for run in runs])
                     for key in ('rss_mb', 'pss_mb', 'peak_rss_mb')} for name in names}
    for name, values in memory.items():
        limit = TARGET_RSS_MB.get(name, TARGET_RSS_MB['default'])
        values['target_mb'] = limit
        values['met'] = values['rss_mb'] is not None and values['rss_mb'] <= limit
    startup = {key: median([run[key] for run in runs])
               for key in ('subscribed_s', 'ready_s', 'first_emotion_s')}
    # subscribed: interpreter, imports, model loaded; ready - subscribed: the warm-up.
    startup['warm_up_s'] = (None if startup['ready_s'] is None else
                            round(startup['ready_s'] - startup['subscribed_s'], 3))
    result = {
        'benchmark': 'footprint', 'quick': arguments.quick, 'machine': machine_facts(),
        'model': str(model), 'model_kind': model_kind, 'repeats': repeats,
        'startup_s': startup,
        'startup_target_s': TARGET_STARTUP_S,
        'startup_met': (startup['first_emotion_s'] is not None
                        and startup['first_emotion_s'] <= TARGET_STARTUP_S),
        'imports': None if arguments.quick else import_times(),
        'memory': memory,
        'runs': runs,
    }
    lines = [f'start-up of emotion_node ({model_kind} model), median of {repeats}: '
             f'subscribed {startup["subscribed_s"]} s, ready {startup["ready_s"]} s, first '
             f'/emotion {startup["first_emotion_s"]} s (target {TARGET_STARTUP_S:g} s)',
             f'{"node":22} {"RSS MB":>8} {"PSS MB":>8} {"peak MB":>8} {"target":>7}']
    for name, values in memory.items():
        lines.append(f'{name:22} {values["rss_mb"]:8.1f} {values["pss_mb"]:8.1f} '
                     f'{values["peak_rss_mb"]:8.1f} {values["target_mb"]:7.0f}')
    print('\n'.join(lines), file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
