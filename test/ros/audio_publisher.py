"""Child process for the cross-process test: publish a stretch of a sound file as audio.

Run as `python test/ros/audio_publisher.py --ros-args -p audio_file:=... [-p ...]`. It prints
one `ENVIRONMENT {json}` line with the ROS settings it runs under, waits for a subscriber,
publishes once and then spins until it is interrupted (SIGINT, as launch stops nodes), exiting
0. It exits 1 when no subscriber appears in time.
"""

from __future__ import annotations

import json
import os
import sys

import rclpy
import soundfile
from audio_common_msgs.msg import AudioDataStamped
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from ser_ros.ros.topics import AUDIO, AUDIO_STREAM_QOS

NODE_NAME = 'test_audio_publisher'
SAMPLE_RATE = 16000
NS_PER_S = 1_000_000_000
REPORTED_VARIABLES = ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_DOMAIN_ID', 'ROS_LOG_DIR',
                      'ROS_LOCALHOST_ONLY', 'ROS_STATIC_PEERS')
ENVIRONMENT_PREFIX = 'ENVIRONMENT '
POLL_S = 0.01


def read_pcm(path: str, start_s: float, duration_s: float) -> bytes:
    """Read `duration_s` seconds of 16 kHz mono int16 from `path`, starting at `start_s`."""
    info = soundfile.info(path)
    if info.samplerate != SAMPLE_RATE or info.channels != 1:
        raise ValueError(f'{path}: need {SAMPLE_RATE} Hz mono, got {info.samplerate} Hz '
                         f'with {info.channels} channels')
    frames = round(duration_s * SAMPLE_RATE)
    samples, _ = soundfile.read(path, start=round(start_s * SAMPLE_RATE), frames=frames,
                                dtype='int16')
    if len(samples) != frames:
        raise ValueError(f'{path}: only {len(samples)} of {frames} samples after {start_s} s')
    return samples.tobytes()


def main() -> int:
    """Publish the configured audio once to a subscriber; return the exit status."""
    rclpy.init(args=sys.argv)
    node = Node(NODE_NAME)
    try:
        audio_file = node.declare_parameter('audio_file', '').value
        start_s = node.declare_parameter('start_s', 0.0).value
        duration_s = node.declare_parameter('duration_s', 1.0).value
        topic = node.declare_parameter('topic', AUDIO).value
        frame_id = node.declare_parameter('frame_id', 'microphone').value
        stamp_ns = node.declare_parameter('stamp_ns', 0).value
        discovery_timeout_s = node.declare_parameter('discovery_timeout_s', 10.0).value

        report = {name: os.environ.get(name) for name in REPORTED_VARIABLES}
        report['context_domain_id'] = node.context.get_domain_id()
        print(ENVIRONMENT_PREFIX + json.dumps(report), flush=True)

        message = AudioDataStamped()
        message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, NS_PER_S)
        message.header.frame_id = frame_id
        message.audio.data = read_pcm(audio_file, start_s, duration_s)

        publisher = node.create_publisher(AudioDataStamped, topic, AUDIO_STREAM_QOS.to_rclpy())
        deadline = node.get_clock().now() + Duration(seconds=discovery_timeout_s)
        while publisher.get_subscription_count() == 0:
            if node.get_clock().now() > deadline:
                print(f'no subscriber on {topic} after {discovery_timeout_s} s', flush=True)
                return 1
            rclpy.spin_once(node, timeout_sec=POLL_S)
        publisher.publish(message)
        print(f'published {len(message.audio.data)} bytes on {publisher.topic_name}', flush=True)
        # Waiting for acknowledgements would take up to Fast DDS's 3 s heartbeat period; the
        # test stops this process once the message has arrived.
        rclpy.spin(node)
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
