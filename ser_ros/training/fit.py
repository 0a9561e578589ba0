"""The training loop: Adam, cross-entropy, early stopping on the validation set, resumable.

Beyond the paper's recipe (constant learning rate, plain cross-entropy), all off by default:
decoupled weight decay (AdamW), a cosine or reduce-on-plateau learning-rate schedule, label
smoothing, mixup of pairs of utterances, and an exponential moving average (EMA) of the weights.
With EMA on (its decay warmed up, see EMA_WARM_UP), the averaged network is the one validated,
kept as best and returned.

Every epoch ends with a state file (weights, optimiser, best weights so far, history and the
random-number state), written atomically, so an interrupted run resumes where it stopped and
ends with the same weights as an uninterrupted one. Batch order depends only on the seed and the
epoch number.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from ser_ros.core.files import atomic_write
from ser_ros.training.augment import AugmentConfig, NoiseSource, augment_batch, mix_batch

if TYPE_CHECKING:   # experiment.py imports this module
    from ser_ros.training.experiment import TrainingSection

STATE_FORMAT = 'ser_ros.train_state'
STATE_VERSION = 2
LR_SCHEDULES = ('constant', 'plateau', 'cosine')
# Why training ended: validation patience ran out, the time budget was used up (the run can be
# resumed with a larger one), or max_epochs were all run.
STOP_REASONS = ('patience', 'time_budget', 'max_epochs')
EPOCH_SEED_STRIDE = 1_000_003
# EMA warm-up (TensorFlow's ExponentialMovingAverage convention): the decay after n updates is
# min(ema_decay, (1 + n) / (EMA_WARM_UP + n)), so the first epochs' average is not mostly the
# random initial weights (with a fixed 0.998, 38% of it still is after 480 steps).
EMA_WARM_UP = 10.0
EVAL_BATCH_SIZE = 64


@dataclass(frozen=True)
class FitSettings:
    """What the loop needs from the experiment's training section, already resolved.

    No defaults here: the training section (``ser_ros.training.experiment``) holds them, and
    ``from_training`` copies its values.
    """

    learning_rate: float
    batch_size: int
    max_epochs: int
    patience: int
    monitor: str
    seed: int
    device: torch.device
    bf16: bool
    fingerprint: str
    augment: AugmentConfig
    time_budget_s: float
    # constant (the paper); plateau: multiply by lr_factor after lr_patience epochs without
    # improvement of the monitored value; cosine: anneal to min_learning_rate over max_epochs.
    lr_schedule: str
    lr_patience: int
    lr_factor: float
    min_learning_rate: float
    weight_decay: float
    label_smoothing: float
    mixup_alpha: float
    ema_decay: float

    @classmethod
    def from_training(cls, training: TrainingSection, *, device: torch.device, bf16: bool,
                      fingerprint: str) -> FitSettings:
        """Take the values from an experiment's training section.

        The rest is what the run resolved: the device, bf16 autocast on or off, and the
        fingerprint a resumed state must match.
        """
        resolved = {'device': device, 'bf16': bf16, 'fingerprint': fingerprint,
                    'augment': AugmentConfig.from_dict(training.augment)}
        return cls(**resolved, **{item.name: getattr(training, item.name)
                                  for item in fields(cls) if item.name not in resolved})


@dataclass
class EpochRecord:
    """Losses and accuracies of one epoch (UA = mean per-class recall)."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    val_ua: float
    seconds: float


@dataclass
class FitResult:
    """How training went; the model holds the best weights when fit() returns."""

    best_epoch: int
    epochs_run: int
    seconds: float
    stop_reason: str = 'max_epochs'   # one of STOP_REASONS
    history: list[EpochRecord] = field(default_factory=list)

    @property
    def stopped_early(self) -> bool:
        """Whether training ended before max_epochs (patience or time budget)."""
        return self.stop_reason != 'max_epochs'


def autocast_context(device: torch.device, bf16: bool) -> Any:
    """bf16 autocast on the given device, or nothing."""
    if not bf16:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@torch.inference_mode()
def predict_logits(model: nn.Module, features: torch.Tensor, device: torch.device,
                   bf16: bool, batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    """Float32 logits of the model (in eval mode) for a (N, F, T) tensor, on the CPU."""
    model.eval()
    outputs = []
    for start in range(0, len(features), batch_size):
        batch = features[start:start + batch_size].to(device, non_blocking=True)
        with autocast_context(device, bf16):
            outputs.append(model(batch).float().cpu())
    return torch.cat(outputs) if outputs else torch.empty(0)


def _is_improvement(monitor: str, value: float, best: float) -> bool:
    return value < best if monitor == 'val_loss' else value > best


def _initial_best(monitor: str) -> float:
    return math.inf if monitor == 'val_loss' else -math.inf


def _save_state(path: Path, state: dict[str, Any]) -> None:
    with atomic_write(path) as stream:
        torch.save(state, stream)


def _load_state(path: Path, settings: FitSettings) -> dict[str, Any] | None:
    if not path.exists():
        return None
    state = torch.load(path, map_location='cpu', weights_only=True)
    if state.get('format') != STATE_FORMAT or state.get('version') != STATE_VERSION:
        raise ValueError(f'{path} is not a ser_ros training state (version {STATE_VERSION})')
    if state.get('fingerprint') != settings.fingerprint:
        raise ValueError(
            f'{path} belongs to a run with another configuration; delete it or use another '
            f'run directory to start afresh'
        )
    return state


def ema_with_warm_up(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor],
                                                 torch.Tensor], None]:
    """AveragedModel ``multi_avg_fn``: exponential moving average with a warm-up of its decay."""
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor],
               num_averaged: torch.Tensor) -> None:
        if not torch.is_floating_point(averaged[0]):   # BatchNorm's step counters
            for target, source in zip(averaged, current, strict=True):
                target.copy_(source)
            return
        updates = float(num_averaged)
        rate = min(decay, (1.0 + updates) / (EMA_WARM_UP + updates))
        for target, source in zip(averaged, current, strict=True):
            target.lerp_(source, 1.0 - rate)

    return update


def _scheduler(optimizer: torch.optim.Optimizer, settings: FitSettings) -> Any:
    if settings.lr_schedule == 'plateau':
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode='min' if settings.monitor == 'val_loss' else 'max',
            factor=settings.lr_factor, patience=settings.lr_patience,
            min_lr=settings.min_learning_rate)
    if settings.lr_schedule == 'cosine':
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=settings.max_epochs, eta_min=settings.min_learning_rate)
    if settings.lr_schedule != 'constant':
        raise ValueError(f'lr_schedule must be one of {LR_SCHEDULES}, got {settings.lr_schedule!r}')
    return None


def fit(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
        validation: tuple[torch.Tensor, torch.Tensor], settings: FitSettings,
        state_path: Path | None = None, progress: bool = True,
        noise: NoiseSource | None = None, train_cuts: torch.Tensor | None = None) -> FitResult:
    """Train until patience runs out or max_epochs; restore the best validation weights.

    ``noise`` puts noise into training examples (``settings.augment.noise_probability``): a
    mixer, or noisy copies aligned with ``train``;
    ``train_cuts`` are the training examples as vad_node cuts them, aligned with ``train``
    (``settings.augment.vad_cut_probability``).
    """
    train_x, train_y = train
    val_x, val_y = validation
    device = settings.device
    model.to(device)
    # AdamW with weight_decay 0 is the paper's Adam.
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    scheduler = _scheduler(optimizer, settings)
    # The average also covers the batch-norm statistics (use_buffers).
    averaged = (AveragedModel(model, multi_avg_fn=ema_with_warm_up(settings.ema_decay),
                              use_buffers=True) if settings.ema_decay else None)
    evaluated = averaged.module if averaged is not None else model
    train_loss_function = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    loss_function = nn.CrossEntropyLoss()
    torch.manual_seed(settings.seed)

    start_epoch, best_epoch, waited = 0, 0, 0
    best_value = _initial_best(settings.monitor)
    best_weights = copy.deepcopy(model.state_dict())
    history: list[EpochRecord] = []
    elapsed_before = 0.0
    state = _load_state(state_path, settings) if state_path is not None else None
    if state is not None:
        model.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        if scheduler is not None and state.get('scheduler'):
            scheduler.load_state_dict(state['scheduler'])
        if averaged is not None:
            averaged.load_state_dict(state['averaged'])
        best_weights = state['best_model']
        start_epoch, best_epoch = state['epoch'], state['best_epoch']
        best_value, waited = state['best_value'], state['waited']
        history = [EpochRecord(**record) for record in state['history']]
        elapsed_before = state['seconds']
        torch.set_rng_state(state['torch_rng'])
        if start_epoch and progress:
            tqdm.write(f'resuming after epoch {start_epoch} from {state_path}')

    started = time.perf_counter()
    stopped_early = waited >= settings.patience
    out_of_time = False
    for epoch in range(start_epoch, settings.max_epochs):
        if stopped_early:
            break
        epoch_started = time.perf_counter()
        model.train()
        epoch_generator = torch.Generator().manual_seed(settings.seed * EPOCH_SEED_STRIDE + epoch)
        order = torch.randperm(len(train_x), generator=epoch_generator)
        mix_rng = np.random.default_rng(settings.seed * EPOCH_SEED_STRIDE + epoch)
        total_loss, correct, seen = 0.0, 0, 0
        batches = tqdm(range(0, len(order), settings.batch_size), leave=False, unit='batch',
                       desc=f'epoch {epoch + 1}/{settings.max_epochs}',
                       disable=None if progress else True)
        for start in batches:
            index = order[start:start + settings.batch_size]
            batch_x = augment_batch(train_x[index], settings.augment, epoch_generator,
                                    None if noise is None else noise.for_rows(index),
                                    None if train_cuts is None else train_cuts[index])
            batch_y = train_y[index]
            batch_x, partner_y, weight = mix_batch(batch_x, batch_y, settings.mixup_alpha,
                                                   epoch_generator, mix_rng)
            batch_x = batch_x.to(device, non_blocking=True)
            batch_y = batch_y.to(device, non_blocking=True)
            partner_y = partner_y.to(device, non_blocking=True)
            with autocast_context(device, settings.bf16):
                logits = model(batch_x)
            loss = train_loss_function(logits.float(), batch_y)
            if weight < 1.0:
                loss = weight * loss + (1.0 - weight) * train_loss_function(logits.float(),
                                                                            partner_y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            total_loss += loss.item() * len(index)
            correct += (logits.argmax(dim=1) == batch_y).sum().item()
            seen += len(index)
            batches.set_postfix(loss=f'{total_loss / seen:.3f}', acc=f'{correct / seen:.3f}')

        val_logits = predict_logits(evaluated, val_x, device, settings.bf16)
        val_loss = loss_function(val_logits, val_y).item()
        val_pred = val_logits.argmax(dim=1)
        record = EpochRecord(
            epoch=epoch + 1, train_loss=total_loss / seen, train_accuracy=correct / seen,
            val_loss=val_loss, val_accuracy=(val_pred == val_y).float().mean().item(),
            val_ua=float(balanced_accuracy_score(val_y.numpy(), val_pred.numpy())),
            seconds=time.perf_counter() - epoch_started,
        )
        history.append(record)
        value = record.val_loss if settings.monitor == 'val_loss' else record.val_ua
        if settings.lr_schedule == 'plateau':
            scheduler.step(value)
        elif scheduler is not None:
            scheduler.step()
        if _is_improvement(settings.monitor, value, best_value):
            best_value, best_epoch, waited = value, record.epoch, 0
            best_weights = copy.deepcopy(evaluated.state_dict())
        else:
            waited += 1
        stopped_early = waited >= settings.patience
        if settings.time_budget_s and time.perf_counter() - started >= settings.time_budget_s:
            stopped_early = out_of_time = True
            if progress:
                tqdm.write(f'time budget of {settings.time_budget_s:.0f} s used up after epoch '
                           f'{record.epoch}')
        if progress:
            tqdm.write(
                f'epoch {record.epoch:3d}  loss {record.train_loss:.3f}  acc '
                f'{record.train_accuracy:.3f}  val_loss {record.val_loss:.3f}  val_acc '
                f'{record.val_accuracy:.3f}  val_ua {record.val_ua:.3f}  {record.seconds:.1f}s'
                + ('  *' if best_epoch == record.epoch else '')
            )
        if state_path is not None:
            _save_state(state_path, {
                'format': STATE_FORMAT, 'version': STATE_VERSION,
                'fingerprint': settings.fingerprint, 'epoch': record.epoch,
                'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
                'scheduler': scheduler.state_dict() if scheduler is not None else {},
                'averaged': averaged.state_dict() if averaged is not None else {},
                'best_model': best_weights, 'best_epoch': best_epoch,
                'best_value': best_value, 'waited': waited,
                'history': [asdict(item) for item in history],
                'seconds': elapsed_before + time.perf_counter() - started,
                'torch_rng': torch.get_rng_state(),
            })

    model.load_state_dict(best_weights)
    model.eval()
    stop_reason = ('patience' if waited >= settings.patience
                   else 'time_budget' if out_of_time else 'max_epochs')
    return FitResult(best_epoch=best_epoch, epochs_run=len(history),
                     seconds=elapsed_before + time.perf_counter() - started, history=history,
                     stop_reason=stop_reason)
