"""A recording as the robot hears it: the longest utterance vad_node cuts from it.

Training files and every accuracy of the paper are whole RAVDESS files: about a second of
studio silence, the sentence, silence again (3.7 s on average). On the robot, emotion_node
classifies what vad_node passes on: the speech and 100 ms of pre-roll (1.9 s on average),
padded to the model's window with zeros. A model trained on whole files alone lost about 25
points of accuracy on those cuts (docs/model_notes.md). Here a recording is cut as the node
would cut it: placed in a second of silence on either side (as between the turns of a
conversation), streamed in 20 ms chunks (a robot microphone's) through
:class:`~ser_ros.core.segmenter.Segmenter` with vad_node's parameters from config/ser.yaml,
and followed by the silence emotion_node appends before the features (its
``trailing_silence_s``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser_ros.core.audio import append_silence
from ser_ros.core.segmenter import Segmenter, SegmenterConfig
from ser_ros.ros.node_set import node_parameters

VAD_NODE = 'vad_node'
EMOTION_NODE = 'emotion_node'
TRAILING_SILENCE = 'trailing_silence_s'
# Silence around each recording, and the chunk length of the stream.
STREAM_MARGIN_S = 1.0
STREAM_CHUNK_MS = 20
MS_PER_SECOND = 1000


def vad_node_config(path: Path | None = None) -> SegmenterConfig:
    """vad_node's segmenter settings from a parameters file (default: config/ser.yaml)."""
    return SegmenterConfig.from_parameters(node_parameters(VAD_NODE, path))


def emotion_node_trailing_silence(path: Path | None = None) -> float:
    """Seconds of silence emotion_node appends to each utterance (default file: config/ser.yaml)."""
    parameters = node_parameters(EMOTION_NODE, path)
    if TRAILING_SILENCE not in parameters:
        raise ValueError(f'the parameters file has no {EMOTION_NODE} {TRAILING_SILENCE}')
    return float(parameters[TRAILING_SILENCE])


def in_silence(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """``waveform`` with ``STREAM_MARGIN_S`` of digital silence before and after it."""
    return np.pad(waveform, int(STREAM_MARGIN_S * sample_rate))


@dataclass(frozen=True)
class VadCutter:
    """Cuts recordings with one segmenter configuration (picklable for worker processes)."""

    config: SegmenterConfig
    trailing_silence_s: float = 0.0

    name = 'vadcut'

    def longest(self, stream: np.ndarray, sample_rate: int) -> np.ndarray | None:
        """Longest utterance of ``stream`` (already in its silence or noise), None if none.

        The samples are at ``config.output_rate``.
        """
        segmenter = Segmenter(self.config, input_rate=sample_rate)
        return segmenter.longest(stream, sample_rate * STREAM_CHUNK_MS // MS_PER_SECOND)

    def __call__(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Return ``(samples, rate)`` as the emotion node would classify them.

        The whole recording when the VAD finds no speech in it: a model should still learn
        from it.
        """
        cut = self.longest(in_silence(waveform, sample_rate), sample_rate)
        if cut is None:
            heard, rate = waveform, sample_rate
        else:
            heard, rate = cut, self.config.output_rate
        return append_silence(heard, rate, self.trailing_silence_s), rate

    def describe(self) -> dict[str, Any]:
        """Everything the cut depends on (part of the feature cache key)."""
        return {'segmenter': asdict(self.config), 'margin_s': STREAM_MARGIN_S,
                'chunk_ms': STREAM_CHUNK_MS, TRAILING_SILENCE: self.trailing_silence_s}
