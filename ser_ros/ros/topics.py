"""Topic names and QoS profiles: the one definition every node, launch file, bag and test uses.

The profiles are plain data (`QosSpec`) so that ROS-free code (the bag writer) can record
them too; `QosSpec.to_rclpy()` imports rclpy only when a node asks for a profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rclpy.qos import QoSProfile

# Names are relative so that a launch namespace (e.g. one per robot) applies to them.
AUDIO = 'audio'
AUDIO_INFO = 'audio_info'
UTTERANCE = 'utterance'
IS_SPEAKING = 'is_speaking'
EMOTION = 'emotion'
ENGAGE = 'engage'
ROBOT_SPEAKING = 'robot_speaking'
# The diagnostics aggregator listens on the absolute name, whatever the node's namespace.
DIAGNOSTICS = '/diagnostics'


@dataclass(frozen=True)
class QosSpec:
    """A keep-last QoS profile as plain data: history depth, reliability and durability."""

    depth: int
    reliable: bool = True
    transient_local: bool = False

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f'QoS depth must be at least 1, got {self.depth}')

    def to_rclpy(self) -> QoSProfile:
        """Build the equivalent rclpy profile (imports rclpy on first use)."""
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.depth,
            reliability=(ReliabilityPolicy.RELIABLE if self.reliable
                         else ReliabilityPolicy.BEST_EFFORT),
            durability=(DurabilityPolicy.TRANSIENT_LOCAL if self.transient_local
                        else DurabilityPolicy.VOLATILE),
        )


# Audio arrives as 20 ms chunks (50 per second); a gap corrupts an utterance, so the stream is
# reliable and 100 queued chunks (2 s) let a briefly busy subscriber catch up without loss.
AUDIO_STREAM_QOS = QosSpec(depth=100)
# The stream format is published once; transient-local keeps it for subscribers that start
# later (latched), and only the newest one matters.
AUDIO_INFO_QOS = QosSpec(depth=1, transient_local=True)
# Results (utterances, emotions) are rare and each one counts: reliable, a short queue.
RESULT_QOS = QosSpec(depth=10)
# State flags and diagnostics change rarely; reliable with a short queue, like results.
EVENT_QOS = QosSpec(depth=10)

TOPIC_QOS: dict[str, QosSpec] = {
    AUDIO: AUDIO_STREAM_QOS,
    AUDIO_INFO: AUDIO_INFO_QOS,
    UTTERANCE: RESULT_QOS,
    EMOTION: RESULT_QOS,
    IS_SPEAKING: EVENT_QOS,
    ENGAGE: EVENT_QOS,
    ROBOT_SPEAKING: EVENT_QOS,
    DIAGNOSTICS: EVENT_QOS,
}


def qos_for(topic: str) -> QosSpec:
    """QoS of one of our topics, by relative or absolute name ('audio' or '/audio')."""
    for name in (topic, topic.lstrip('/')):
        if name in TOPIC_QOS:
            return TOPIC_QOS[name]
    raise ValueError(f'unknown topic {topic!r}; known topics: {sorted(TOPIC_QOS)}')
