"""dialogue_policy_node through real topics: Classification sequences in, engage decisions out."""

from __future__ import annotations

import math
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.parameter import Parameter
from std_msgs.msg import Bool
from vision_msgs.msg import Classification, ObjectHypothesis

from ser_ros.data.labels import RAVDESS_7
from ser_ros.ros.diagnostics import status_values
from ser_ros.ros.dialogue_policy_node import DialoguePolicyNode
from ser_ros.ros.params import ParameterError
from ser_ros.ros.topics import DIAGNOSTICS, EMOTION, ENGAGE, qos_for

from .harness import spinning, wait_for, wait_for_subscribers

TIMEOUT_S = 1.0
WAIT_S = 5.0


def classification(scores: dict[str, float]) -> Classification:
    message = Classification()
    message.header.frame_id = 'mic'
    message.results = [ObjectHypothesis(class_id=label, score=score)
                       for label, score in scores.items()]
    return message


def one_hot(label: str) -> Classification:
    return classification({name: float(name == label) for name in RAVDESS_7})


def start_node(context: Context, **parameters: object) -> DialoguePolicyNode:
    values = {'half_life_utterances': 1.0, 'leave_threshold': 0.6, 'enter_threshold': 0.3,
              'silence_timeout_s': TIMEOUT_S, 'check_period_s': 0.05,
              'diagnostics_period_s': 0.2, **parameters}
    return DialoguePolicyNode(context=context, parameter_overrides=[
        Parameter(name, value=value) for name, value in values.items()])


def test_engage_follows_the_emotions_with_hysteresis_and_timeout(
        ros_context: Context, make_node: object) -> None:
    node = start_node(ros_context)
    probe = make_node('policy_probe')
    publisher = probe.create_publisher(Classification, EMOTION, qos_for(EMOTION).to_rclpy())
    decisions: list[tuple[bool, float]] = []
    reports: list[dict[str, str]] = []
    probe.create_subscription(Bool, ENGAGE,
                              lambda m: decisions.append((m.data, time.monotonic())),
                              qos_for(ENGAGE).to_rclpy())
    probe.create_subscription(
        DiagnosticArray, DIAGNOSTICS,
        lambda m: reports.append(status_values(m)) if m.status[0].name.startswith(
            'dialogue_policy_node') else None, qos_for(DIAGNOSTICS).to_rclpy())
    # Estimates with half-life 1: 0, .5, .75, .375, .1875 (leave at .6, engage at .3).
    sequence = ['neutral', 'angry', 'angry', 'happy', 'happy']
    expected = [True, True, False, False, True]
    with spinning(ros_context, node, probe):
        assert wait_for_subscribers(publisher)
        for label in sequence:
            publisher.publish(one_hot(label))
        sent = time.monotonic()
        assert wait_for(lambda: len(decisions) == len(sequence), WAIT_S), decisions
        assert [engage for engage, _ in decisions] == expected
        # Nobody speaks: the silence timeout withdraws the robot once.
        assert wait_for(lambda: len(decisions) == len(sequence) + 1, TIMEOUT_S + WAIT_S)
        engage, at = decisions[-1]
        assert not engage and at - sent >= TIMEOUT_S
        # Malformed classifications are ignored (no decision); the next good one is answered.
        publisher.publish(Classification())
        publisher.publish(classification({'angry': math.nan, 'sad': 0.5}))
        duplicate = one_hot('sad')
        duplicate.results.append(ObjectHypothesis(class_id='sad', score=0.0))
        publisher.publish(duplicate)
        publisher.publish(one_hot('neutral'))
        assert wait_for(lambda: len(decisions) == len(sequence) + 2, WAIT_S)
        assert decisions[-1][0] is True
        assert wait_for(lambda: any(r.get('malformed') == '3' and r.get('decisions') == '7'
                                    for r in reports), WAIT_S), reports
        stats = node.stats()
    node.destroy_node()
    assert stats['received'] == 9 and stats['changes'] == 5 and stats['engaged']
    assert stats['last_reason'].startswith('engage:')
    assert any(r['state'] == 'engaged' for r in reports)


def test_sad_patient_is_comforted_not_left_with_defaults(ros_context: Context,
                                                         make_node: object) -> None:
    node = DialoguePolicyNode(context=ros_context)
    probe = make_node('policy_probe')
    publisher = probe.create_publisher(Classification, EMOTION, qos_for(EMOTION).to_rclpy())
    decisions: list[bool] = []
    probe.create_subscription(Bool, ENGAGE, lambda m: decisions.append(m.data),
                              qos_for(ENGAGE).to_rclpy())
    with spinning(ros_context, node, probe):
        assert wait_for_subscribers(publisher)
        for _ in range(5):
            publisher.publish(one_hot('sad'))
        for _ in range(3):
            publisher.publish(one_hot('fearful'))
        assert wait_for(lambda: len(decisions) == 8, WAIT_S)
    node.destroy_node()
    assert decisions[:5] == [True] * 5
    assert decisions[-1] is False   # a frightened patient is left in peace


@pytest.mark.parametrize('parameters, named', [
    ({'enter_threshold': 0.7, 'leave_threshold': 0.6}, 'enter_threshold'),
    ({'leave_threshold': 1.5}, 'leave_threshold'),
    ({'half_life_utterances': 0.0}, 'half_life_utterances'),
    ({'leave_emotions': ['angry', ' ']}, 'leave_emotions'),
    ({'silence_timeout_s': 'long'}, 'silence_timeout_s'),
])
def test_invalid_parameters_are_refused_naming_them(ros_context: Context, parameters: dict,
                                                    named: str) -> None:
    with pytest.raises(ParameterError, match=named):
        start_node(ros_context, **parameters)
