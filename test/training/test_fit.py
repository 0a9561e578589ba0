"""The training loop says why it stopped: patience, time budget or max_epochs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ser_ros.training.fit import STOP_REASONS, FitSettings, fit

FEATURES, FRAMES, CLASSES, EXAMPLES = 4, 6, 3, 24


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(EXAMPLES, FEATURES, FRAMES, generator=generator)
    return features, torch.randint(0, CLASSES, (EXAMPLES,), generator=generator)


def _fit(**changes: object) -> tuple[str, int]:
    settings = dict(learning_rate=1e-2, batch_size=8, max_epochs=3, patience=30,
                    monitor='val_loss', seed=0, device=torch.device('cpu'), bf16=False)
    settings.update(changes)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(FEATURES * FRAMES, CLASSES))
    result = fit(model, _data(1), _data(2), FitSettings(**settings), progress=False)
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
