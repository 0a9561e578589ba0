"""A small full-variant network overfits 28 real RAVDESS utterances: gradients reach every block.

Every parameter (conv blocks, BLSTM, attention, classifier) gets a non-zero gradient on the first
step, and training reaches 100% accuracy on the training utterances, measured in eval mode
(BatchNorm running statistics, as inference uses them). Single-threaded: for a network this small
torch's intra-op threads cost more than they give, and far more on a busy machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ser_ros.core.audio import AudioConfig
from ser_ros.core.features import FrontEnd, Normalizer, feature_preset
from ser_ros.core.model import ModelConfig, SerNet
from ser_ros.data.corpus import Utterance
from ser_ros.data.ravdess import load_ravdess

PER_CLASS = 4               # 7 classes x 4 actors = 28 utterances
SECONDS = 2.0               # mel128 over 2 s: 128 x 251
LEARNING_RATE = 3e-3
BATCH_SIZE = 4
MAX_EPOCHS = 80             # reaches 100% after 34 epochs here; more than twice as margin
SEED = 0


@pytest.fixture()
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def chosen_utterances(ravdess_dir: Path) -> list[Utterance]:
    """Pick the first PER_CLASS utterances of each label, each label from distinct actors."""
    corpus = load_ravdess(ravdess_dir)
    picked: dict[str, list[Utterance]] = {label: [] for label in corpus.labels}
    for item in corpus:
        group = picked[item.label]
        if len(group) < PER_CLASS and all(other.speaker != item.speaker for other in group):
            group.append(item)
    return [item for label in corpus.labels for item in picked[label]]


def test_small_network_overfits_real_utterances(ravdess_dir: Path, one_thread: None) -> None:
    corpus_labels = load_ravdess(ravdess_dir).labels
    utterances = chosen_utterances(ravdess_dir)
    assert len(utterances) == PER_CLASS * len(corpus_labels)
    front_end = FrontEnd(AudioConfig(duration_s=SECONDS, pad_mode='post'),
                         feature_preset('mel128'))
    raw = np.stack([front_end.extract_file(item.path) for item in utterances])
    x = torch.from_numpy(Normalizer.fit(raw)(raw))
    y = torch.tensor([corpus_labels.index(item.label) for item in utterances])

    torch.manual_seed(SEED)
    # The full variant (conv blocks, BLSTM, attention), shrunk: 2 blocks of 8 and 16 filters
    # whose pools take each 128 x 64 window to one pixel, the first block shared.
    config = ModelConfig(num_classes=len(corpus_labels), num_features=128,
                         num_frames=x.shape[2], conv_blocks=2, filters=(8, 16),
                         pool_sizes=(8, 16), window_frames=64, window_hop=32, shared_blocks=1,
                         lstm_units=32, attention_units=32, dropout=0.0)
    model = SerNet(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    order_generator = torch.Generator().manual_seed(SEED)
    started = time.perf_counter()
    accuracy, epoch = 0.0, 0
    for epoch in range(1, MAX_EPOCHS + 1):
        model.train()
        order = torch.randperm(len(x), generator=order_generator)
        for start in range(0, len(x), BATCH_SIZE):
            index = order[start:start + BATCH_SIZE]
            loss = nn.functional.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            if epoch == 1 and start == 0:
                for name, parameter in model.named_parameters():
                    assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
        if accuracy == 1.0:
            break
    seconds = time.perf_counter() - started
    assert accuracy == 1.0, (f'train accuracy {accuracy:.3f} after {epoch} epochs '
                             f'({seconds:.0f} s)')
