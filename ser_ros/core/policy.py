"""Engage or disengage from the patient's recent emotional state (ROS-free decision logic).

Each recognised utterance gives a *leave evidence*: the summed probability of the emotions that
argue for the robot to withdraw (by default angry, fearful, disgust). The policy keeps an
exponentially decayed estimate of that evidence over utterances, so that one misrecognised
utterance cannot send the robot away while a patient who stays upset will:

    estimate <- keep * estimate + (1 - keep) * evidence,   keep = 0.5 ** (1 / half_life)

with ``half_life`` counted in utterances. Two thresholds give hysteresis: an engaged robot
leaves when the estimate reaches ``leave_threshold`` and engages again only once it has fallen
to ``enter_threshold``, so an estimate hovering near one value cannot make it flap. When nobody
has spoken for ``silence_timeout_s`` the robot disengages (the patient has left, fallen asleep
or does not want to talk) and the estimate is reset (also when already away): the next
speaker starts afresh.

The policy starts disengaged with an estimate of 0 (no evidence for leaving): the first
utterance that keeps the estimate at or below ``enter_threshold`` engages.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

DEFAULT_LEAVE_EMOTIONS = ('angry', 'fearful', 'disgust')
DEFAULT_HALF_LIFE_UTTERANCES = 2.0
DEFAULT_LEAVE_THRESHOLD = 0.55
DEFAULT_ENTER_THRESHOLD = 0.3
DEFAULT_SILENCE_TIMEOUT_S = 120.0
# Scores that sum to 1 within this tolerance are taken as probabilities; larger deviations are
# normalised so that the evidence stays a probability.
SCORE_SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class PolicyConfig:
    """Parameters of :class:`EngagementPolicy`; see the module docstring for their roles."""

    leave_emotions: tuple[str, ...] = DEFAULT_LEAVE_EMOTIONS
    half_life_utterances: float = DEFAULT_HALF_LIFE_UTTERANCES
    leave_threshold: float = DEFAULT_LEAVE_THRESHOLD
    enter_threshold: float = DEFAULT_ENTER_THRESHOLD
    silence_timeout_s: float = DEFAULT_SILENCE_TIMEOUT_S

    def __post_init__(self) -> None:
        emotions = tuple(self.leave_emotions)
        if not emotions or not all(isinstance(e, str) and e for e in emotions):
            raise ValueError(f'leave_emotions must be non-empty emotion names, got {emotions!r}')
        object.__setattr__(self, 'leave_emotions', emotions)
        for name in ('half_life_utterances', 'silence_timeout_s'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a positive number, got {value!r}')
        for name in ('leave_threshold', 'enter_threshold'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f'{name} must be within 0..1, got {value!r}')
        if not self.enter_threshold < self.leave_threshold:
            raise ValueError(
                f'enter_threshold ({self.enter_threshold}) must be below leave_threshold '
                f'({self.leave_threshold}), or the robot would flap between the two decisions'
            )

    @property
    def keep(self) -> float:
        """Weight the previous estimate keeps at each utterance."""
        return 0.5 ** (1.0 / self.half_life_utterances)


@dataclass(frozen=True)
class Decision:
    """What the policy decided after an utterance or a clock tick, and why."""

    engage: bool
    changed: bool
    reason: str
    estimate: float
    evidence: float | None = None


def leave_evidence(scores: Mapping[str, float], leave_emotions: Collection[str]) -> float:
    """Return the summed probability of the leave emotions in ``scores`` (normalised to 1).

    Raises ValueError for scores that are empty, negative or not finite.
    """
    if not scores:
        raise ValueError('no emotion scores')
    values = {label: float(score) for label, score in scores.items()}
    if not all(math.isfinite(v) and v >= 0.0 for v in values.values()):
        raise ValueError(f'emotion scores must be finite and non-negative, got {values}')
    total = sum(values.values())
    if total <= 0.0:
        raise ValueError(f'emotion scores sum to {total}, not a probability distribution')
    leaving = sum(v for label, v in values.items() if label in leave_emotions)
    return min(1.0, leaving / total)


class EngagementPolicy:
    """Decayed leave evidence with hysteresis and a silence timeout; times are in seconds."""

    def __init__(self, config: PolicyConfig = PolicyConfig()) -> None:
        self.config = config
        self._estimate = 0.0
        self._engaged = False
        self._last_speech_s: float | None = None

    @property
    def engaged(self) -> bool:
        """Current decision: True while the robot should keep engaging."""
        return self._engaged

    @property
    def estimate(self) -> float:
        """Decayed leave evidence in 0..1."""
        return self._estimate

    def observe(self, scores: Mapping[str, float], now_s: float) -> Decision:
        """Take one utterance's emotion probabilities (label -> score) heard at ``now_s``."""
        config = self.config
        evidence = leave_evidence(scores, config.leave_emotions)
        self._estimate = config.keep * self._estimate + (1.0 - config.keep) * evidence
        self._last_speech_s = now_s
        top = max(scores, key=lambda label: scores[label])
        detail = (f'leave estimate {self._estimate:.2f} after {top} '
                  f'(leave evidence {evidence:.2f})')
        if self._engaged and self._estimate >= config.leave_threshold:
            return self._switch(False, f'disengage: {detail} reached '
                                       f'leave_threshold {config.leave_threshold:.2f}', evidence)
        if not self._engaged and self._estimate <= config.enter_threshold:
            return self._switch(True, f'engage: {detail} is at or below '
                                      f'enter_threshold {config.enter_threshold:.2f}', evidence)
        state = 'stay engaged' if self._engaged else 'stay away'
        return Decision(self._engaged, False, f'{state}: {detail}', self._estimate, evidence)

    def tick(self, now_s: float) -> Decision | None:
        """Check the silence timeout at ``now_s``; return a decision only when it fires."""
        if self._last_speech_s is None:
            return None
        silent_s = now_s - self._last_speech_s
        if silent_s < self.config.silence_timeout_s:
            return None
        # Old evidence is about a conversation that has ended: forget it even when away.
        self._estimate = 0.0
        self._last_speech_s = None
        if not self._engaged:
            return None
        return self._switch(False, f'disengage: nobody spoke for {silent_s:.1f} s '
                                   f'(silence_timeout_s {self.config.silence_timeout_s:g})', None)

    def _switch(self, engage: bool, reason: str, evidence: float | None) -> Decision:
        self._engaged = engage
        return Decision(engage, True, reason, self._estimate, evidence)
