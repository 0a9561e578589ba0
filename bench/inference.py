"""Per-utterance latency: 5 s of audio -> features -> network -> probabilities (p95 <= 20 ms).

Times the path the emotion node runs for each utterance (mono float at 16 kHz in, fixed to 5 s,
mel128 features, normalisation, network, softmax) on real RAVDESS utterances, after warm-up,
for the paper's full RAVDESS network (7 classes, 128 x 626 input) with the reference per-window
convolution (``shared_blocks=0``) and the shared first two blocks (``shared_blocks=2``); each
with and without BatchNorm folding (``fuse_for_inference``), in fp32 and under bf16 autocast;
and the TorchScript file that ``ser_export`` writes (traced, folded; saved and loaded back) for
the shipped layout, or the only one the weights fit (``fusion`` = ``torchscript``; torch's
autocast reaches only part of a traced graph, so its bf16 row is mostly fp32 work).
Weights come from ``--model`` (loaded into both convolution layouts: their weights are the same
tensors) or are random (latency does not depend on the values).

Like :class:`~ser_ros.core.inference.EmotionRecognizer`, it first asks glibc to keep freed
memory mapped (``ser_ros.core.heap``); ``--heap default`` leaves glibc as it is, to show what
the page faults of fresh tensors cost.

``fused_skip_padding`` is what the emotion node runs: the fused network reusing its response
to the leading padding of utterances shorter than 5 s (``PaddingResponse``). The files here
keep their own room silence (~3.5-4 s each), so they skip less than the VAD-cut speech the node
sees; ``bench/pipeline_latency.py`` measures that.

Prints a table on stderr and one JSON object on stdout. Other work on the machine (a training
run, say) inflates every number: the load average is recorded before and after.

    .venv/bin/python bench/inference.py [--model PATH] [--iterations 50] [--heap default] [--quick]
                                        [--device cuda]

With ``--device cuda`` the network runs on the GPU (features stay on the CPU, as in the
emotion node); the network time then includes the copy of the features to the GPU and of the
probabilities back.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ser_ros.core.audio import AudioConfig, load_audio
from ser_ros.core.checkpoint import Checkpoint
from ser_ros.core.export import export_torchscript, load_torchscript
from ser_ros.core.features import FrontEnd, Normalizer, feature_preset
from ser_ros.core.heap import retain_freed_memory
from ser_ros.core.inference import bf16_supported
from ser_ros.core.model import ModelConfig, SerNet, count_parameters, fuse_for_inference
from ser_ros.core.threads import limit_cpu_threads
from ser_ros.data.labels import RAVDESS_7

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / 'shared' / 'data' / 'ravdess-16k'
PAPER_CONFIG = ModelConfig(num_classes=7, num_features=128, num_frames=626)
# The shipped layout first: later settings run with glibc thresholds the earlier ones raised.
SHARED_VARIANTS = (2, 0)
TARGET_P95_MS = 20.0
FILES_USED = 16
NODE_CONFIG = REPO / 'config' / 'ser.yaml'
MS = 1000.0
CPU = torch.device('cpu')


def node_threads() -> int | None:
    """emotion_node's ``threads`` in config/ser.yaml (what the robot runs), None if unset."""
    settings = yaml.safe_load(NODE_CONFIG.read_text(encoding='utf-8'))
    return settings.get('emotion_node', {}).get('ros__parameters', {}).get('threads') or None


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', type=Path, help='checkpoint (default: random weights)')
    parser.add_argument('--data', type=Path, default=Path(os.environ.get(
        'SER_DATA_ROOT', DEFAULT_DATA.parent)) / 'ravdess-16k', help='RAVDESS folder')
    parser.add_argument('--iterations', type=int, default=50, help='timed runs per setting')
    parser.add_argument('--warm-up', type=int, default=5, help='untimed runs per setting')
    parser.add_argument('--threads', type=int, default=node_threads(),
                        help="torch threads (default: emotion_node's in config/ser.yaml, "
                             '%(default)s; 0: torch default, all cores)')
    parser.add_argument('--heap', choices=('retain', 'default'), default='retain',
                        help="retain: keep freed memory mapped, as the recogniser does; "
                             "default: glibc's own thresholds")
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu',
                        help='where the network runs (features are always computed on the CPU)')
    parser.add_argument('--quick', action='store_true', help='5 runs after 2 warm-ups (CI)')
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.warm_up = 5, 2
    if args.iterations < 1 or args.warm_up < 0:
        parser.error('--iterations must be >= 1 and --warm-up >= 0')
    return args


def utterances(folder: Path, count: int) -> list[np.ndarray]:
    """Return real speech: ``count`` RAVDESS files spread over actors, mono 16 kHz."""
    files = sorted(folder.glob('Actor_*/03-01-*.*'))
    if not files:
        raise SystemExit(f'no RAVDESS files under {folder} (set --data or SER_DATA_ROOT)')
    step = max(1, len(files) // count)
    return [load_audio(path) for path in files[::step][:count]]


def percentiles(laps: list[float]) -> dict[str, float]:
    """Return p50, p95 and mean of ``laps`` (seconds) in milliseconds."""
    array = np.asarray(laps) * MS
    return {'p50': round(float(np.percentile(array, 50)), 2),
            'p95': round(float(np.percentile(array, 95)), 2),
            'mean': round(float(array.mean()), 2)}


def time_setting(front_end: FrontEnd, network: torch.nn.Module, bf16: bool,
                 speech: list[np.ndarray], warm_up: int, iterations: int,
                 device: torch.device = CPU) -> dict[str, dict[str, float]]:
    """Time features, network and the whole path per utterance (one utterance per call)."""
    rate = front_end.audio.sample_rate
    features_laps, network_laps, total_laps = [], [], []

    def one(index: int) -> tuple[float, float]:
        started = time.perf_counter()
        features = front_end(speech[index % len(speech)], rate)
        extracted = time.perf_counter()
        batch = torch.from_numpy(features)[None].to(device)
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                    enabled=bf16):
            probabilities = torch.softmax(network(batch).float(), dim=1)
        probabilities.cpu().numpy()   # waits for the GPU, if any
        return extracted - started, time.perf_counter() - extracted

    for index in range(warm_up):
        one(index)
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for index in range(iterations):
        extract, forward = one(index)
        features_laps.append(extract)
        network_laps.append(forward)
        total_laps.append(extract + forward)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    return {'features_ms': percentiles(features_laps), 'network_ms': percentiles(network_laps),
            'total_ms': percentiles(total_laps),
            'page_faults_per_run': round(faults / iterations, 1)}


def exported_network(model: SerNet, front_end: FrontEnd, labels: tuple[str, ...],
                     folder: Path) -> torch.nn.Module:
    """``model`` written by ``export_torchscript`` and loaded back, as a deployment would."""
    checkpoint = Checkpoint.from_model(model, front_end.audio, front_end.features,
                                       front_end.normalizer, labels)
    return load_torchscript(export_torchscript(checkpoint, folder / 'model.ts')).module


class PaddingSkipping(torch.nn.Module):
    """A fused network run as EmotionRecognizer runs it: windows of leading padding reused.

    The padding response is built on first use under the caller's autocast state, once per
    precision, as the recogniser builds it under its own.
    """

    def __init__(self, network: SerNet, column: np.ndarray) -> None:
        super().__init__()
        self.network = network
        self.column = torch.from_numpy(column)
        self.responses: dict[bool, Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``x``, skipping the windows that see only padding."""
        bf16 = torch.is_autocast_enabled(x.device.type)
        if bf16 not in self.responses:
            self.responses[bf16] = self.network.padding_response(self.column.to(x.device))
        return self.network(x, self.responses[bf16])


def networks(args: argparse.Namespace
             ) -> tuple[FrontEnd | None, dict[int, SerNet], tuple[str, ...], str]:
    """Return front end (None without a checkpoint), network per shared_blocks, labels, origin."""
    if args.model is None:
        torch.manual_seed(0)
        built = {shared: SerNet(replace(PAPER_CONFIG, shared_blocks=shared)).eval()
                 for shared in SHARED_VARIANTS}
        return None, built, RAVDESS_7, 'random weights'
    checkpoint = Checkpoint.load(args.model)
    built = {}
    for shared in SHARED_VARIANTS:
        try:
            config = replace(checkpoint.model_config, shared_blocks=shared)
        except ValueError as error:
            print(f'skipping shared_blocks={shared}: {error}', file=sys.stderr)
            continue
        model = SerNet(config)
        model.load_state_dict(checkpoint.state_dict)
        built[shared] = model.eval()
    return checkpoint.front_end(), built, checkpoint.labels, str(args.model)


def machine() -> dict[str, Any]:
    """Facts that make the timings comparable."""
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as handle:
            cpu = next((line.split(':', 1)[1].strip() for line in handle
                        if line.startswith('model name')), cpu)
    except OSError:
        pass
    return {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
            'cpu': cpu, 'cores': os.cpu_count(), 'torch': torch.__version__,
            'torch_threads': torch.get_num_threads(), 'python': platform.python_version(),
            'bf16_native': bf16_supported(torch.device('cpu'))}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time every setting; return the JSON-able result."""
    if args.threads:
        limit_cpu_threads(args.threads)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device is available here')
    heap_retained = args.heap == 'retain' and retain_freed_memory()
    load_before = os.getloadavg()[0]
    speech = utterances(args.data, FILES_USED)
    front_end, built, labels, weights = networks(args)
    if front_end is None:
        bare = FrontEnd(AudioConfig(), feature_preset('mel128'))
        front_end = bare.with_normalizer(Normalizer.fit(np.stack(
            [bare(y, bare.audio.sample_rate) for y in speech])))
    front_end.warm_up()
    precisions = [False, True] if bf16_supported(device) else [False]
    results = []
    column = front_end.padding_column()
    with tempfile.TemporaryDirectory(prefix='ser_bench_export_') as export_folder:
        for shared, model in built.items():
            variants: dict[str, Callable[[], torch.nn.Module]] = {
                'fused': lambda model=model: fuse_for_inference(model),
                'unfused': lambda model=model: model,
            }
            if shared == next(iter(built)) and column is not None:
                variants['fused_skip_padding'] = lambda model=model: PaddingSkipping(
                    fuse_for_inference(model), column)
            if shared == next(iter(built)):   # the shipped layout, or the only one that fits
                variants['torchscript'] = lambda model=model: exported_network(
                    model, front_end, labels, Path(export_folder))
            for fusion, make in variants.items():
                network = make().to(device)
                for bf16 in precisions:
                    timing = time_setting(front_end, network, bf16, speech, args.warm_up,
                                          args.iterations, device)
                    results.append({'shared_blocks': shared, 'fusion': fusion,
                                     'precision': 'bf16' if bf16 else 'fp32', **timing})
    return {
        'benchmark': 'inference', 'target_p95_ms': TARGET_P95_MS, 'weights': weights,
        'model_parameters': count_parameters(next(iter(built.values()))),
        'feature_shape': list(front_end.feature_shape), 'utterance_s': front_end.audio.duration_s,
        'iterations': args.iterations, 'warm_up': args.warm_up, 'files': len(speech),
        'heap_retained': heap_retained,
        'bf16_skipped': None if len(precisions) == 2 else f'no native bfloat16 on {device}',
        'device': (torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'),
        'machine': machine(), 'load_avg_1m_before': round(load_before, 2),
        'load_avg_1m_after': round(os.getloadavg()[0], 2), 'results': results,
    }


def table(result: dict[str, Any]) -> str:
    """Short human-readable table of p50/p95 per setting."""
    header = ('shared', 'fusion', 'precision', 'features p50/p95', 'network p50/p95',
              'total p50/p95 ms', 'faults/run')
    rows = [header]
    for item in result['results']:
        rows.append((str(item['shared_blocks']), item['fusion'], item['precision'],
                     *(f"{item[key]['p50']:.1f} / {item[key]['p95']:.1f}"
                       for key in ('features_ms', 'network_ms', 'total_ms')),
                     f"{item['page_faults_per_run']:.0f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ['  '.join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]
    lines.insert(1, '-' * len(lines[0]))
    machine_info = result['machine']
    lines.append(f"{machine_info['cpu']}, {machine_info['torch_threads']} torch threads, "
                 f"load average {result['load_avg_1m_before']} -> {result['load_avg_1m_after']}; "
                 f"{result['iterations']} runs after {result['warm_up']} warm-ups; "
                 f"heap {'retained' if result['heap_retained'] else 'glibc default'}; "
                 f"target p95 <= {TARGET_P95_MS:g} ms")
    return '\n'.join(lines)


def main() -> int:
    """Run the benchmark and print the table (stderr) and JSON (stdout)."""
    result = run(parse_args())
    print(table(result), file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
