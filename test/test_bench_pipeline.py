"""The pipeline benchmarks still run: bench/run --quick on a small model, JSON shape checked.

The numbers of a quick run mean nothing (tiny model, shared CI machine); what is checked is
that every script goes through the real pipeline end to end and reports each field the
documentation (docs/benchmarks.md) explains, with values that are consistent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ros.harness import child_environment
from ros.test_emotion_node import build_tiny_checkpoint

from ser_ros.ros.vad_node import segmenter_config

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / 'bench'
RUN = BENCH / 'run'
PIPELINE_BENCHMARKS = ('pipeline_latency', 'throughput', 'footprint')
RUN_TIMEOUT_S = 280
STAGES = ('vad_decision', 'transport_in', 'queue', 'features', 'inference', 'publish',
          'after_decision', 'total')


@pytest.fixture(scope='module')
def bench_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp('bench_cache')


def bench_environment(cache: Path) -> dict[str, str]:
    environment = child_environment()
    environment['SER_BENCH_CACHE'] = str(cache)
    return environment


def test_make_stream_builds_real_speech_and_silence(tmp_path: Path, ravdess_dir: Path) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from make_stream import START_NS, build_stream
    finally:
        sys.path.remove(str(BENCH))
    from ser_ros.bags import AUDIO_DATA_STAMPED_TYPE, read_records

    info = build_stream(tmp_path / 'stream', utterances=2, chunk_ms=100, seed=1,
                        data_root=ravdess_dir)
    truth = json.loads(Path(info.truth).read_text(encoding='utf-8'))
    assert info.files == len(truth['files']) == 2
    start_s = START_NS / 1e9
    spans = [(f['start_s'], f['end_s']) for f in truth['files']]
    # Gaps of room tone (at least 1 s) before, between and after the sentences.
    assert spans[0][0] - start_s >= 1.0 and spans[1][0] - spans[0][1] >= 1.0
    assert start_s + info.duration_s - spans[1][1] >= 1.0
    assert all((ravdess_dir / f['file']).is_file() for f in truth['files'])
    chunks = [r for r in read_records(info.bag) if r.msgtype == AUDIO_DATA_STAMPED_TYPE]
    assert len(chunks) == pytest.approx(info.duration_s / 0.1, abs=1)


def test_run_refuses_unknown_benchmarks() -> None:
    result = subprocess.run([sys.executable, str(RUN), '--only', 'no_such_bench'],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and 'no_such_bench' in result.stderr


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_quick_pipeline_benchmarks_report_every_number(
        tmp_path: Path, ravdess_files: list[Path], bench_cache: Path) -> None:
    model = build_tiny_checkpoint(tmp_path / 'tiny.pt', ravdess_files[:2])
    command = [sys.executable, str(RUN), '--quick', '--only', ','.join(PIPELINE_BENCHMARKS),
               '--model', str(model)]
    result = subprocess.run(command, cwd=REPO_ROOT, env=bench_environment(bench_cache),
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    report = f'$ {" ".join(command)}\n[exit {result.returncode}]\n{result.stderr[-6000:]}'
    assert result.returncode == 0, report
    lines = [line for line in result.stdout.splitlines() if line.startswith('{')]
    assert len(lines) == 1, report   # one JSON object for the whole run
    combined = json.loads(lines[0])
    assert combined['ran'] == list(PIPELINE_BENCHMARKS) and combined['failed'] == []
    results = combined['results']

    latency = results['pipeline_latency']
    assert latency['quick'] and latency['model'] == str(model)
    # 3 sentences in the quick stream; the VAD may cut one in two, never lose one.
    assert latency['utterances'] >= 3 and latency['emotion_stats']['dropped'] == 0
    for stage in STAGES:
        values = latency['latency_ms'][stage]
        assert 0 <= values['p50'] <= values['p95'] <= values['max'], (stage, values)
    # The decision delay in audio time is what config/ser.yaml's segmenter settings give,
    # give or take a few frames (a stray voiced frame in the pause moves the end).
    settings = yaml.safe_load((REPO_ROOT / 'config' / 'ser.yaml').read_text(encoding='utf-8'))
    segmenter = segmenter_config(settings['vad_node']['ros__parameters'])
    assert latency['vad_decision_nominal_ms'] == segmenter.decision_delay_ms
    assert latency['vad_decision_audio_ms']['p50'] == pytest.approx(
        segmenter.decision_delay_ms, abs=3 * segmenter.frame_ms)
    for row in latency['per_utterance']:
        if row['natural']:
            parts = row['transport_in'] + row['queue'] + row['features'] + row['inference']
            assert row['after_decision'] >= parts - 0.1, row
            assert row['total'] == pytest.approx(row['vad_decision'] + row['after_decision'],
                                                 abs=0.1)
    assert set(latency['targets']) >= {'after_decision_met', 'vad_decision_met'}

    throughput = results['throughput']
    assert throughput['nothing_dropped'] and throughput['dropped'] == 0
    assert throughput['emotions'] == throughput['utterances'] >= 3
    message_s = throughput['replay_chunk_ms'] / 1000
    assert throughput['messages'] == pytest.approx(throughput['audio_s'] / message_s, abs=2)
    assert throughput['x_realtime'] > 0
    # Both are rounded; the quick replay takes ~0.1 s, so allow a few ms besides 2%.
    assert throughput['wall_s'] == pytest.approx(throughput['audio_s']
                                                 / throughput['x_realtime'], rel=0.02, abs=0.005)
    where = throughput['where_time_goes']
    assert where['emotion_worker_busy_s'] > 0 and where['vad_callback_s'] > 0
    assert where['cpu_s_of'] == 'processes' and where['cpu_s']['emotion_node'] > 0
    ceilings = throughput['ceilings_x_realtime']
    assert all(ceilings[key] > 0 for key in ('vad_core_alone', 'emotion_worker_alone',
                                             'rclpy_transport_alone_single'))

    footprint = results['footprint']
    startup = footprint['startup_s']
    assert 0 < startup['subscribed_s'] <= startup['first_emotion_s']
    # 'ready' comes from /diagnostics (every 0.1 s), so it may trail the first answer a little.
    assert startup['ready_s'] is not None and startup['ready_s'] > 0
    assert set(footprint['memory']) == {'vad_node', 'emotion_node', 'dialogue_policy_node'}
    for name, memory in footprint['memory'].items():
        # A Python process with rclpy alone is tens of MB; torch makes emotion_node larger.
        assert 20 < memory['rss_mb'] <= memory['peak_rss_mb'], (name, memory)
    assert footprint['memory']['emotion_node']['rss_mb'] > footprint['memory']['vad_node'][
        'rss_mb']
    assert footprint['runs'][0]['warm_up_emotions'] >= 1
