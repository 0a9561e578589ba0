"""Engagement policy: decayed leave evidence, hysteresis, silence timeout, input checks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ser_ros.core.policy import (
    EngagementPolicy,
    PolicyConfig,
    leave_evidence,
)
from ser_ros.data.labels import RAVDESS_7

CONFIG = PolicyConfig(leave_emotions=('angry', 'fearful', 'disgust'), half_life_utterances=1.0,
                      leave_threshold=0.6, enter_threshold=0.3, silence_timeout_s=10.0)


def one_hot(label: str, labels: tuple[str, ...] = RAVDESS_7) -> dict[str, float]:
    return {name: 1.0 if name == label else 0.0 for name in labels}


def test_first_calm_utterance_engages() -> None:
    policy = EngagementPolicy(CONFIG)
    assert not policy.engaged
    decision = policy.observe(one_hot('neutral'), now_s=0.0)
    assert decision.engage and decision.changed
    assert decision.reason.startswith('engage:')
    assert decision.evidence == 0.0


def test_one_angry_utterance_is_not_enough_but_two_are() -> None:
    # Half-life 1 utterance: estimates 0.5 then 0.75 with leave_threshold 0.6.
    policy = EngagementPolicy(CONFIG)
    policy.observe(one_hot('neutral'), 0.0)
    first = policy.observe(one_hot('angry'), 1.0)
    assert first.engage and not first.changed
    assert first.estimate == pytest.approx(0.5)
    second = policy.observe(one_hot('angry'), 2.0)
    assert not second.engage and second.changed
    assert second.estimate == pytest.approx(0.75)
    assert 'leave_threshold' in second.reason and 'angry' in second.reason


def test_hysteresis_needs_the_enter_threshold_to_come_back() -> None:
    policy = EngagementPolicy(CONFIG)
    for now, label in enumerate(['neutral', 'fearful', 'disgust']):
        policy.observe(one_hot(label), float(now))
    assert not policy.engaged                                   # estimate 0.75
    # Estimate 0.375: below leave_threshold but above enter_threshold -> still away.
    assert not policy.observe(one_hot('happy'), 3.0).engage
    back = policy.observe(one_hot('happy'), 4.0)               # 0.1875 <= 0.3
    assert back.engage and back.changed
    # And an estimate between the thresholds does not send it away again.
    assert policy.observe({'angry': 0.9, 'happy': 0.1}, 5.0).estimate == pytest.approx(0.54375)
    assert policy.engaged


def test_sadness_is_a_reason_to_stay_with_defaults() -> None:
    policy = EngagementPolicy()
    decisions = [policy.observe(one_hot('sad'), float(t)) for t in range(10)]
    assert all(d.engage for d in decisions)
    assert policy.estimate == 0.0


def test_half_life_halves_old_evidence_per_half_life() -> None:
    policy = EngagementPolicy(PolicyConfig(half_life_utterances=3.0))
    policy.observe(one_hot('angry'), 0.0)
    after_one = policy.estimate
    for t in range(3):
        policy.observe(one_hot('neutral'), 1.0 + t)
    assert policy.estimate == pytest.approx(after_one / 2)


def test_silence_timeout_disengages_and_resets() -> None:
    policy = EngagementPolicy(CONFIG)
    policy.observe(one_hot('neutral'), 100.0)
    policy.observe(one_hot('angry'), 101.0)
    assert policy.tick(110.9) is None
    decision = policy.tick(111.0)
    assert decision is not None and not decision.engage and decision.changed
    assert 'nobody spoke for 10.0 s' in decision.reason
    assert policy.estimate == 0.0
    assert policy.tick(500.0) is None                          # fires once
    assert policy.observe(one_hot('neutral'), 501.0).engage    # fresh start


def test_timeout_while_away_forgets_old_anger_without_a_decision() -> None:
    policy = EngagementPolicy(CONFIG)
    policy.observe(one_hot('angry'), 0.0)
    policy.observe(one_hot('angry'), 1.0)
    assert not policy.engaged and policy.estimate > 0.6
    assert policy.tick(20.0) is None
    assert policy.estimate == 0.0
    assert policy.observe(one_hot('neutral'), 21.0).engage


def test_tick_before_any_speech_does_nothing() -> None:
    policy = EngagementPolicy(CONFIG)
    assert policy.tick(1e9) is None
    assert not policy.engaged


def test_leave_evidence_normalises_and_ignores_unknown_labels() -> None:
    assert leave_evidence({'angry': 2.0, 'happy': 2.0}, {'angry'}) == pytest.approx(0.5)
    assert leave_evidence({'ang': 1.0, 'neu': 1.0}, {'angry'}) == 0.0   # IEMOCAP-style names


@pytest.mark.parametrize('scores', [{}, {'angry': -0.1, 'sad': 1.1}, {'angry': math.nan},
                                    {'angry': 0.0, 'sad': 0.0}])
def test_bad_scores_are_refused_and_leave_state_unchanged(scores: dict[str, float]) -> None:
    policy = EngagementPolicy(CONFIG)
    policy.observe(one_hot('neutral'), 0.0)
    with pytest.raises(ValueError):
        policy.observe(scores, 1.0)
    assert policy.engaged and policy.estimate == 0.0


@pytest.mark.parametrize('changes, message', [
    ({'enter_threshold': 0.6, 'leave_threshold': 0.6}, 'must be below leave_threshold'),
    ({'leave_threshold': 1.5}, 'leave_threshold must be within 0..1'),
    ({'half_life_utterances': 0.0}, 'half_life_utterances must be a positive'),
    ({'silence_timeout_s': math.inf}, 'silence_timeout_s must be a positive'),
    ({'leave_emotions': ()}, 'leave_emotions must be non-empty'),
    ({'leave_emotions': ('angry', '')}, 'leave_emotions must be non-empty'),
])
def test_invalid_configs_name_the_parameter(changes: dict, message: str) -> None:
    values = {'leave_emotions': ('angry',), 'half_life_utterances': 2.0, 'leave_threshold': 0.55,
              'enter_threshold': 0.3, 'silence_timeout_s': 60.0, **changes}
    with pytest.raises(ValueError, match=message):
        PolicyConfig(**values)


probabilities = st.lists(st.floats(0.0, 1.0), min_size=len(RAVDESS_7),
                         max_size=len(RAVDESS_7)).filter(lambda p: sum(p) > 1e-6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(probabilities, st.floats(0.0, 30.0)), max_size=30))
def test_state_stays_consistent_for_any_sequence(steps: list) -> None:
    policy = EngagementPolicy(CONFIG)
    now = 0.0
    for scores, gap in steps:
        now += gap
        before = policy.engaged
        timeout = policy.tick(now)
        if timeout is not None:
            assert before and not timeout.engage and policy.estimate == 0.0
        decision = policy.observe(dict(zip(RAVDESS_7, scores, strict=True)), now)
        assert 0.0 <= decision.estimate <= 1.0
        assert decision.engage == policy.engaged
        # Hysteresis: a change only happens across the matching threshold.
        if decision.changed and decision.engage:
            assert decision.estimate <= CONFIG.enter_threshold
        if decision.changed and not decision.engage:
            assert decision.estimate >= CONFIG.leave_threshold
