"""The training loop: why it stopped (patience, time budget, max_epochs) and its EMA warm-up."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from ser_ros.training.experiment import TrainingSection
from ser_ros.training.fit import STOP_REASONS, FitSettings, ema_with_warm_up, fit

FEATURES, FRAMES, CLASSES, EXAMPLES = 4, 6, 3, 24


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(EXAMPLES, FEATURES, FRAMES, generator=generator)
    return features, torch.randint(0, CLASSES, (EXAMPLES,), generator=generator)


def _fit(**changes: object) -> tuple[str, int]:
    training = TrainingSection(learning_rate=1e-2, batch_size=8, max_epochs=3, seed=0)
    settings = replace(FitSettings.from_training(training, device=torch.device('cpu'),
                                                 bf16=False, fingerprint=''), **changes)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(FEATURES * FRAMES, CLASSES))
    result = fit(model, _data(1), _data(2), settings, progress=False)
    assert result.stop_reason in STOP_REASONS
    return result.stop_reason, result.epochs_run


@pytest.mark.parametrize(('changes', 'reason', 'epochs'), [
    ({}, 'max_epochs', 3),
    # A learning rate of 0 never improves on the first epoch: patience 1 ends epoch 2.
    ({'learning_rate': 0.0, 'patience': 1, 'max_epochs': 10}, 'patience', 2),
    ({'time_budget_s': 1e-6, 'max_epochs': 10}, 'time_budget', 1),
])
def test_stop_reason(changes: dict[str, object], reason: str, epochs: int) -> None:
    assert _fit(**changes) == (reason, epochs)


def test_ema_warm_up_follows_the_model_early_and_settles_at_the_decay() -> None:
    model = nn.Linear(2, 1)
    averaged = AveragedModel(model, multi_avg_fn=ema_with_warm_up(0.998), use_buffers=True)
    averaged.update_parameters(model)            # the first update copies the weights
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(100):
        averaged.update_parameters(model)
    # 100 updates with the warmed-up decay (at most 101/110) leave < 1% of the start; a fixed
    # 0.998 would leave 0.998 ** 100 = 82% of it.
    assert (averaged.module.weight - 1.0).abs().max().item() < 0.01
    # Late on the rate is the configured decay: one update moves 0.2% of the way.
    averaged.n_averaged.fill_(100_000)
    before = averaged.module.weight.clone()
    with torch.no_grad():
        model.weight.fill_(2.0)
    averaged.update_parameters(model)
    assert torch.allclose(averaged.module.weight, before + 0.002 * (2.0 - before), atol=1e-6)
