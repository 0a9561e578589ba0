"""Throughput: an hour of speech and silence through the real pipeline as fast as it keeps up.

    scripts/run_isolated.sh .venv/bin/python bench/throughput.py [--minutes 60] [--chunk-ms 20]
        [--replay-chunk-ms 500] [--topology processes|in-process] [--model PATH] [--profile]
        [--quick]

Replays a bag of real RAVDESS sentences and room silence (bench/make_stream.py), recorded as a
robot microphone publishes it (``--chunk-ms`` 20), through the node set (``--topology``:
each node its own process as ros2 launch runs them, bench/processes.py, or ``ser_pipeline``'s
one process) with no schedule, the way ``ser_pipeline --bag B --rate R --chunk-ms 500`` replays a
recording offline: consecutive chunks joined into messages of ``--replay-chunk-ms`` (0: as
recorded), the player sending the next one as soon as the pipeline has room for it. Its flow
control is the pipeline's own (never more than half the VAD's audio queue in flight) plus,
here, never more than two (in-process) or four (processes) utterances waiting for
emotion_node, whose queue is raised to
``EMOTION_QUEUE`` utterances for the run (what the VAD can still cut from the audio it holds
must fit); the run checks that nothing was dropped.
``x_realtime`` = audio seconds / wall seconds from the first chunk to the last /emotion
(target >= 200).

Where the time goes: CPU seconds per thread of this process over the replay (player, executor
spin thread, callback pool = VAD and listener callbacks, emotion worker, torch and DDS
threads), the emotion worker's busy time (front end + network, from emotion_node's own
timings), the time inside the VAD's audio callback, and two ceilings measured alone: the
VAD core (``Segmenter``, no ROS) and rclpy moving audio messages to a callback that does
nothing (the same executor and QoS). ``--profile`` adds a sampling profile of every thread
(the busiest Python functions). Prints one JSON object on stdout and a table on stderr.
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_stream import cached_stream, require_isolated_ros, resolve_model  # noqa: E402
from pipeline_latency import (  # noqa: E402
    EXECUTORS,
    TOPOLOGIES,
    emotion_config,
    machine_facts,
    make_executor,
    run_in_process,
)
from processes import run_as_processes  # noqa: E402

TARGET_X_REALTIME = 200.0
# Offline replay: 500 ms messages, 7,200 for an hour (20 ms chunks: 180,000).
REPLAY_CHUNK_MS = 500
# Besides the utterances the player lets wait (2 in-process, 4 with processes), the VAD may
# hold up to 75 replay messages (37 s of audio at 500 ms, ~7 utterances): 16 places leave
# room for all of them.
EMOTION_QUEUE = 16
AS_FAST_AS_POSSIBLE = 1e9
SAMPLE_INTERVAL_S = 0.005
TOP_FUNCTIONS = 8
CEILING_MESSAGES = 5000
CEILING_MAX_IN_FLIGHT = 50
CEILING_TIMEOUT_S = 60.0
CEILING_REPEATS = 3
VAD_CORE_MAX_S = 600.0
# Python frames that mean 'waiting', not working (leaf function names).
IDLE_FUNCTIONS = {'wait', 'select', 'poll', 'sleep', 'acquire',
                  '_worker', 'get', 'wait_for', 'join', '_wait_for_tstate_lock', 'spin_once'}


class StackSampler:
    """Poor man's py-spy: sample every thread's Python stack at a fixed interval."""

    def __init__(self, interval: float = SAMPLE_INTERVAL_S) -> None:
        self.interval = interval
        self.counts: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter)
        self.samples: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='stack_sampler', daemon=True)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            names = {thread.ident: thread.name for thread in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                name = names.get(ident, 'other')
                if name.startswith('ThreadPoolExecutor'):
                    name = 'executor pool (callbacks)'
                code = frame.f_code
                leaf = f'{Path(code.co_filename).name}:{code.co_name}'
                ours = _first_ser_ros_frame(frame)
                if code.co_name in IDLE_FUNCTIONS:
                    leaf = f'(idle) {leaf}'
                self.samples[name] += 1
                self.counts[name][leaf if ours is None or ours == leaf else f'{ours} > {leaf}'] += 1

    def report(self) -> dict[str, Any]:
        """Per thread: samples and the most sampled functions (share of that thread's samples)."""
        return {name: {'samples': total,
                       'top': [{'function': function, 'share': round(count / total, 3)}
                               for function, count in self.counts[name].most_common(
                                   TOP_FUNCTIONS)]}
                for name, total in self.samples.most_common()}


def _first_ser_ros_frame(frame: Any) -> str | None:
    while frame is not None:
        if '/ser_ros/' in frame.f_code.co_filename:
            return f'{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}'
        frame = frame.f_back
    return None


def _spin(executor: Any) -> None:
    from rclpy.executors import ExternalShutdownException

    try:
        executor.spin()
    except (ExternalShutdownException, KeyboardInterrupt):
        pass


def vad_core_ceiling(bag: Path, max_seconds: float = VAD_CORE_MAX_S) -> dict[str, float]:
    """Seconds of audio per second the Segmenter alone takes (decode + VAD), no ROS."""
    from ser_ros.bags import AUDIO_DATA_STAMPED_TYPE, read_messages
    from ser_ros.core.pcm import PcmFormat, decode_pcm, downmix
    from ser_ros.core.segmenter import Segmenter, SegmenterConfig

    fmt = PcmFormat(16000, 1, 'S16LE')
    chunks = []
    audio_s = 0.0
    for record, message in read_messages(bag):
        if record.msgtype != AUDIO_DATA_STAMPED_TYPE:
            continue
        stamp = message.header.stamp
        chunks.append((bytes(message.audio.data), stamp.sec + stamp.nanosec / 1e9))
        audio_s += len(chunks[-1][0]) / 2 / 16000
        if audio_s >= max_seconds:
            break
    segmenter = Segmenter(SegmenterConfig(), input_rate=16000)
    started = time.process_time()
    for data, start in chunks:
        segmenter.push(downmix(decode_pcm(data, fmt)), start)
    busy = time.process_time() - started
    return {'audio_s': round(audio_s, 1), 'cpu_s': round(busy, 3),
            'x_realtime': round(audio_s / busy, 1) if busy else None,
            'us_per_chunk': round(busy / len(chunks) * 1e6, 1) if chunks else None}


def executor_ceiling(chunk_ms: int, kind: str = 'single',
                     messages: int = CEILING_MESSAGES) -> dict[str, float]:
    """Audio messages per second rclpy moves to a no-op callback (an executor, our QoS)."""
    import rclpy
    from audio_common_msgs.msg import AudioDataStamped
    from rclpy.node import Node

    from ser_ros.ros.topics import AUDIO_STREAM_QOS

    rclpy.init(args=['bench_ceiling'])
    node = Node('bench_ceiling')
    received = [0]
    node.create_subscription(AudioDataStamped, 'bench_audio',
                             lambda _: received.__setitem__(0, received[0] + 1),
                             AUDIO_STREAM_QOS.to_rclpy())
    publisher = node.create_publisher(AudioDataStamped, 'bench_audio',
                                      AUDIO_STREAM_QOS.to_rclpy())
    executor = make_executor(kind)
    executor.add_node(node)
    spinner = threading.Thread(target=_spin, args=(executor,), daemon=True)
    spinner.start()
    try:
        message = AudioDataStamped()
        message.audio.data = bytes(16000 * 2 * chunk_ms // 1000)
        deadline = time.monotonic() + 10
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        deadline = started + CEILING_TIMEOUT_S
        for sent in range(messages):
            while sent - received[0] >= CEILING_MAX_IN_FLIGHT and time.monotonic() < deadline:
                time.sleep(0.0005)
            publisher.publish(message)
        while received[0] < messages and time.monotonic() < deadline:
            time.sleep(0.001)
        elapsed = time.monotonic() - started
    finally:
        executor.shutdown()
        spinner.join(CEILING_TIMEOUT_S)
        node.destroy_node()
        rclpy.try_shutdown()
    rate = received[0] / elapsed
    return {'messages': received[0], 'messages_per_s': round(rate, 1),
            'x_realtime': round(rate * chunk_ms / 1000, 1)}


def transport_ceiling(chunk_ms: int, kind: str, messages: int,
                      repeats: int = CEILING_REPEATS) -> dict[str, Any]:
    """Median of ``repeats`` executor_ceiling() runs (rclpy's executors stall now and then)."""
    runs = [executor_ceiling(chunk_ms, kind, messages) for _ in range(repeats)]
    rates = [run['messages_per_s'] for run in runs]
    rate = float(np.median(rates))
    return {'messages': messages, 'messages_per_s': round(rate, 1),
            'x_realtime': round(rate * chunk_ms / 1000, 1), 'runs_messages_per_s': rates}


def main(argv: list[str] | None = None) -> int:
    """Run the throughput benchmark; print one JSON object (stdout) and a table (stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--minutes', type=float, default=60.0, help='stream length')
    parser.add_argument('--chunk-ms', type=int, default=20,
                        help='audio per message (20: a robot microphone)')
    parser.add_argument('--replay-chunk-ms', type=int, default=REPLAY_CHUNK_MS,
                        help='join the recorded chunks into messages of up to this length for '
                        'the replay (ser_pipeline --chunk-ms); 0: play them as recorded')
    parser.add_argument('--model', default=None)
    parser.add_argument('--topology', choices=TOPOLOGIES, default='processes',
                        help='processes: each node its own process, as ros2 launch runs them; '
                        'in-process: ser_pipeline\'s one process')
    parser.add_argument('--executor', choices=EXECUTORS, default='single',
                        help='in-process: the executor the nodes spin on (single: '
                        'ser_pipeline\'s)')
    parser.add_argument('--profile', action='store_true',
                        help='in-process: sample every thread\'s stack')
    parser.add_argument('--quick', action='store_true', help='30 s: checks that it runs')
    arguments = parser.parse_args(argv)
    require_isolated_ros()
    minutes = 0.5 if arguments.quick else arguments.minutes
    model, model_kind = resolve_model(arguments.model)
    stream = cached_stream('throughput', seconds=minutes * 60, chunk_ms=arguments.chunk_ms)
    bag = Path(stream.bag)
    sampler = StackSampler() if arguments.profile else None
    cpu_started = time.process_time()
    join_ms = arguments.replay_chunk_ms or None
    config = emotion_config(queue_size=EMOTION_QUEUE)
    if arguments.topology == 'processes':
        record = run_as_processes(bag, model, AS_FAST_AS_POSSIBLE, config=config,
                                  join_ms=join_ms, paced_by_pipeline=True)
    else:
        record = run_in_process(bag, model, AS_FAST_AS_POSSIBLE, emotion_backpressure=True,
                                sampler=sampler, executor=arguments.executor, join_ms=join_ms,
                                config=config)
    cpu_s = time.process_time() - cpu_started
    wall_s = record.last_answer - record.play_started
    x_realtime = stream.duration_s / wall_s if wall_s > 0 else None
    # A batch's times are in each of its utterances' timings: count them once.
    features_s = sum(t.features_s / t.batch for t in record.timings)
    inference_s = sum(t.inference_s / t.batch for t in record.timings)
    stats = record.emotion_stats
    nothing_dropped = (stats['dropped'] == 0 and stats['failed'] == 0
                       and record.vad_stats['messages'] == len(record.chunks)
                       and stats['published'] == record.vad_stats['utterances_published'])
    vad_core = vad_core_ceiling(bag)
    messages = CEILING_MESSAGES // 10 if arguments.quick else CEILING_MESSAGES
    # The nodes spin single-threaded executors (the console scripts, ser_pipeline); the
    # MultiThreadedExecutor moved 2.3x real time of 20 ms messages (docs/benchmarks.md).
    executor = 'single' if arguments.topology == 'processes' else arguments.executor
    transport = {executor: transport_ceiling(join_ms or arguments.chunk_ms, executor, messages)}
    per_utterance = np.array([(t.features_s + t.inference_s) / t.batch for t in record.timings])
    batches = [t.batch for t in record.timings]
    result = {
        'benchmark': 'throughput',
        'quick': arguments.quick,
        'machine': machine_facts(),
        'model': str(model), 'model_kind': model_kind,
        'stream': stream.to_dict(),
        'status': record.status,
        'topology': arguments.topology,
        'executor': arguments.executor if arguments.topology == 'in-process' else None,
        'replay_chunk_ms': join_ms,
        'bf16': record.bf16,
        'audio_s': stream.duration_s,
        'wall_s': round(wall_s, 3),
        'x_realtime': None if x_realtime is None else round(x_realtime, 1),
        'target_x_realtime': TARGET_X_REALTIME,
        'target_met': bool(x_realtime and x_realtime >= TARGET_X_REALTIME and nothing_dropped),
        'messages': record.vad_stats['messages'],
        'utterances': record.vad_stats['utterances_published'],
        'emotions': stats['published'],
        'dropped': stats['dropped'],
        'nothing_dropped': nothing_dropped,
        'where_time_goes': {
            'process_cpu_s': round(cpu_s, 2),
            # CPU seconds of each thread of this process (in-process) or of each node's
            # process and this player process (processes).
            'cpu_s_of': 'threads' if arguments.topology == 'in-process' else 'processes',
            'cpu_s': dict(sorted(record.thread_cpu_s.items(), key=lambda kv: -kv[1])),
            'emotion_worker_busy_s': round(features_s + inference_s, 2),
            'emotion_features_s': round(features_s, 2),
            'emotion_inference_s': round(inference_s, 2),
            'emotion_batch_mean': round(float(np.mean(batches)), 2) if batches else None,
            'emotion_ms_per_utterance_p50': (round(float(np.median(per_utterance)) * 1000, 1)
                                             if len(per_utterance) else None),
            'vad_callback_s': round(record.vad_callback_s, 2),
            'vad_us_per_chunk': (round(record.vad_callback_s / record.vad_stats['messages']
                                       * 1e6, 1) if record.vad_stats['messages'] else None),
        },
        'ceilings_x_realtime': {
            'emotion_worker_alone': (round(stream.duration_s / (features_s + inference_s), 1)
                                     if features_s + inference_s else None),
            'vad_core_alone': vad_core['x_realtime'],
            **{f'rclpy_transport_alone_{kind}': value['x_realtime']
               for kind, value in transport.items()},
        },
        'vad_core': vad_core,
        'rclpy_transport': transport,
        'max_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        'profile': record.profile,
    }
    lines = [f'throughput: {stream.duration_s:.0f} s of audio in {wall_s:.1f} s = '
             f'{result["x_realtime"]}x real time (target {TARGET_X_REALTIME:g}x), '
             f'{result["utterances"]} utterances, {stats["dropped"]} dropped',
             f'{"ceiling (alone)":34} {"x real time":>12}']
    for name, value in result['ceilings_x_realtime'].items():
        lines.append(f'{name:34} {"-" if value is None else value:>12}')
    where = result['where_time_goes']
    lines.append(f'{where["cpu_s_of"]:34} {"CPU s":>12}')
    for name, seconds in where['cpu_s'].items():
        lines.append(f'{name[:34]:34} {seconds:12.2f}')
    print('\n'.join(lines), file=sys.stderr)
    print(json.dumps(result))
    return 0 if record.status == 0 and nothing_dropped else 1


if __name__ == '__main__':
    sys.exit(main())
