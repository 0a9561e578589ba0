"""SerNet: shapes, parameter counts, configuration checks and exactness of the fast paths."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ser_ros.core.model import (
    DEFAULT_POOLS,
    VARIANTS,
    ConvBlock,
    MaskBitsDropout,
    ModelConfig,
    SerNet,
    count_parameters,
    fuse_for_inference,
    main,
    pool_plan,
)

MEL128 = {'num_features': 128, 'num_frames': 626}   # RAVDESS: 5 s, hop 128
IEMOCAP = {'num_features': 46, 'num_frames': 157}   # 46 spectral values, hop 512
PAPER_PARAMETERS = 1_180_000                         # section II-B: 'about 1.180M'
PAPER_TOLERANCE = 0.02
BATCH = 2


def expected_parameters(config: ModelConfig) -> int:
    """Trainable parameters computed from the architecture description, layer by layer."""
    if not config.uses_blstm:   # pooled: the FC on each row's mean and std only
        return 2 * config.num_features * config.num_classes + config.num_classes
    total = 0
    lstm_input = config.num_features
    if config.uses_conv:
        channels = (1, *config.filters)
        for c_in, c_out in zip(channels, channels[1:], strict=False):
            total += 3 * 3 * c_in * c_out + c_out   # conv weights + bias
            total += 2 * c_out                       # BatchNorm scale + shift
        lstm_input = config.filters[-1]
    units = config.lstm_units
    # Per direction 4 gates, each with input and recurrent weights and PyTorch's two biases.
    total += 2 * 4 * (units * lstm_input + units * units + 2 * units)
    if config.uses_attention:
        total += 2 * units * config.attention_units + config.attention_units  # no biases
    total += config.embedding_size * config.num_classes + config.num_classes
    return total


@pytest.mark.parametrize('shape', [MEL128, IEMOCAP], ids=['mel128', 'iemocap'])
@pytest.mark.parametrize('variant', VARIANTS)
def test_every_variant_gives_logits_and_embedding(variant: str, shape: dict[str, int]) -> None:
    config = ModelConfig(num_classes=5, variant=variant, **shape)
    model = SerNet(config).eval()
    x = torch.randn(BATCH, shape['num_features'], shape['num_frames'])
    with torch.no_grad():
        logits = model(x)
        embedding = model.embed(x)
    assert logits.shape == (BATCH, 5)
    assert embedding.shape == (BATCH, config.embedding_size)
    assert torch.isfinite(logits).all()
    assert count_parameters(model) == expected_parameters(config)


@pytest.mark.parametrize('shape', [MEL128, IEMOCAP], ids=['mel128', 'iemocap'])
@pytest.mark.parametrize('depth', [1, 2, 3, 4, 5])
def test_every_conv_depth_runs(depth: int, shape: dict[str, int]) -> None:
    config = ModelConfig(num_classes=4, conv_blocks=depth, **shape)
    assert config.pool_sizes == DEFAULT_POOLS[depth]
    assert len(config.filters) == depth
    model = SerNet(config).eval()
    with torch.no_grad():
        sequence = model.encoder(torch.randn(BATCH, shape['num_features'], shape['num_frames']))
        logits = model(torch.randn(BATCH, shape['num_features'], shape['num_frames']))
    assert sequence.shape == (BATCH, config.num_windows, config.filters[-1])
    assert logits.shape == (BATCH, 4)
    assert count_parameters(model) == expected_parameters(config)


def test_full_ravdess_model_matches_the_paper_size() -> None:
    config = ModelConfig(num_classes=7, **MEL128)
    model = SerNet(config)
    count = count_parameters(model)
    assert count == expected_parameters(config)
    assert abs(count - PAPER_PARAMETERS) <= PAPER_TOLERANCE * PAPER_PARAMETERS
    by_part = sum(count_parameters(part) for part in
                  (model.encoder, model.blstm, model.attention, model.classifier))
    assert by_part == count
    assert f'{count:,}' in model.describe()


def test_paper_windows_and_pools_reduce_each_window_to_one_pixel() -> None:
    config = ModelConfig(num_classes=7, **MEL128)
    assert config.num_windows == 8   # 626 frames, windows of 128 with hop 64
    model = SerNet(config).eval()
    windows = torch.randn(3, 1, 128, 128)
    with torch.no_grad():
        before_global_pool = model.encoder.blocks(windows)
    assert before_global_pool.shape == (3, 128, 1, 1)


def test_pool_plan_clamps_and_keeps_remainders() -> None:
    assert pool_plan(128, (2, 4, 4, 4)) == ([2, 4, 4, 4], 1)
    # 46 -> 23 -> 6 (ceil) -> 2 (ceil) -> pool clamped to 2 -> 1
    assert pool_plan(46, (2, 4, 4, 4)) == ([2, 4, 4, 2], 1)
    assert pool_plan(3, (4,)) == ([3], 1)
    kernels, left = pool_plan(128, DEFAULT_POOLS[5])
    assert left == 1 and math.prod(kernels) == 128


def test_non_square_windows_reach_the_blstm() -> None:
    config = ModelConfig(num_classes=4, window_frames=157, **IEMOCAP)   # one window: reference
    model = SerNet(config).eval()
    windows = torch.randn(2, 1, 46, 157)
    with torch.no_grad():
        out = model.encoder.blocks(windows)
    assert out.shape[:2] == (2, 128) and min(out.shape[2:]) >= 1
    assert config.num_windows == 1


def test_attention_weights_are_a_distribution_over_windows() -> None:
    model = SerNet(ModelConfig(num_classes=3, **MEL128)).eval()
    with torch.no_grad():
        _, weights = model.encode(torch.randn(BATCH, 128, 626))
    assert weights.shape == (BATCH, 8)
    assert torch.allclose(weights.sum(dim=1), torch.ones(BATCH))
    assert (weights >= 0).all()


@pytest.mark.parametrize('activation', ['elu', 'relu'])
def test_pooling_before_activation_is_exact(activation: str) -> None:
    torch.manual_seed(0)
    block = ConvBlock(3, 6, (2, 4), activation, dropout=0.2).eval()
    conv, norm, pool, act, _ = block
    x = torch.randn(2, 3, 10, 17)
    reference_order = pool(act(norm(conv(x))))
    assert torch.equal(block(x), reference_order)


@pytest.mark.parametrize('layout', [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_dropout_drops_the_asked_share_and_rescales_the_rest(layout: torch.memory_format,
                                                             dtype: torch.dtype) -> None:
    torch.manual_seed(2)
    dropout = MaskBitsDropout(0.2).train()
    x = torch.rand(8, 16, 64, 99).add_(0.5).to(dtype).contiguous(memory_format=layout)
    y = dropout(x)
    assert y.dtype == dtype and y.is_contiguous(memory_format=layout)
    dropped = y == 0
    assert abs(dropped.float().mean().item() - 0.2) < 0.003       # 811,008 values: sd 0.0004
    assert torch.allclose(y[~dropped].float(), x[~dropped].float() * 1.25, rtol=1e-2)


def test_dropout_is_seeded_masks_the_gradient_and_is_identity_in_eval() -> None:
    dropout = MaskBitsDropout(0.5).train()
    x = torch.randn(3, 5, 7, requires_grad=True)     # 105 values: not whole int64 words
    torch.manual_seed(3)
    first = dropout(x)
    first.sum().backward()
    torch.manual_seed(3)
    assert torch.equal(dropout(x), first)
    assert torch.equal(x.grad, (first != 0).float() * 2.0)
    dropout.eval()
    assert dropout(x) is x
    assert MaskBitsDropout(0.0).train()(x) is x
    for bad in (1.0, 1.0 - 2 ** -18, -0.1):
        with pytest.raises(ValueError, match='dropout probability'):
            MaskBitsDropout(bad)


def test_fused_copy_gives_the_same_probabilities() -> None:
    torch.manual_seed(1)
    model = SerNet(ModelConfig(num_classes=7, **MEL128))
    model.train()
    with torch.no_grad():   # move the BatchNorm statistics away from identity first
        model(torch.randn(4, 128, 626) * 3 + 1)
    model.eval()
    fused = fuse_for_inference(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(BATCH, 128, 626)
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=1)
        got = torch.softmax(fused(x), dim=1)
    assert torch.allclose(got, expected, atol=1e-5)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())   # original untouched


def test_wrong_input_shape_is_refused() -> None:
    model = SerNet(ModelConfig(num_classes=3, **IEMOCAP))
    with pytest.raises(ValueError, match=r'expects input \(batch, 46, 157\)'):
        model(torch.randn(1, 128, 157))
    with pytest.raises(ValueError, match='expects input'):
        model(torch.randn(46, 157))


def test_config_round_trip_and_defaults() -> None:
    config = ModelConfig(num_classes=7, conv_blocks=5, activation='relu', **MEL128)
    data = config.to_dict()
    assert data['filters'] == [64, 64, 128, 128, 128]
    assert data['pool_sizes'] == list(DEFAULT_POOLS[5])
    assert ModelConfig.from_dict(data) == config
    explicit = ModelConfig(num_classes=2, filters=(8, 16), pool_sizes=(4, 4), conv_blocks=2,
                           **MEL128)
    assert ModelConfig.from_dict(explicit.to_dict()) == explicit


@pytest.mark.parametrize(('changes', 'message'), [
    ({'variant': 'transformer'}, 'variant must be one of'),
    ({'conv_blocks': 0}, r'conv_blocks must be in 1\.\.5'),
    ({'conv_blocks': 6}, r'conv_blocks must be in 1\.\.5'),
    ({'filters': (8, 8)}, 'filters needs one value per conv block'),
    ({'pool_sizes': (2, 0, 4, 4)}, 'pool_sizes must be positive'),
    ({'window_frames': 700}, 'window_frames .700. exceeds num_frames'),
    ({'num_classes': 1}, 'num_classes must be >= 2'),
    ({'dropout': 1.0}, 'dropout must be in'),
    ({'activation': 'gelu'}, 'activation must be one of'),
    ({'lstm_units': 0}, 'lstm_units must be a positive integer'),
])
def test_bad_config_is_refused(changes: dict[str, object], message: str) -> None:
    values = {'num_classes': 7, **MEL128, **changes}
    with pytest.raises(ValueError, match=message):
        ModelConfig(**values)


def test_unknown_config_key_is_refused() -> None:
    data = ModelConfig(num_classes=7, **MEL128).to_dict()
    data['heads'] = 4
    with pytest.raises(ValueError, match=r"unknown keys \['heads'\]"):
        ModelConfig.from_dict(data)


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(2)
    config = ModelConfig(num_classes=3, num_features=32, num_frames=48, window_frames=16,
                         window_hop=8, filters=(4, 4, 8, 8), pool_sizes=(2, 2, 2, 2),
                         lstm_units=8, attention_units=8)
    model = SerNet(config).train()
    loss = nn.functional.cross_entropy(model(torch.randn(4, 32, 48)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_main_prints_the_parameter_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['--variant', 'blstm', '--classes', '4']) == 0
    config = ModelConfig(num_classes=4, variant='blstm', **MEL128)
    assert f'{expected_parameters(config):,} trainable parameters' in capsys.readouterr().out


@pytest.mark.parametrize(('depth', 'shared'), [(4, 1), (4, 2), (2, 2), (1, 1)])
def test_shared_blocks_keep_shapes_and_parameters(depth: int, shared: int) -> None:
    base = ModelConfig(num_classes=7, conv_blocks=depth, **MEL128)
    config = ModelConfig(num_classes=7, conv_blocks=depth, shared_blocks=shared, **MEL128)
    assert config.to_dict()['shared_blocks'] == shared
    assert ModelConfig.from_dict(config.to_dict()) == config
    model, reference = SerNet(config).eval(), SerNet(base).eval()
    assert count_parameters(model) == count_parameters(reference) == expected_parameters(config)
    # Same weights fit both: a checkpoint of one loads into the other.
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(BATCH, 128, 626)
    with torch.no_grad():
        expected = (BATCH, 8, config.filters[-1])
        assert model.encoder(x).shape == reference.encoder(x).shape == expected
        logits = model(x)
        assert model.embed(x).shape == (BATCH, config.embedding_size)
    assert logits.shape == (BATCH, 7) and torch.isfinite(logits).all()


@pytest.mark.parametrize('shared', [1, 2, 3])
def test_shared_blocks_are_exact_for_a_single_window(shared: int) -> None:
    """With one window spanning all frames, sharing changes nothing but where work happens."""
    torch.manual_seed(3)
    single = {'num_features': 128, 'num_frames': 128, 'window_frames': 128, 'window_hop': 128}
    reference = SerNet(ModelConfig(num_classes=4, **single))
    reference.train()
    with torch.no_grad():
        reference(torch.randn(4, 128, 128) * 2 + 1)   # BatchNorm statistics off identity
    reference.eval()
    model = SerNet(ModelConfig(num_classes=4, shared_blocks=shared, **single)).eval()
    model.load_state_dict(reference.state_dict())
    x = torch.randn(BATCH, 128, 128)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)


def test_shared_blocks_differ_only_at_window_edges() -> None:
    torch.manual_seed(4)
    reference = SerNet(ModelConfig(num_classes=7, **MEL128)).eval()
    shared = SerNet(ModelConfig(num_classes=7, shared_blocks=2, **MEL128)).eval()
    shared.load_state_dict(reference.state_dict())
    x = torch.randn(BATCH, 128, 626)
    with torch.no_grad():
        first, second = reference.encoder(x), shared.encoder(x)
    assert not torch.allclose(first, second)
    assert torch.corrcoef(torch.stack([first.ravel(), second.ravel()]))[0, 1] > 0.9


@pytest.mark.parametrize(('changes', 'message'), [
    ({'shared_blocks': -1}, r'shared_blocks must be in 0\.\.4, got -1'),
    ({'shared_blocks': 5}, r'shared_blocks must be in 0\.\.4, got 5'),
    ({'conv_blocks': 2, 'shared_blocks': 3}, r'shared_blocks must be in 0\.\.2, got 3'),
    # Pools 2 then 4: two shared blocks stride time by 8, which 100 frames do not divide.
    ({'shared_blocks': 2, 'window_frames': 100, 'window_hop': 50},
     r'window_frames \(100\) and window_hop \(50\) must be multiples of the time pooling '
     r'of the 2 shared blocks \(8\)'),
    ({'shared_blocks': 4}, r'must be multiples of the time pooling of the 4 shared blocks '
                           r'\(128\)'),
])
def test_invalid_shared_blocks_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(num_classes=7, **{**MEL128, **changes})


@pytest.mark.parametrize('shared', [1, 2, 3])
def test_shared_blocks_skip_exactly_the_frames_no_window_uses(shared: int) -> None:
    """626 frames make 8 windows ending at 576: the tail beyond what they need is never read."""
    torch.manual_seed(5)
    model = SerNet(ModelConfig(num_classes=7, shared_blocks=shared, **MEL128)).eval()
    used = model.encoder.frames_used
    assert 576 < used < 626
    x = torch.randn(BATCH, 128, 626)
    other_tail, other_last_used = x.clone(), x.clone()
    other_tail[..., used:] = torch.randn(BATCH, 128, 626 - used) * 5
    other_last_used[..., used - 1] += 5
    with torch.no_grad():
        logits = model(x)
        assert torch.equal(model(other_tail), logits)
        assert not torch.allclose(model(other_last_used), logits)


def _padded(x: torch.Tensor, column: torch.Tensor, leading: int) -> torch.Tensor:
    """``x`` with its first ``leading`` frames replaced by the padding ``column``."""
    padded = x.clone()
    padded[:, :, :leading] = column.view(1, -1, 1)
    return padded


@pytest.mark.parametrize('shared', [0, 1, 2])
def test_skipping_leading_padding_is_exact_at_every_boundary(shared: int) -> None:
    """Skipped windows give the whole network's logits, at every boundary.

    At the shortest padding that lets k windows be skipped, and one frame short of it: a reach
    or crop guard too small would show here.
    """
    torch.manual_seed(6)
    model = SerNet(ModelConfig(num_classes=7, shared_blocks=shared, **MEL128))
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 128, 626) * 2 + 1)   # BatchNorm statistics off identity
    model.eval()
    column = torch.randn(128)
    with torch.no_grad():
        padding = model.padding_response(column)
        lengths = model.padding_lengths()
        assert lengths[0] == 0 and len(lengths) == model.config.num_windows + 1
        x = torch.randn(1, 128, 626)
        for skipped, length in enumerate(lengths):
            assert model.encoder.padding_windows(length) == skipped
            if skipped:
                assert model.encoder.padding_windows(length - 1) == skipped - 1
            for leading in {max(0, length - 1), min(626, length)}:
                padded = _padded(x, column, leading)
                assert torch.allclose(model(padded, padding), model(padded), atol=1e-5)


def test_skipping_padding_uses_the_batch_shortest_padding() -> None:
    torch.manual_seed(7)
    model = SerNet(ModelConfig(num_classes=7, shared_blocks=2, **MEL128)).eval()
    column = torch.randn(128)
    with torch.no_grad():
        padding = model.padding_response(column)
        x = torch.randn(3, 128, 626)
        batch = torch.cat([_padded(x[i:i + 1], column, leading)
                           for i, leading in enumerate((500, 200, 626))])
        one_by_one = torch.cat([model(item[None]) for item in batch])
        assert torch.allclose(model(batch, padding), one_by_one, atol=1e-5)
        # A padding column the input does not start with skips nothing.
        other = model.padding_response(column + 1)
        assert torch.allclose(model(batch, other), one_by_one, atol=1e-5)


def test_padding_is_not_skipped_while_training() -> None:
    model = SerNet(ModelConfig(num_classes=7, shared_blocks=2, **MEL128))
    with pytest.raises(RuntimeError, match='call eval'):
        model.padding_response(torch.zeros(128))
    assert SerNet(ModelConfig(num_classes=7, variant='blstm', **MEL128)).padding_lengths() == []
