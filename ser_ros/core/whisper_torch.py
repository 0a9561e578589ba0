"""Whisper's encoder in torch, from the weights of a CTranslate2 model file.

CTranslate2 returns the encoder's last layer only; emotion is carried best by the middle
blocks (docs/model_notes.md, "which layer of the encoder"). This module runs the same weights
in torch and returns the outputs of the blocks asked for, in float32 on any torch device.

The model file is CTranslate2's binary format, version 6 (the pinned weights'; other versions
are refused): a spec name and revision, then named arrays, each with its shape, type and bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812  (torch's own convention)

# CTranslate2's DataType enum, in its order.
CT2_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16)
CT2_FORMAT_VERSION = 6
ENCODER_PREFIX = 'encoder/'
LAYER_NORM_EPS = 1e-5
TIME_STRIDE = 2   # the second convolution halves the frame rate


def read_ct2_arrays(path: Path, prefix: str = '') -> dict[str, np.ndarray]:
    """Return the arrays of a CTranslate2 model file whose names start with ``prefix``."""
    data = Path(path).read_bytes()
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal offset
        size = take('<H')
        value = data[offset:offset + size - 1].decode()
        offset += size
        return value

    try:
        version = take('<I')
        if version != CT2_FORMAT_VERSION:
            raise ValueError(f'format version {version}; version {CT2_FORMAT_VERSION} is read')
        text()          # spec name
        take('<I')      # spec revision
        arrays = {}
        for _ in range(take('<I')):
            name = text()
            shape = [take('<I') for _ in range(take('<B'))]
            dtype_index = take('<B')
            if dtype_index >= len(CT2_DTYPES):
                raise ValueError(f'array {name!r} has an unknown data type {dtype_index}')
            size = take('<I')
            if name.startswith(prefix):
                arrays[name] = np.frombuffer(data, CT2_DTYPES[dtype_index],
                                             size // np.dtype(CT2_DTYPES[dtype_index]).itemsize,
                                             offset).reshape(shape)
            offset += size
    except (struct.error, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f'{path} is not a CTranslate2 model file this reader knows: '
                         f'{error}') from None
    return arrays


class WhisperEncoderTorch(torch.nn.Module):
    """Whisper's encoder (convolutions, pre-norm transformer blocks), cut after a block.

    ``forward`` takes log-mel batches ``(B, bands, T)`` and returns the outputs of ``blocks``
    (1-based, in the order given; 0 is the convolutions' output with the positional encoding),
    each ``(B, T / 2, width)``, as the blocks leave them (the final layer norm belongs to the
    last block's output only and is not applied).
    """

    def __init__(self, model_file: Path, blocks: Sequence[int], heads: int) -> None:
        super().__init__()
        arrays = read_ct2_arrays(model_file, ENCODER_PREFIX)
        available = sum(name.endswith('self_attention/linear_0/weight') for name in arrays)
        if not blocks or any(not 0 <= block <= available for block in blocks):
            raise ValueError(f'encoder blocks {list(blocks)} asked for; {model_file} has '
                             f'blocks 1-{available} (0: the input to block 1)')
        self.blocks = tuple(blocks)
        self.heads = heads
        kept = max(blocks)
        for name, array in arrays.items():
            local = name.removeprefix(ENCODER_PREFIX)
            index = local.split('/')[0].removeprefix('layer_')
            if index.isdigit() and int(index) >= kept:
                continue
            self.register_buffer(local.replace('/', '__'),
                                 torch.from_numpy(array.astype(np.float32)))

    def _weight(self, name: str) -> torch.Tensor:
        return getattr(self, name.replace('/', '__'))

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self._weight(name + '/gamma'),
                            self._weight(name + '/beta'), LAYER_NORM_EPS)

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self._weight(name + '/weight'), self._weight(name + '/bias'))

    @torch.inference_mode()
    def forward(self, log_mel: torch.Tensor) -> list[torch.Tensor]:
        """Return the asked blocks' outputs for a log-mel batch."""
        x = F.gelu(F.conv1d(log_mel, self._weight('conv1/weight'), self._weight('conv1/bias'),
                            padding=1))
        x = F.gelu(F.conv1d(x, self._weight('conv2/weight'), self._weight('conv2/bias'),
                            stride=TIME_STRIDE, padding=1))
        x = x.transpose(1, 2) + self._weight('position_encodings/encodings')[:x.shape[2]]
        batch, frames, width = x.shape
        outputs = {0: x}
        for block in range(1, max(self.blocks) + 1):
            scope = f'layer_{block - 1}'
            qkv = self._linear(self._norm(x, scope + '/self_attention/layer_norm'),
                               scope + '/self_attention/linear_0')
            # (B, T, 3, heads, width / heads) -> three (B, heads, T, width / heads)
            q, k, v = qkv.view(batch, frames, 3, self.heads, width // self.heads).permute(
                2, 0, 3, 1, 4)
            attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
            x = x + self._linear(attended.reshape(batch, frames, width),
                                 scope + '/self_attention/linear_1')
            hidden = F.gelu(self._linear(self._norm(x, scope + '/ffn/layer_norm'),
                                         scope + '/ffn/linear_0'))
            x = x + self._linear(hidden, scope + '/ffn/linear_1')
            outputs[block] = x
        return [outputs[block] for block in self.blocks]

    def final_norm(self, block_output: torch.Tensor) -> torch.Tensor:
        """Apply the encoder's final layer norm.

        On the last block's output this gives what CTranslate2's ``encode`` returns.
        """
        return self._norm(block_output, 'layer_norm')
