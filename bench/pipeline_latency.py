"""End of speech -> /emotion latency through the real pipeline, split by stage (issue 6, item 1).

    scripts/run_isolated.sh .venv/bin/python bench/pipeline_latency.py [--utterances 120]
        [--rate 1] [--model PATH] [--fp32] [--whole-network] [--quick]

Plays a bag of real RAVDESS sentences and room silence (bench/make_stream.py) at real time
through ``ser_pipeline``'s node set (vad_node, emotion_node, dialogue_policy_node on one
MultiThreadedExecutor in this process, exactly what ``ser_pipeline --bag`` runs) and joins,
per utterance, the time stamps (time.monotonic(), one clock for all threads) of:

- ``eos``: the player published the chunk holding the utterance's end of speech (its last
  voiced frame, as the VAD decides it): at real time, when the speaker stopped;
- ``vad``: vad_node published the utterance (``vad_decision`` = vad - eos: the hangover the
  VAD waits before it calls the speech ended, plus its own processing);
- ``received`` / ``started``: emotion_node's callback got it / its worker took it
  (``transport_in`` = received - vad, ``queue`` = started - received);
- ``features`` and ``inference``: the front end and the network, measured inside the worker;
- ``answered``: the /emotion message reached a listener node (``publish`` = answered - the
  end of inference: building, publishing and delivering the Classification).

``after_decision`` = answered - vad is everything that is ours once the VAD has decided
(target p95 <= 25 ms); ``total`` = answered - eos. The statistics cover utterances ended by
the hangover; those split at ``max_utterance_ms`` or closed by the end of the input (no
hangover) are counted as ``utterances_cut`` and listed. Prints one JSON object on stdout and
a table on stderr.
"""

from __future__ import annotations

import argparse
import bisect
import json
import resource
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_stream import REPO, cached_stream, require_isolated_ros, resolve_model  # noqa: E402
from processes import run_as_processes  # noqa: E402

from ser_ros.training.vad_cuts import emotion_node_trailing_silence  # noqa: E402

NS_PER_S = 1_000_000_000
MS = 1000.0
TARGET_AFTER_DECISION_P95_MS = 25.0
TARGET_VAD_DECISION_MS = 300.0
STAGES = ('vad_decision', 'transport_in', 'queue', 'features', 'inference', 'publish',
          'after_decision', 'total')
DEFAULT_TIMEOUT_S = 120.0
# multi: what ser_pipeline spins (MultiThreadedExecutor); single: SingleThreadedExecutor.
EXECUTORS = ('multi', 'single')
# processes: each node its own process (ros2 launch); in-process: ser_pipeline.
TOPOLOGIES = ('processes', 'in-process')


@dataclass
class RunRecord:
    """What one in-process pipeline run left behind."""

    status: int
    play_started: float
    play_ended: float
    answers: list[tuple[float, dict[str, Any]]]
    chunks: list[tuple[int, float]]
    vad_published: list[Any]
    timings: list[Any]
    vad_stats: dict[str, Any]
    emotion_stats: dict[str, Any]
    vad_callback_s: float
    decision_delay_ms: float
    bf16: bool = False
    thread_cpu_s: dict[str, float] = field(default_factory=dict)
    profile: dict[str, Any] | None = None

    @property
    def last_answer(self) -> float:
        """Monotonic time of the last /emotion reaching the listener (or the end of playing)."""
        return max((arrival for arrival, _ in self.answers), default=self.play_ended)


def stat_cpu_seconds(stat: str) -> float:
    """CPU seconds (user + system) from the text of a /proc/<pid>[/task/<tid>]/stat file."""
    import os

    fields = stat[stat.rindex(')') + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) of every thread of this process, by thread name.

    Python threads get their names; others (torch, DDS) are grouped by their kernel name.
    """
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    totals: dict[str, float] = {}
    for task in Path('/proc/self/task').iterdir():
        try:
            stat = (task / 'stat').read_text()
        except OSError:
            continue
        comm = stat[stat.index('(') + 1:stat.rindex(')')]
        seconds = stat_cpu_seconds(stat)
        name = names.get(int(task.name), f'[{comm}]')
        # Thread pool workers are numbered; what matters is their sum.
        if name.startswith('ThreadPoolExecutor'):
            name = 'executor pool (callbacks)'
        totals[name] = totals.get(name, 0.0) + seconds
    return totals


# The thread pool ser_pipeline used before it moved to one executor thread (for comparison).
MULTI_EXECUTOR_THREADS = 4


def make_executor(kind: str) -> Any:
    """Return an executor: single (ser_pipeline's) or multi (a pool of 4 threads)."""
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    if kind == 'multi':
        return MultiThreadedExecutor(num_threads=MULTI_EXECUTOR_THREADS)
    if kind == 'single':
        return SingleThreadedExecutor()
    raise ValueError(f'unknown executor {kind!r}; choose one of {EXECUTORS}')


def run_in_process(bag: Path, model: Path, rate: float, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                   config: Path | None = None, emotion_backpressure: bool = False,
                   sampler: Any = None, executor: str = 'single',
                   join_ms: int | None = None) -> RunRecord:
    """Run ser_pipeline's nodes on ``bag`` in this process; collect every time stamp.

    ``emotion_backpressure`` also holds the player while two utterances wait for the emotion
    node (besides the VAD's own flow control), so that a faster-than-real-time replay never
    overflows its queue: 'as fast as the pipeline keeps up, nothing dropped'. ``join_ms`` plays
    the bag's audio as messages of up to that length (``ser_pipeline --chunk-ms``).
    """
    import rclpy

    from ser_ros.ros import pipeline as ser_pipeline

    options = ['--bag', str(bag), '--model', str(model), '--device', 'cpu', '--rate', str(rate),
               '--timeout', str(timeout_s)]
    if config is not None:
        options += ['--config', str(config)]
    arguments = ser_pipeline.parse_arguments(options)
    values = ser_pipeline.launch_values(arguments)
    feed = ser_pipeline.bag_feed(bag, join_ms=join_ms)

    class BenchPipeline(ser_pipeline.Pipeline):
        """ser_pipeline's Pipeline, noting when playing starts and ends."""

        play_started = 0.0
        play_ended = 0.0

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            if executor != 'single':   # the same nodes on another executor (before spinning)
                nodes = [*self.nodes.values(), self.node]
                for node in nodes:
                    self.executor.remove_node(node)
                self.executor.shutdown()
                self.executor = make_executor(executor)
                for node in nodes:
                    self.executor.add_node(node)

        def _play(self) -> None:
            self.play_started = time.monotonic()
            try:
                super()._play()
            finally:
                self.play_ended = time.monotonic()

        def _backlog(self) -> int:
            backlog = super()._backlog()
            if emotion_backpressure:
                vad = self.nodes['vad_node'].counters['utterances_published']
                if vad - self.nodes['emotion_node'].stats()['handled'] >= 2:
                    return ser_pipeline.MAX_BACKLOG
            return backlog

    rclpy.init(args=['bench'])
    pipeline = None
    answers: list[tuple[float, dict[str, Any]]] = []
    try:
        pipeline = BenchPipeline(values, feed, rate)
        pipeline.monitor.print_line = lambda line: answers.append((time.monotonic(),
                                                                   json.loads(line)))
        cpu_before = thread_cpu_seconds()
        if sampler is not None:
            sampler.start()
        status = pipeline.run(timeout_s)
        if sampler is not None:
            sampler.stop()
        cpu_after = thread_cpu_seconds()
        vad = pipeline.nodes['vad_node']
        emotion = pipeline.nodes['emotion_node']
        return RunRecord(
            status=status, play_started=pipeline.play_started, play_ended=pipeline.play_ended,
            answers=[a for a in answers if a[1].get('type') == 'emotion'],
            chunks=list(pipeline.monitor.published), vad_published=list(vad.published),
            timings=emotion.timings(), vad_stats=dict(vad.counters),
            emotion_stats=emotion.stats(), vad_callback_s=vad.callback_s,
            decision_delay_ms=vad.config.decision_delay_ms, bf16=emotion.bf16,
            thread_cpu_s={name: round(seconds - cpu_before.get(name, 0.0), 2)
                          for name, seconds in cpu_after.items()
                          if seconds - cpu_before.get(name, 0.0) >= 0.01},
            profile=None if sampler is None else sampler.report())
    finally:
        if pipeline is not None:
            pipeline.close()
        rclpy.try_shutdown()


def per_utterance(record: RunRecord) -> list[dict[str, float]]:
    """Join the time stamps per utterance (by its end stamp); milliseconds per stage."""
    vad_by_end = {item.end_ns: item for item in record.vad_published}
    timing_by_end = {item.end_ns: item for item in record.timings}
    chunk_ends = [end for end, _ in record.chunks]
    rows = []
    for arrival, line in record.answers:
        end_ns = round(line['end_s'] * NS_PER_S)
        key = min(timing_by_end, key=lambda k: abs(k - end_ns), default=None)
        if key is None or abs(key - end_ns) > 1_000_000 or key not in vad_by_end:
            continue
        timing, vad = timing_by_end[key], vad_by_end[key]
        index = bisect.bisect_left(chunk_ends, key)
        if index == len(chunk_ends):
            continue
        eos = record.chunks[index][1]
        inferred = timing.started + timing.features_s + timing.inference_s
        rows.append({
            'end_s': key / NS_PER_S,
            'duration_s': vad.duration_s,
            'vad_decision': (vad.published - eos) * MS,
            'vad_decision_audio': vad.decision_delay_s * MS,
            'transport_in': (timing.received - vad.published) * MS,
            'queue': (timing.started - timing.received) * MS,
            'features': timing.features_s * MS,
            'inference': timing.inference_s * MS,
            'publish': (arrival - inferred) * MS,
            'after_decision': (arrival - vad.published) * MS,
            'total': (arrival - eos) * MS,
            # Ended by the hangover: not split at max_utterance_ms, not closed by the end of
            # the input (the VAD's flush after the last chunk).
            'natural': not vad.split and vad.published <= record.play_ended,
        })
    return rows


def summarise(rows: Sequence[dict[str, float]], stages: Sequence[str] = STAGES,
              ) -> dict[str, dict[str, float | None]]:
    """p50 / p95 / max in ms of every stage."""
    summary = {}
    for stage in stages:
        values = np.array([row[stage] for row in rows], dtype=np.float64)
        summary[stage] = ({'p50': None, 'p95': None, 'max': None} if len(values) == 0 else
                          {'p50': round(float(np.percentile(values, 50)), 2),
                           'p95': round(float(np.percentile(values, 95)), 2),
                           'max': round(float(values.max()), 2)})
    return summary


def machine_facts() -> dict[str, Any]:
    """Date, CPU and versions (bench/common.py's machine() when present)."""
    try:
        from common import machine
    except ImportError:
        import datetime
        import os
        import platform
        return {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec='seconds'), 'cores': os.cpu_count(),
                'python': platform.python_version()}
    return machine()


def human_table(summary: dict[str, dict[str, float | None]], title: str) -> str:
    """Fixed-width table of p50 / p95 / max per stage."""
    lines = [title, f'{"stage (ms)":16} {"p50":>9} {"p95":>9} {"max":>9}']
    for stage, values in summary.items():
        cells = ['-' if values[k] is None else f'{values[k]:9.1f}' for k in ('p50', 'p95', 'max')]
        lines.append(f'{stage:16} ' + ' '.join(f'{c:>9}' for c in cells))
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the latency benchmark; print one JSON object (stdout) and a table (stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--utterances', type=int, default=120,
                        help='RAVDESS files in the stream (default %(default)s)')
    parser.add_argument('--rate', type=float, default=1.0, help='replay speed (1: real time)')
    parser.add_argument('--model', default=None, help='checkpoint (default: shipped, else a '
                        'random-weight one of the same size)')
    parser.add_argument('--fp32', action='store_true', help='emotion_node bf16: false '
                        '(default: config/ser.yaml, bf16 where the CPU has it)')
    parser.add_argument('--whole-network', action='store_true',
                        help='emotion_node skip_padding: false (the network convolves the '
                        'padding before short utterances too, as before it skipped it)')
    parser.add_argument('--trailing-silence', type=float, default=None, metavar='S',
                        help='emotion_node trailing_silence_s (default: config/ser.yaml\'s)')
    parser.add_argument('--topology', choices=TOPOLOGIES, default='processes',
                        help='processes: each node its own process, as ros2 launch runs them '
                        'on the robot; in-process: ser_pipeline\'s one process')
    parser.add_argument('--reserve-core', action='store_true',
                        help='processes: emotion_node alone on one CPU, the other processes '
                        'on the rest')
    parser.add_argument('--executor', choices=EXECUTORS, default='single',
                        help='in-process: the executor the nodes spin on (single: '
                        'ser_pipeline\'s)')
    parser.add_argument('--quick', action='store_true',
                        help='3 files at 5x real time: checks that it runs')
    arguments = parser.parse_args(argv)
    require_isolated_ros()
    utterances, rate = (3, 5.0) if arguments.quick else (arguments.utterances, arguments.rate)
    model, model_kind = resolve_model(arguments.model)
    stream = cached_stream('latency', utterances=utterances)
    bag = Path(stream.bag)
    changes = {**({'bf16': False} if arguments.fp32 else {}),
               **({'skip_padding': False} if arguments.whole_network else {}),
               **({'trailing_silence_s': arguments.trailing_silence}
                  if arguments.trailing_silence is not None else {})}
    config = emotion_config(**changes) if changes else None
    if arguments.topology == 'processes':
        record = run_as_processes(bag, model, rate, config=config,
                                  reserve_core=arguments.reserve_core)
    elif arguments.reserve_core:
        parser.error('--reserve-core needs --topology processes')
    else:
        record = run_in_process(bag, model, rate, config=config, executor=arguments.executor)
    every = per_utterance(record)
    rows = [row for row in every if row['natural']]
    summary = summarise(rows)
    decision_audio = summarise(rows, ('vad_decision_audio',))['vad_decision_audio']
    after = summary['after_decision']['p95']
    result = {
        'benchmark': 'pipeline_latency',
        'quick': arguments.quick,
        'machine': machine_facts(),
        'model': str(model), 'model_kind': model_kind, 'bf16': record.bf16,
        'skip_padding': not arguments.whole_network,
        'trailing_silence_s': (emotion_node_trailing_silence() if arguments.trailing_silence
                               is None else arguments.trailing_silence),
        'stream': stream.to_dict(),
        'rate': rate,
        'topology': arguments.topology,
        'executor': arguments.executor if arguments.topology == 'in-process' else None,
        'reserve_core': arguments.reserve_core,
        'status': record.status,
        'utterances': len(rows),
        'utterances_cut': len(every) - len(rows),
        'vad_decision_nominal_ms': record.decision_delay_ms,
        'emotion_stats': {k: record.emotion_stats[k] for k in ('received', 'published',
                                                               'dropped', 'failed')},
        'latency_ms': summary,
        'vad_decision_audio_ms': decision_audio,
        'targets': {
            'after_decision_p95_ms': TARGET_AFTER_DECISION_P95_MS,
            'after_decision_met': after is not None and after <= TARGET_AFTER_DECISION_P95_MS,
            'vad_decision_ms': TARGET_VAD_DECISION_MS,
            'vad_decision_met': (summary['vad_decision']['p95'] is not None
                                 and summary['vad_decision']['p95'] * rate
                                 <= TARGET_VAD_DECISION_MS),
        },
        'max_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        'per_utterance': [{k: v if isinstance(v, bool) else round(v, 2) for k, v in row.items()}
                          for row in every],
    }
    print(human_table(summary, f'end of speech -> /emotion, {len(rows)} utterances at '
                               f'{rate:g}x real time ({model_kind} model)'), file=sys.stderr)
    print(json.dumps(result))
    return 0 if record.status == 0 and rows else 1


def emotion_config(**parameters: Any) -> Path:
    """Write a copy of config/ser.yaml with emotion_node ``parameters`` changed; return its path."""
    return config_with(REPO / 'config' / 'ser.yaml', {'emotion_node': parameters})


def config_with(base: Path, changes: dict[str, dict[str, Any]]) -> Path:
    """Write a copy of the parameters file ``base`` with ``{node: {parameter: value}}`` changed."""
    import tempfile

    import yaml

    config = yaml.safe_load(base.read_text(encoding='utf-8'))
    for node, parameters in changes.items():
        config[node]['ros__parameters'].update(parameters)
    handle = tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False)
    with handle:
        yaml.safe_dump(config, handle)
    return Path(handle.name)


if __name__ == '__main__':
    sys.exit(main())
