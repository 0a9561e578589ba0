"""The SER network of the paper (section II-B, Fig. 1): Conv2D blocks, BLSTM, Bahdanau attention.

Input is a batch of normalised feature matrices ``(batch, F, T)``. The four ablation variants of
the paper's Table IV share one class:

- ``blstm``: BLSTM over the frames, last state -> FC.
- ``blstm_attention``: BLSTM over the frames, [attention context, last state] -> FC.
- ``conv_blstm``: the time axis is cut into overlapping windows (patches); each window goes
  through the Conv2D blocks (folded into the batch, i.e. time-distributed); the BLSTM runs over
  the sequence of window embeddings; last state -> FC.
- ``full``: as ``conv_blstm`` plus attention (the proposed model).

Beyond the paper, ``pooled`` is the head for a pretrained encoder's frames
(:mod:`ser_ros.core.speech_encoder`): the mean and standard deviation of each feature row over
the frames -> dropout -> FC, a linear classifier on what the encoder already learnt.

Where the paper's text and its reference code disagree we follow the code, whose numbers the
paper reports (see docs and /work/shared/docs/paper-reference-notes.md): ELU activation, pools
2x2, 4x4, 4x4, 4x4, attention scores without biases scaled by 1/sqrt(attention_units).
"""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# The paper's four (Table IV), then the head for a pretrained encoder's frames.
VARIANTS = ('blstm', 'blstm_attention', 'conv_blstm', 'full', 'pooled')
CONV_VARIANTS = frozenset({'conv_blstm', 'full'})
ATTENTION_VARIANTS = frozenset({'blstm_attention', 'full'})
ACTIVATIONS = {'elu': nn.ELU, 'relu': nn.ReLU}
MIN_CONV_BLOCKS = 1
MAX_CONV_BLOCKS = 5
# Filters of blocks 1-4 are the paper's (64, 64, 128, 128); a 5th block keeps the last width.
DEFAULT_FILTERS = (64, 64, 128, 128, 128)
# Max-pool size per block, by conv depth. The paper's text says 4x4 after every block, which
# cannot take 128 mel bands through 4 blocks (128 / 4**4 < 1); the reference code uses
# 2, 4, 4, 4, which takes a 128 x 128 window to 1 x 1. Depths 1-3 keep the first blocks of that
# network unchanged (so the depth ablation only removes blocks) and leave the remaining extent
# to the global average pool; depth 5 spreads the same total reduction (128 = 2*2*4*4*2) so the
# 5th block still sees a 2 x 2 map instead of a single pixel.
DEFAULT_POOLS: dict[int, tuple[int, ...]] = {
    1: (2,),
    2: (2, 4),
    3: (2, 4, 4),
    4: (2, 4, 4, 4),
    5: (2, 2, 4, 4, 2),
}
CONV_KERNEL = 3
BIDIRECTIONAL = 2


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of :class:`SerNet`; stored in checkpoints.

    ``filters`` and ``pool_sizes`` left empty take the per-depth defaults above; the resolved
    values are what ``to_dict()`` records. ``window_frames`` / ``window_hop`` cut the time axis
    into patches for the conv variants (626 frames -> 8 windows of 128 with hop 64; trailing
    frames that do not fill a window are dropped, as in the reference). ``activation`` is
    ``'elu'`` as in the reference code (the paper's text says ``'relu'``).

    ``shared_blocks`` > 0 runs the first conv blocks once over the whole spectrogram and cuts the
    windows from their output instead of from the input. With the paper's hop of half a window,
    per-window convolution computes every frame twice; sharing the first two blocks (where
    ~95% of the arithmetic is) saves ~40% of training time. The only difference from the
    per-window network is at window edges, where a shared block sees the neighbouring frames
    instead of zero padding. 0 is the reference network exactly.
    """

    num_classes: int
    num_features: int
    num_frames: int
    variant: str = 'full'
    conv_blocks: int = 4
    filters: tuple[int, ...] = ()
    pool_sizes: tuple[int, ...] = ()
    window_frames: int = 128
    window_hop: int = 64
    lstm_units: int = 256
    attention_units: int = 256
    dropout: float = 0.2
    activation: str = 'elu'
    shared_blocks: int = 0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f'ModelConfig.variant must be one of {VARIANTS}, got {self.variant!r}')
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f'ModelConfig.activation must be one of {tuple(ACTIVATIONS)}, '
                f'got {self.activation!r}'
            )
        for name in ('num_classes', 'num_features', 'num_frames', 'window_frames', 'window_hop',
                     'lstm_units', 'attention_units'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'ModelConfig.{name} must be a positive integer, got {value!r}')
        if self.num_classes < 2:
            raise ValueError(f'ModelConfig.num_classes must be >= 2, got {self.num_classes}')
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f'ModelConfig.dropout must be in [0, 1), got {self.dropout}')
        if not MIN_CONV_BLOCKS <= self.conv_blocks <= MAX_CONV_BLOCKS:
            raise ValueError(
                f'ModelConfig.conv_blocks must be in {MIN_CONV_BLOCKS}..{MAX_CONV_BLOCKS}, '
                f'got {self.conv_blocks}'
            )
        filters = tuple(self.filters) or DEFAULT_FILTERS[:self.conv_blocks]
        pools = tuple(self.pool_sizes) or DEFAULT_POOLS[self.conv_blocks]
        for name, values in (('filters', filters), ('pool_sizes', pools)):
            if len(values) != self.conv_blocks:
                raise ValueError(
                    f'ModelConfig.{name} needs one value per conv block ({self.conv_blocks}), '
                    f'got {values}'
                )
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise ValueError(f'ModelConfig.{name} must be positive integers, got {values}')
        object.__setattr__(self, 'filters', filters)
        object.__setattr__(self, 'pool_sizes', pools)
        if not 0 <= self.shared_blocks <= self.conv_blocks:
            raise ValueError(f'ModelConfig.shared_blocks must be in 0..{self.conv_blocks}, '
                             f'got {self.shared_blocks}')
        shared_stride = math.prod(pools[:self.shared_blocks])
        if self.window_frames % shared_stride or self.window_hop % shared_stride:
            raise ValueError(
                f'ModelConfig: window_frames ({self.window_frames}) and window_hop '
                f'({self.window_hop}) must be multiples of the time pooling of the '
                f'{self.shared_blocks} shared blocks ({shared_stride})'
            )
        if self.uses_conv and self.window_frames > self.num_frames:
            raise ValueError(
                f'ModelConfig.window_frames ({self.window_frames}) exceeds num_frames '
                f'({self.num_frames}); use window_frames=num_frames for a single window'
            )

    @property
    def uses_conv(self) -> bool:
        """Whether the variant has the Conv2D front (windows of frames)."""
        return self.variant in CONV_VARIANTS

    @property
    def uses_attention(self) -> bool:
        """Whether the variant has the Bahdanau attention block."""
        return self.variant in ATTENTION_VARIANTS

    @property
    def uses_blstm(self) -> bool:
        """Whether the variant has the BLSTM (all but ``pooled``)."""
        return self.variant != 'pooled'

    @property
    def num_windows(self) -> int:
        """Length of the sequence the BLSTM sees: windows (conv variants) or frames."""
        if not self.uses_conv:
            return self.num_frames
        return 1 + (self.num_frames - self.window_frames) // self.window_hop

    @property
    def embedding_size(self) -> int:
        """Size of the vector fed to the final FC layer (see :meth:`SerNet.embed`)."""
        if not self.uses_blstm:
            return 2 * self.num_features
        last_state = BIDIRECTIONAL * self.lstm_units
        return 2 * last_state if self.uses_attention else last_state

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dictionary (tuples as lists) for checkpoints and JSON."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are refused."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f'ModelConfig: unknown keys {unknown}')
        values = {key: tuple(value) if isinstance(value, list) else value
                  for key, value in data.items()}
        return cls(**values)


def pool_plan(size: int, pools: Sequence[int]) -> tuple[list[int], int]:
    """Clamp each pool to the extent left along one axis; return the kernels and final extent.

    Pooling uses ``ceil_mode`` so a remainder is kept rather than dropped (46 features / 4 -> 12),
    and a pool larger than what is left shrinks to it, so non-square inputs never collapse to 0.
    """
    kernels = []
    for pool in pools:
        kernel = min(pool, size)
        kernels.append(kernel)
        size = math.ceil(size / kernel)
    return kernels, size


def frames_used(config: ModelConfig, time_kernels: Sequence[int]) -> int:
    """Input frames the windows depend on; the shared blocks skip the trailing ones.

    Windows that do not fill a whole hop leave the last frames unused (626 frames: 8 windows
    end at 576). Walking back through the shared blocks, each pooled frame needs its pool's
    frames and a 3x3 'same' convolution one more on the right, so 579 input frames give the
    windows exactly what all 626 give, at 7.5% less convolution work. Without shared blocks the
    windows are cut from the input itself and nothing is computed for unused frames anyway.
    """
    if not config.uses_conv or not config.shared_blocks:
        return config.num_frames
    stride = math.prod(time_kernels[:config.shared_blocks])
    last_window_end = (config.num_windows - 1) * config.window_hop + config.window_frames
    needed = last_window_end // stride
    for kernel in reversed(time_kernels[:config.shared_blocks]):
        needed = needed * kernel + CONV_KERNEL // 2
    return min(needed, config.num_frames)


@dataclass(frozen=True)
class PaddingResponse:
    """Window embeddings of an input made only of padding columns (inference only).

    With 'pre' padding every utterance shorter than the analysis window starts with identical
    padding columns, and windows that see nothing else always encode to the same vectors. Given
    these, :class:`WindowEncoder` skips the convolutions of those windows: on the VAD-cut
    speech of the latency benchmark, 8.7 -> 6.2 ms of network time at the median
    (docs/benchmarks.md). Build with :meth:`WindowEncoder.padding_response`
    under the precision (autocast) and device it will be used with.
    """

    column: torch.Tensor        # (F,) normalised features of one padding frame
    embeddings: torch.Tensor    # (num_windows, E) encoder output for all-padding input


def leading_padding_frames(x: torch.Tensor, column: torch.Tensor) -> int:
    """Frames at the start of every item of ``x`` (B, F, T) that equal ``column`` exactly."""
    matches = (x == column.view(1, -1, 1)).all(dim=1)              # (B, T)
    return int(matches.int().cumprod(dim=1).sum(dim=1).min())


MASK_BITS = 16


class MaskBitsDropout(nn.Module):
    """Element dropout as ``nn.Dropout``, its keep mask drawn from 16 random bits per value.

    ``nn.Dropout`` on CPU draws one Bernoulli sample per value: 29% of a bf16 training step of
    the paper's network on the 2-core CPU. One 64-bit draw for four values costs a fraction of
    that (bench/train_epoch.py). The drop probability is rounded to a multiple of 1/65536.
    Identity in eval mode, like ``nn.Dropout``, so exports and checkpoints do not change.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0 or round(p * 2 ** MASK_BITS) == 2 ** MASK_BITS:
            raise ValueError(f'dropout probability must be in [0, 1) and round below 1 at '
                             f'{MASK_BITS} bits, got {p}')
        self.p = p

    def extra_repr(self) -> str:
        """Show p in the module's repr, as nn.Dropout does."""
        return f'p={self.p}'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zero each value with probability p and scale the rest by 1 / (1 - p) in training."""
        if not self.training or self.p == 0.0:
            return x
        return x * scaled_keep_mask(x, self.p)


def scaled_keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """Return a mask shaped and laid out like ``x``: 0 with probability p, else 1 / (1 - p)."""
    levels = 2 ** MASK_BITS
    dropped_levels = round(p * levels)
    # int16 values are uniform on [-2**15, 2**15): the lowest dropped_levels of them drop.
    threshold = dropped_levels - levels // 2
    values_per_word = 64 // MASK_BITS
    words = -(-x.numel() // values_per_word)
    bits = torch.empty(words, dtype=torch.int64, device=x.device).random_(-2 ** 63, None)
    keep = bits.view(torch.int16)[:x.numel()] >= threshold
    mask = keep.to(x.dtype).mul_(levels / (levels - dropped_levels))
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last):
        batch, channels, height, width = x.shape
        return mask.view(batch, height, width, channels).permute(0, 3, 1, 2)
    return mask.view(x.shape)


class ConvBlock(nn.Sequential):
    """Conv2D 3x3 'same' stride 1 -> BatchNorm -> activation -> MaxPool -> Dropout.

    The max-pool runs before the activation: ELU and ReLU are non-decreasing, so
    pool(act(x)) == act(pool(x)) exactly, and the activation then touches 4-16x fewer values.
    """

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int],
                 activation: str, dropout: float) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, CONV_KERNEL, stride=1, padding='same'),
            nn.BatchNorm2d(out_channels),
            nn.MaxPool2d(pool, stride=pool, ceil_mode=True),
            ACTIVATIONS[activation](),
            MaskBitsDropout(dropout),
        )


class WindowEncoder(nn.Module):
    """Time-distributed Conv2D blocks: (B, F, T) -> (B, windows, last filter count)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.window_frames = config.window_frames
        self.window_hop = config.window_hop
        self.num_windows = config.num_windows
        self.shared_blocks = config.shared_blocks
        freq_kernels, _ = pool_plan(config.num_features, config.pool_sizes)
        time_kernels, _ = pool_plan(config.window_frames, config.pool_sizes)
        self.shared_stride = math.prod(time_kernels[:config.shared_blocks])
        self.frames_used = frames_used(config, time_kernels)
        # Input frames each side that a shared-block output column depends on beyond its own
        # stride: one per 'same' 3x3 convolution, at that block's input resolution.
        self.shared_reach = sum(CONV_KERNEL // 2 * math.prod(time_kernels[:block])
                                for block in range(config.shared_blocks))
        # Window width and hop in columns of the shared blocks' output.
        self.window_columns = config.window_frames // self.shared_stride
        self.hop_columns = config.window_hop // self.shared_stride
        channels = (1, *config.filters)
        self.blocks = nn.Sequential(*(
            ConvBlock(channels[i], channels[i + 1], (freq_kernels[i], time_kernels[i]),
                      config.activation, config.dropout)
            for i in range(config.conv_blocks)
        ))
        # Channels-last weights: with a one-channel input only the weights' layout tells the
        # first convolution to write channels-last maps, which every later layer then keeps
        # (a bf16 training step 1.13 -> 0.84 s on the 2-core CPU, mostly the first max-pool).
        self.blocks.to(memory_format=torch.channels_last)
        # Global average over whatever spatial extent the pools leave (1 x 1 for the paper's
        # 4 blocks on 128 x 128, an identity there), so the BLSTM input is always the last
        # filter count whatever the depth or input shape.
        self.global_pool = nn.AdaptiveAvgPool2d(1)

    def padding_windows(self, leading_frames: int) -> int:
        """Leading windows whose every input (receptive field included) is padding."""
        clean_columns = max(0, leading_frames - self.shared_reach) // self.shared_stride
        if clean_columns < self.window_columns:
            return 0
        return min(self.num_windows,
                   1 + (clean_columns - self.window_columns) // self.hop_columns)

    def padding_lengths(self) -> list[int]:
        """Return the shortest leading padding (frames) for each count of skipped windows.

        The first is 0 (nothing skipped). Each count gives the convolutions another input
        width; warming each up once keeps the first utterance of every length from paying for
        the kernels' set-up.
        """
        return [0] + [((skipped - 1) * self.hop_columns + self.window_columns)
                      * self.shared_stride + self.shared_reach
                      for skipped in range(1, self.num_windows + 1)]

    def padding_response(self, column: torch.Tensor) -> PaddingResponse:
        """Encode an input that is ``column`` in every frame (eval mode; see PaddingResponse)."""
        if self.training:
            raise RuntimeError('padding_response is for inference: call eval() first')
        padding = column.reshape(1, -1, 1).expand(1, -1, self.frames_used)
        return PaddingResponse(column.flatten(), self(padding)[0])

    def forward(self, x: torch.Tensor, padding: PaddingResponse | None = None) -> torch.Tensor:
        """Encode every window of the time axis; with ``padding``, reuse all-padding windows."""
        batch = x.shape[0]
        skipped = 0
        if padding is not None and not self.training:
            skipped = self.padding_windows(leading_padding_frames(x, padding.column))
        if skipped == self.num_windows:
            return padding.embeddings.unsqueeze(0).expand(batch, -1, -1)
        stride = self.shared_stride
        width, hop = self.window_columns, self.hop_columns
        # Start far enough before the first computed window that the crop's own border (zero
        # 'same' padding) does not reach it; whole strides keep every pool aligned.
        first_column = skipped * hop
        start_column = max(0, first_column - math.ceil(self.shared_reach / stride))
        # Channels-last makes the CPU max-pool ~15x faster than on NCHW tensors (measured).
        maps = x[:, :, start_column * stride:self.frames_used].unsqueeze(1).contiguous(
            memory_format=torch.channels_last)
        maps = self.blocks[:self.shared_blocks](maps)                   # (B, C, F', T')
        maps = maps[:, :, :, first_column - start_column:]
        channels, height = maps.shape[1], maps.shape[2]
        computed = self.num_windows - skipped
        windows = maps.unfold(3, width, hop)[:, :, :, :computed]      # (B, C, F', N, W')
        windows = windows.permute(0, 3, 1, 2, 4).reshape(-1, channels, height, width)
        windows = windows.contiguous(memory_format=torch.channels_last)
        encoded = self.global_pool(self.blocks[self.shared_blocks:](windows)).flatten(1)
        encoded = encoded.reshape(batch, computed, -1)
        if not skipped:
            return encoded
        reused = padding.embeddings[:skipped].to(encoded.dtype).unsqueeze(0)
        return torch.cat((reused.expand(batch, -1, -1), encoded), dim=1)


class BahdanauAttention(nn.Module):
    """Additive attention over BLSTM states: softmax_t(w2 . tanh(W1 h_t) / sqrt(units)).

    Like the reference code, both projections have no bias and scores are scaled by
    1/sqrt(attention units); the paper's text (FC 256 tanh, FC 1 linear) leaves both open.
    """

    def __init__(self, state_size: int, units: int) -> None:
        super().__init__()
        self.project = nn.Linear(state_size, units, bias=False)
        self.score = nn.Linear(units, 1, bias=False)
        self.scale = 1.0 / math.sqrt(units)

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the context vector (B, H) and the attention weights (B, T)."""
        scores = self.score(torch.tanh(self.project(states))).squeeze(-1) * self.scale
        weights = torch.softmax(scores, dim=1)
        context = torch.bmm(weights.unsqueeze(1), states).squeeze(1)
        return context, weights


class StatisticsPooling(nn.Module):
    """(B, F, T) -> (B, 2F): each row's mean and standard deviation over the frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean and (population) standard deviation, concatenated."""
        std, mean = torch.std_mean(x, dim=2, correction=0)
        return torch.cat((mean, std), dim=1)


class SerNet(nn.Module):
    """CNN + BLSTM + attention speech-emotion classifier; ``forward`` returns logits."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.num_features = config.num_features
        self.num_frames = config.num_frames
        self.encoder = WindowEncoder(config) if config.uses_conv else None
        lstm_input = config.filters[-1] if config.uses_conv else config.num_features
        self.blstm = (nn.LSTM(lstm_input, config.lstm_units, batch_first=True,
                              bidirectional=True) if config.uses_blstm else None)
        self.pooling = None if config.uses_blstm else nn.Sequential(
            StatisticsPooling(), MaskBitsDropout(config.dropout))
        state_size = BIDIRECTIONAL * config.lstm_units
        self.attention = (BahdanauAttention(state_size, config.attention_units)
                          if config.uses_attention else None)
        self.classifier = nn.Linear(config.embedding_size, config.num_classes)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != self.num_features or x.shape[2] != self.num_frames:
            raise ValueError(
                f'SerNet expects input (batch, {self.num_features}, {self.num_frames}), '
                f'got {tuple(x.shape)}'
            )

    def encode(self, x: torch.Tensor, padding: PaddingResponse | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the classifier input (B, embedding_size) and attention weights (or None)."""
        if not torch.jit.is_tracing():   # a traced graph keeps no Python checks anyway
            self._check_input(x)
        if self.pooling is not None:
            return self.pooling(x), None
        sequence = self.encoder(x, padding) if self.encoder is not None else x.transpose(1, 2)
        # Zero initial states made from the input: nn.LSTM's own are traced as constants on
        # the tracing device, and a TorchScript export traced on the CPU failed on a GPU.
        initial = sequence.new_zeros(2, sequence.shape[0], self.blstm.hidden_size)
        states, (final, _) = self.blstm(sequence, (initial, initial))
        # final: (2, B, H): forward state after the last step, backward after the first.
        last_state = torch.cat((final[0], final[1]), dim=1)
        if self.attention is None:
            return last_state, None
        context, weights = self.attention(states)
        return torch.cat((context, last_state), dim=1), weights

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Vector fed to the final FC layer (attention block output), e.g. for t-SNE."""
        return self.encode(x)[0]

    def forward(self, x: torch.Tensor, padding: PaddingResponse | None = None) -> torch.Tensor:
        """Class logits (B, num_classes); apply softmax for probabilities.

        ``padding`` (inference only, see :class:`PaddingResponse`) skips the convolutions of
        windows that see only leading padding; the logits are the same up to float rounding.
        """
        return self.classifier(self.encode(x, padding)[0])

    def padding_response(self, column: torch.Tensor) -> PaddingResponse | None:
        """Build what :meth:`forward` needs to skip leading padding ``column``s (None: no conv)."""
        return None if self.encoder is None else self.encoder.padding_response(column)

    def padding_lengths(self) -> list[int]:
        """Leading padding lengths that exercise every skip count (empty: no conv)."""
        return [] if self.encoder is None else self.encoder.padding_lengths()

    def describe(self) -> str:
        """One-line summary: variant, input shape and trainable parameter count."""
        c = self.config
        return (f'SerNet({c.variant}, input {c.num_features}x{c.num_frames}, '
                f'{c.num_classes} classes, conv {c.conv_blocks if c.uses_conv else 0} blocks '
                f'{list(c.filters) if c.uses_conv else []}): '
                f'{count_parameters(self):,} trainable parameters')


def fuse_for_inference(model: SerNet) -> SerNet:
    """Return an eval-mode copy with BatchNorm folded into the convolutions, channels-last.

    Same outputs (up to float rounding) with one pass fewer over the largest tensors; the copy
    is for inference only (its state_dict has no BatchNorm entries).
    """
    fused = copy.deepcopy(model).eval()
    if fused.encoder is not None:
        for block in fused.encoder.blocks:
            conv, norm = block[0], block[1]
            block[0] = fuse_conv_bn_eval(conv, norm)
            block[1] = nn.Identity()
    for parameter in fused.parameters():
        parameter.requires_grad_(False)
    return fused.to(memory_format=torch.channels_last)


def count_parameters(model: nn.Module) -> int:
    """Count trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the description of a network built from command-line hyper-parameters."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument('--variant', choices=VARIANTS, default='full', help='ablation variant')
    parser.add_argument('--conv-blocks', type=int, default=4, help='number of Conv2D blocks')
    parser.add_argument('--features', type=int, default=128, help='feature rows F')
    parser.add_argument('--frames', type=int, default=626, help='frames T')
    parser.add_argument('--classes', type=int, default=7, help='number of classes')
    args = parser.parse_args(argv)
    config = ModelConfig(num_classes=args.classes, num_features=args.features,
                         num_frames=args.frames, variant=args.variant,
                         conv_blocks=args.conv_blocks)
    print(SerNet(config).describe())
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
