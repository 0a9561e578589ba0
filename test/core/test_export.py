"""TorchScript export: the exported network gives the PyTorch probabilities without ser_ros."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ser_ros.cli.export import main as export_main
from ser_ros.core.checkpoint import Checkpoint
from ser_ros.core.export import (
    EXPORT_FORMAT,
    ExportError,
    export_torchscript,
    load_torchscript,
    quiet_jit,
)
from ser_ros.training.vad_cuts import emotion_node_trailing_silence

from .test_checkpoint import LABELS, real_normalizer, tiny_checkpoint, tiny_model, tiny_model_config

TOLERANCE = 1e-5
SUBPROCESS_TIMEOUT_S = 120


@pytest.fixture(scope='module')
def features(ravdess_files: list[Path]) -> torch.Tensor:
    """Normalised features (3, 128, 126) of three real utterances."""
    files = ravdess_files[::len(ravdess_files) // 3][:3]
    front_end = tiny_checkpoint(normalizer=real_normalizer(files)).front_end()
    return torch.from_numpy(np.stack([front_end.extract_file(path) for path in files]))


def pytorch_probabilities(checkpoint: Checkpoint, features: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(checkpoint.build_model()(features), dim=1)


@pytest.mark.parametrize('changes', [
    {}, {'shared_blocks': 2}, {'variant': 'blstm_attention'}, {'variant': 'conv_blstm'},
], ids=['full', 'shared-blocks', 'blstm-attention', 'conv-blstm'])
def test_export_gives_the_pytorch_probabilities(changes: dict, features: torch.Tensor,
                                                tmp_path: Path) -> None:
    checkpoint = tiny_checkpoint(model=tiny_model(tiny_model_config(**changes), seed=3))
    path = export_torchscript(checkpoint, tmp_path / 'model.ts')
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ['model.ts']   # atomic
    exported = load_torchscript(path)
    assert exported.labels == LABELS
    expected = pytorch_probabilities(checkpoint, features)
    # Traced with batch 1; other batch sizes must work as well.
    for batch in (features[:1], features):
        got = exported.probabilities(batch)
        assert got.shape == (len(batch), len(LABELS))
        assert torch.allclose(got, expected[:len(batch)], atol=TOLERANCE)
    assert torch.allclose(got.sum(dim=1), torch.ones(len(features)))


@pytest.mark.parametrize('variant', ['full', 'blstm', 'conv_blstm'])
def test_an_export_traced_on_the_cpu_holds_no_cpu_constant(variant: str, tmp_path: Path
                                                           ) -> None:
    # A tensor made on the tracing device is a constant of the graph, and fails on a GPU.
    checkpoint = tiny_checkpoint(model=tiny_model(tiny_model_config(variant=variant)))
    exported = load_torchscript(export_torchscript(checkpoint, tmp_path / 'model.ts'))
    assert 'prim::Constant[value="cpu"]' not in str(exported.module.inlined_graph)
    if variant == 'blstm':
        # The meta device stands in for a GPU (the convolution windows need real values).
        meta = load_torchscript(tmp_path / 'model.ts', 'meta')
        config = checkpoint.model_config
        batch = torch.zeros(3, config.num_features, config.num_frames, device='meta')
        assert meta.probabilities(batch).shape == (3, len(LABELS))


def test_metadata_rebuilds_the_front_end(features: torch.Tensor, tmp_path: Path) -> None:
    checkpoint = tiny_checkpoint()
    metadata = load_torchscript(export_torchscript(checkpoint, tmp_path / 'model.ts')).metadata
    assert metadata['format'] == EXPORT_FORMAT
    payload = checkpoint.to_payload()
    for key in ('model_config', 'audio_config', 'feature_config', 'normalizer', 'labels',
                'provenance'):
        assert metadata[key] == payload[key], key
    checkpoint_part = {key: value for key, value in metadata.items()
                       if key != 'trailing_silence_s'}   # the host's, not the checkpoint's
    rebuilt = Checkpoint.from_payload({**payload, **checkpoint_part, 'format': payload['format'],
                                       'format_version': payload['format_version']})
    assert rebuilt.front_end() == checkpoint.front_end()
    assert metadata['trailing_silence_s'] == 0.0
    with pytest.raises(ValueError, match='trailing silence must be >= 0 s'):
        export_torchscript(checkpoint, tmp_path / 'other.ts', trailing_silence_s=-0.5)
    assert not (tmp_path / 'other.ts').exists()


def test_export_runs_without_ser_ros(features: torch.Tensor, tmp_path: Path) -> None:
    checkpoint = tiny_checkpoint()
    path = export_torchscript(checkpoint, tmp_path / 'model.ts')
    inputs = tmp_path / 'features.pt'
    torch.save(features, inputs)
    script = (
        'import json, sys, torch\n'
        f'extra = {{"ser_ros.json": ""}}\n'
        f'module = torch.jit.load({str(path)!r}, _extra_files=extra)\n'
        f'x = torch.load({str(inputs)!r}, weights_only=True)\n'
        'with torch.no_grad():\n'
        '    p = torch.softmax(module(x), dim=1)\n'
        'print(json.dumps({"labels": json.loads(extra["ser_ros.json"])["labels"],\n'
        '                  "p": p.tolist(),\n'
        '                  "ser_ros": any(m.startswith("ser_ros") for m in sys.modules)}))\n'
    )
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT_S, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output['labels'] == list(LABELS) and not output['ser_ros']
    assert np.allclose(output['p'], pytorch_probabilities(checkpoint, features).numpy(),
                       atol=TOLERANCE)


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    not_torchscript = tmp_path / 'model.pt'
    tiny_checkpoint().save(not_torchscript)
    with pytest.raises(ExportError, match='not a loadable TorchScript file'):
        load_torchscript(not_torchscript)
    text = tmp_path / 'notes.ts'
    text.write_text('hello')
    with pytest.raises(ExportError, match='not a loadable TorchScript file'):
        load_torchscript(text)
    plain, wrong = tmp_path / 'plain.ts', tmp_path / 'wrong.ts'
    with quiet_jit():
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(plain))
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(wrong),
                       _extra_files={'ser_ros.json': json.dumps({'format': 'other'})})
    with pytest.raises(ExportError, match='TorchScript file without ser_ros metadata'):
        load_torchscript(plain)
    with pytest.raises(ExportError, match='TorchScript file without ser_ros metadata'):
        load_torchscript(wrong)
    assert zipfile.is_zipfile(wrong)


def test_export_cli_writes_a_checked_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = tiny_checkpoint()
    model = checkpoint.save(tmp_path / 'model.pt')
    out = tmp_path / 'deploy' / 'model.ts'
    assert export_main(['--model', str(model), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert f'wrote {out} (torchscript, 3 labels: angry, happy, sad; input (batch, 128, 126)' \
        in printed
    assert 'max probability difference to PyTorch' in printed
    exported = load_torchscript(out)
    assert exported.labels == LABELS
    # What emotion_node appends to each VAD cut travels with the network, for a C++ host.
    node_silence = emotion_node_trailing_silence()
    assert node_silence > 0
    assert exported.metadata['trailing_silence_s'] == node_silence
    assert f'trailing silence {node_silence:g} s' in printed
    assert export_main(['--model', str(model), '--out', str(out), '--trailing-silence', '0']) == 0
    assert load_torchscript(out).metadata['trailing_silence_s'] == 0.0


def test_export_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    absent = tmp_path / 'absent.pt'
    assert export_main(['--model', str(absent), '--out', str(tmp_path / 'x.ts')]) == 2
    assert f'cannot load model {absent}' in capsys.readouterr().err
    model = tiny_checkpoint().save(tmp_path / 'model.pt')
    assert export_main(['--model', str(model), '--out', str(tmp_path)]) == 2
    assert f'cannot write {tmp_path}' in capsys.readouterr().err
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ['model.pt']
    with pytest.raises(SystemExit):
        export_main(['--model', str(model), '--out', 'x.onnx', '--format', 'onnx'])
    with pytest.raises(SystemExit):
        export_main(['--model', str(model), '--out', 'x.ts', '--trailing-silence', '-1'])
    assert 'must be a number of seconds >= 0' in capsys.readouterr().err
