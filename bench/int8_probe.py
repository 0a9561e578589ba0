"""What int8 convolutions would buy the paper's network: time, and agreement with float32.

An exploration for issue 6's latency target, not a path the nodes can take (and not part of
``bench/run``): post-training static quantisation of the fused network's conv blocks with
torch.ao's eager quantised Conv2d (int8 weights per output channel, uint8 activations per
tensor, ranges from histogram observers), the max-pool in int8, the ELU in float (torch's
quantised ELU is several times slower than the float one here), the rest of the network under
bf16 autocast. Each block's input and output ranges are calibrated on the checkpoint's
validation files and everything is judged on its test files (``models/*_split.json``): WA,
agreement of the top label with float32, largest probability change, and the network time
on one thread (after warm-up; the front end is not included).

torch 2.13 deprecates both torch.ao's eager quantisation and quantised tensors ("will be
removed in a future PyTorch release"): a shipped int8 path would go through torchao's pt2e
flow (torch.compile) or an int8 ONNX Runtime model, not through this code.

    .venv/bin/python bench/int8_probe.py [--model PATH] [--split JSON] [--iterations 60] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MS_PER_SECOND, emit, machine, percentiles, table, timed  # noqa: E402
from make_stream import DATA_ROOT, REPO  # noqa: E402

from ser_ros.core.audio import load_audio  # noqa: E402
from ser_ros.core.ensemble import Ensemble, load_model  # noqa: E402
from ser_ros.core.model import fuse_for_inference  # noqa: E402
from ser_ros.core.threads import limit_cpu_threads  # noqa: E402
from ser_ros.data.labels import ravdess_label  # noqa: E402
from ser_ros.data.ravdess import parse_ravdess_name  # noqa: E402

ENGINE = 'onednn'
PAPER_NETWORK = REPO / 'models' / 'ser_ravdess_7class_ensemble.pt'
CALIBRATION_FILES = 128
QUICK_FILES = 16          # --quick: calibration and test files each, and timed calls
BATCH = 16
WARM_UP_CALLS = 5
# Which conv blocks run int8 (0-based; block 2 of the paper = index 1 holds most arithmetic).
VARIANTS: dict[str, tuple[int, ...]] = {
    'int8 block 2': (1,),
    'int8 blocks 2-4': (1, 2, 3),
    'int8 blocks 1-4': (0, 1, 2, 3),
}


class Int8ConvBlock(nn.Module):
    """Quantise -> int8 conv (BatchNorm folded) -> int8 max-pool -> float ELU."""

    def __init__(self, block: nn.Sequential, input_observer: Any, output_observer: Any) -> None:
        super().__init__()
        conv = copy.deepcopy(block[0]).float()
        conv.padding = tuple(k // 2 for k in conv.kernel_size)   # 'same', as quantised conv needs
        conv.qconfig = torch.ao.quantization.QConfig(
            activation=lambda: output_observer,
            weight=torch.ao.quantization.default_per_channel_weight_observer)
        conv.activation_post_process = output_observer
        self.conv = torch.ao.nn.quantized.Conv2d.from_float(conv)
        scale, zero_point = input_observer.calculate_qparams()
        self.input_scale, self.input_zero_point = float(scale), int(zero_point)
        self.pool, self.activation = block[2], block[3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the block on float maps, like the float block."""
        quantised = torch.quantize_per_tensor(x.float(), self.input_scale,
                                              self.input_zero_point, torch.quint8)
        return self.activation(self.pool(self.conv(quantised)).dequantize())


def quantised_copy(model: nn.Module, blocks: Sequence[int], calibration: np.ndarray) -> nn.Module:
    """Copy of the fused network with ``blocks`` int8, ranges observed on ``calibration``."""
    observer = torch.ao.quantization.HistogramObserver
    inputs = {i: observer(dtype=torch.quint8, reduce_range=False) for i in blocks}
    outputs = {i: observer(dtype=torch.quint8, reduce_range=False) for i in blocks}
    quantised = copy.deepcopy(model)
    encoder_blocks = quantised.encoder.blocks
    hooks = []
    for i in blocks:
        conv = encoder_blocks[i][0]
        hooks.append(conv.register_forward_pre_hook(
            lambda _m, args, i=i: inputs[i](args[0])))
        hooks.append(conv.register_forward_hook(
            lambda _m, _args, output, i=i: outputs[i](output)))
    with torch.inference_mode():
        for start in range(0, len(calibration), BATCH):
            quantised(torch.from_numpy(calibration[start:start + BATCH]))
    for hook in hooks:
        hook.remove()
    for i in blocks:
        encoder_blocks[i] = Int8ConvBlock(encoder_blocks[i], inputs[i], outputs[i])
    return quantised


def probabilities(model: nn.Module, features: np.ndarray, bf16: bool) -> np.ndarray:
    """Softmax outputs of ``model`` for a feature batch, in batches."""
    rows = []
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(features), BATCH):
            logits = model(torch.from_numpy(features[start:start + BATCH]))
            rows.append(torch.softmax(logits.float(), dim=1).numpy())
    return np.concatenate(rows)


def network_ms(model: nn.Module, features: np.ndarray, bf16: bool,
               iterations: int) -> dict[str, float | None]:
    """p50/p95 of one utterance through ``model`` (ms), cycling through ``features``."""
    def call(i: int) -> torch.Tensor:
        return model(torch.from_numpy(features[i % len(features)][np.newaxis]))

    times = []
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        for i in range(WARM_UP_CALLS):
            call(i)
        for i in range(iterations):
            times.append(timed(call, i)[1] * MS_PER_SECOND)
    return percentiles(times)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure each variant; print a table on stderr and one JSON object on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', type=Path, default=PAPER_NETWORK,
                        help="checkpoint of the paper's network, or an ensemble whose first "
                             'member is one (default: the shipped ensemble, whose first member '
                             'is the default model until 2026-12-01)')
    parser.add_argument('--split', type=Path,
                        default=REPO / 'models' / 'ser_ravdess_7class_split.json',
                        help='split JSON of the model (validation_files, test_files)')
    parser.add_argument('--data', type=Path, default=DATA_ROOT, help='RAVDESS folder')
    parser.add_argument('--iterations', type=int, default=60, help='timed calls per variant')
    parser.add_argument('--quick', action='store_true',
                        help=f'{QUICK_FILES} files and calls each: checks that it runs')
    arguments = parser.parse_args(argv)
    # torch.ao and quantised tensors are deprecated in favour of torchao (see the docstring).
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    warnings.filterwarnings('ignore', message='.*are deprecated and will be removed')
    if ENGINE not in torch.backends.quantized.supported_engines:
        print(f'this torch has no {ENGINE} quantised engine', file=sys.stderr)
        return 1
    torch.backends.quantized.engine = ENGINE
    limit_cpu_threads(1)
    split = json.loads(arguments.split.read_text(encoding='utf-8'))
    loaded = load_model(arguments.model)
    checkpoint = loaded.members[0] if isinstance(loaded, Ensemble) else loaded
    if not checkpoint.build_model().config.uses_conv:
        print(f'int8_probe: {arguments.model} has no conv blocks to quantise; give the paper\'s '
              'network (--model)', file=sys.stderr)
        return 2
    front_end, labels = checkpoint.front_end(), list(checkpoint.labels)
    rate = front_end.audio.sample_rate
    count = QUICK_FILES if arguments.quick else None
    iterations = QUICK_FILES if arguments.quick else arguments.iterations

    def features_of(names: Sequence[str]) -> np.ndarray:
        return np.stack([front_end(load_audio(arguments.data / name, sample_rate=rate), rate)
                         for name in names])

    calibration = features_of(split['validation_files'][:count or CALIBRATION_FILES])
    test_files = split['test_files'][:count]
    test = features_of(test_files)
    truth = np.array([labels.index(ravdess_label(parse_ravdess_name(Path(name).stem).emotion))
                      for name in test_files])
    fused = fuse_for_inference(checkpoint.build_model())
    reference = probabilities(fused, test, bf16=False)
    models = {'fp32': (fused, False), 'bf16': (fused, True)}
    for name, blocks in VARIANTS.items():
        models[name] = (quantised_copy(fused, blocks, calibration), True)
    results = {}
    for name, (model, bf16) in models.items():
        probs = probabilities(model, test, bf16)
        results[name] = {
            'wa': round(float(np.mean(probs.argmax(1) == truth)) * 100, 1),
            'top_label_agreement_with_fp32': round(
                float(np.mean(probs.argmax(1) == reference.argmax(1))) * 100, 1),
            'max_probability_change': round(float(np.abs(probs - reference).max()), 3),
            'network_ms': network_ms(model, test, bf16, iterations),
        }
    rows = [(name, r['wa'], r['top_label_agreement_with_fp32'], r['max_probability_change'],
             r['network_ms']['p50'], r['network_ms']['p95']) for name, r in results.items()]
    human = table(rows, ('variant', 'WA %', 'agrees with fp32 %', 'max dp', 'p50 ms', 'p95 ms'))
    emit({'benchmark': 'int8_probe', 'machine': machine(), 'model': str(arguments.model),
          'quick': arguments.quick, 'engine': ENGINE, 'calibration_files': len(calibration),
          'test_files': len(test), 'threads': 1, 'results': results}, human)
    return 0


if __name__ == '__main__':
    sys.exit(main())
