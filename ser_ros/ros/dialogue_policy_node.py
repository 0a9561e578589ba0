"""dialogue_policy_node: decide from /emotion whether the robot keeps engaging the patient.

The reference consumer of ``emotion`` (vision_msgs/Classification). Every classification
updates a decayed estimate of how strongly the patient's recent utterances argue for the robot
to withdraw (``ser_ros.core.policy``); the node publishes ``engage`` (std_msgs/Bool) after
each utterance and when the silence timeout fires, and logs the reason of every change.
The defaults and their rationale for elderly care are documented in ``config/ser.yaml``.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Sequence
from typing import Any

from rclpy.node import Node
from std_msgs.msg import Bool
from vision_msgs.msg import Classification

from ser_ros.core.policy import (
    DEFAULT_ENTER_THRESHOLD,
    DEFAULT_HALF_LIFE_UTTERANCES,
    DEFAULT_LEAVE_EMOTIONS,
    DEFAULT_LEAVE_THRESHOLD,
    DEFAULT_SILENCE_TIMEOUT_S,
    Decision,
    EngagementPolicy,
    PolicyConfig,
)
from ser_ros.ros.diagnostics import OK, WARN, create_diagnostics_publisher, make_status
from ser_ros.ros.node_main import run_node
from ser_ros.ros.params import ParameterError, Spec, declare_parameters
from ser_ros.ros.topics import EMOTION, ENGAGE, qos_for

NODE_NAME = 'dialogue_policy_node'
NS_PER_S = 1e9
LOG_THROTTLE_S = 1.0


def _emotion_names_problem(value: list) -> str | None:
    if not value or not all(isinstance(name, str) and name.strip() for name in value):
        return 'must list at least one emotion name'
    return None


PARAMETERS = (
    Spec('leave_emotions', list(DEFAULT_LEAVE_EMOTIONS),
         'emotions whose probability argues for the robot to withdraw (model label names)',
         check=_emotion_names_problem),
    Spec('half_life_utterances', DEFAULT_HALF_LIFE_UTTERANCES,
         'utterances after which an utterance counts half in the decayed estimate',
         low=0.1, high=100.0),
    Spec('leave_threshold', DEFAULT_LEAVE_THRESHOLD,
         'an engaged robot withdraws when the decayed leave estimate reaches this',
         low=0.0, high=1.0),
    Spec('enter_threshold', DEFAULT_ENTER_THRESHOLD,
         'a withdrawn robot engages again once the estimate has fallen to this (hysteresis; '
         'must be below leave_threshold)', low=0.0, high=1.0),
    Spec('silence_timeout_s', DEFAULT_SILENCE_TIMEOUT_S,
         'withdraw (and forget the estimate) after this long without any utterance, s',
         low=0.1, high=86400.0),
    Spec('check_period_s', 1.0, 'how often the silence timeout is checked, s', low=0.01,
         high=60.0),
    Spec('diagnostics_period_s', 1.0, 'seconds between /diagnostics reports', low=0.1,
         high=60.0),
)


def scores_of(message: Classification) -> dict[str, float]:
    """Label -> score of a classification; raise ValueError when it is not usable."""
    if not message.results:
        raise ValueError('classification without results')
    scores: dict[str, float] = {}
    for hypothesis in message.results:
        if hypothesis.class_id in scores:
            raise ValueError(f'class_id {hypothesis.class_id!r} appears twice')
        score = float(hypothesis.score)
        if not math.isfinite(score) or score < 0.0:
            raise ValueError(f'score {score} of {hypothesis.class_id!r} is not a probability')
        scores[hypothesis.class_id] = score
    return scores


class DialoguePolicyNode(Node):
    """Classification stream -> engage/disengage decisions with their reasons."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        try:
            values = declare_parameters(self, PARAMETERS)
            try:
                config = PolicyConfig(
                    leave_emotions=tuple(name.strip() for name in values['leave_emotions']),
                    half_life_utterances=values['half_life_utterances'],
                    leave_threshold=values['leave_threshold'],
                    enter_threshold=values['enter_threshold'],
                    silence_timeout_s=values['silence_timeout_s'])
            except ValueError as error:
                raise ParameterError(f'parameters enter_threshold/leave_threshold: {error}') \
                    from None
        except ParameterError:
            self.destroy_node()
            raise
        self.policy = EngagementPolicy(config)
        self._lock = threading.Lock()
        self._counts = {'received': 0, 'malformed': 0, 'decisions': 0, 'changes': 0}
        self._last_reason = 'waiting for the first utterance'
        self._unknown_warned = False
        self._problem_since_report = False
        self._publisher = self.create_publisher(Bool, ENGAGE, qos_for(ENGAGE).to_rclpy())
        self._diagnostics = create_diagnostics_publisher(self)
        self.create_subscription(Classification, EMOTION, self._on_emotion,
                                 qos_for(EMOTION).to_rclpy())
        self.create_timer(values['check_period_s'], self._check_timeout)
        self.create_timer(values['diagnostics_period_s'], self._report)
        self.get_logger().info(
            f'leave on {list(config.leave_emotions)}, half-life {config.half_life_utterances:g} '
            f'utterances, leave at {config.leave_threshold:g}, engage at '
            f'{config.enter_threshold:g}, silence timeout {config.silence_timeout_s:g} s')

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds / NS_PER_S

    def _on_emotion(self, message: Classification) -> None:
        with self._lock:
            self._counts['received'] += 1
        try:
            scores = scores_of(message)
            self._check_labels(scores)
            decision = self.policy.observe(scores, self._now_s())
        except ValueError as error:
            with self._lock:
                self._counts['malformed'] += 1
                self._problem_since_report = True
            self.get_logger().warning(f'classification ignored: {error}',
                                      throttle_duration_sec=LOG_THROTTLE_S)
            return
        self._publish(decision)

    def _check_labels(self, scores: dict[str, float]) -> None:
        leave = self.policy.config.leave_emotions
        if self._unknown_warned or any(name in scores for name in leave):
            return
        self._unknown_warned = True
        self.get_logger().warning(
            f'none of leave_emotions {list(leave)} is among the model labels '
            f'{list(scores)}: emotions alone will never make the robot withdraw')

    def _check_timeout(self) -> None:
        decision = self.policy.tick(self._now_s())
        if decision is not None:
            self._publish(decision)

    def _publish(self, decision: Decision) -> None:
        # Counted before publishing, so a listener that reads stats() on receipt sees this one.
        with self._lock:
            self._counts['decisions'] += 1
            self._counts['changes'] += int(decision.changed)
            self._last_reason = decision.reason
        self._publisher.publish(Bool(data=decision.engage))
        if decision.changed:
            self.get_logger().info(decision.reason)
        else:
            self.get_logger().debug(decision.reason)

    def stats(self) -> dict[str, Any]:
        """Counters, the current decision, estimate and last reason."""
        with self._lock:
            counts = dict(self._counts)
            reason = self._last_reason
        return {'engaged': self.policy.engaged, 'estimate': self.policy.estimate,
                **counts, 'last_reason': reason}

    def _report(self) -> None:
        stats = self.stats()
        with self._lock:
            problem, self._problem_since_report = self._problem_since_report, False
        level, text = (WARN, 'malformed classifications ignored') if problem else \
            (OK, 'engaged' if stats['engaged'] else 'not engaged')
        values = {'state': 'engaged' if stats['engaged'] else 'away',
                  'estimate': stats['estimate'],
                  **{key: stats[key] for key in ('received', 'malformed', 'decisions',
                                                 'changes')},
                  'last_reason': stats['last_reason']}
        self._diagnostics.publish(make_status(self, level, text, values, name='policy'))


def main(args: Sequence[str] | None = None) -> int:
    """Run dialogue_policy_node until Ctrl-C; exit status 2 for a refused parameter."""
    return run_node(DialoguePolicyNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
