"""Argument types shared by the offline tools' command lines."""

from __future__ import annotations

import argparse
import math


def seconds(text: str) -> float:
    """Parse a duration in seconds, finite and >= 0 (argparse ``type=``)."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f'must be a number of seconds >= 0, got {text}')
    return value
