"""The ROS 2 runtime is real: speech crosses a process boundary intact, inside our isolation."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import soundfile
from audio_common_msgs.msg import AudioDataStamped

from ser_ros.ros.topics import AUDIO_STREAM_QOS

from .audio_publisher import ENVIRONMENT_PREFIX, SAMPLE_RATE
from .harness import REPO_ROOT, python_command, spinning, wait_for

PUBLISHER_SCRIPT = REPO_ROOT / 'test' / 'ros' / 'audio_publisher.py'
TOPIC = 'test_audio_crossing'
# RAVDESS utterances start after ~0.5-1 s of silence; this second lies inside the speech.
SPEECH_START_S = 1.0
SPEECH_DURATION_S = 1.0
# RMS in int16 units: the silence around RAVDESS utterances stays below ~10, speech of even
# the quietest (neutral) takes is ~100-300 over a second.
SPEECH_RMS_MIN = 50.0
STAMP_NS = 1_234_567_890_123
FRAME_ID = 'test_microphone'
ARRIVAL_TIMEOUT_S = 15.0
EXTRA_MESSAGE_WAIT_S = 0.2


def expected_pcm(path: os.PathLike) -> bytes:
    start = round(SPEECH_START_S * SAMPLE_RATE)
    frames = round(SPEECH_DURATION_S * SAMPLE_RATE)
    samples, rate = soundfile.read(path, start=start, frames=frames, dtype='int16')
    assert rate == SAMPLE_RATE and len(samples) == frames
    return samples.tobytes()


def test_speech_crosses_processes_byte_identical(ravdess_files, ros_context, make_node,
                                                 ros_process):
    speech_file = ravdess_files[0]
    expected = expected_pcm(speech_file)
    rms = float(np.sqrt(np.mean(np.frombuffer(expected, dtype=np.int16).astype(np.float64) ** 2)))
    assert rms > SPEECH_RMS_MIN, f'{speech_file} holds no speech in the chosen second'

    received: list[AudioDataStamped] = []
    arrived = threading.Event()

    def on_audio(message: AudioDataStamped) -> None:
        received.append(message)
        arrived.set()

    node = make_node('test_audio_listener')
    node.create_subscription(AudioDataStamped, TOPIC, on_audio,
                                            AUDIO_STREAM_QOS.to_rclpy())
    with spinning(ros_context, node):
        publisher = ros_process(python_command(PUBLISHER_SCRIPT), parameters={
            'audio_file': str(speech_file), 'start_s': SPEECH_START_S,
            'duration_s': SPEECH_DURATION_S, 'topic': TOPIC, 'frame_id': FRAME_ID,
            'stamp_ns': STAMP_NS})
        assert arrived.wait(ARRIVAL_TIMEOUT_S), 'no audio message arrived'
        # Anything extra would arrive right behind the first message.
        wait_for(lambda: len(received) > 1, timeout=EXTRA_MESSAGE_WAIT_S)
        assert publisher.stop() == 0, 'the publisher did not shut down cleanly on SIGINT'

    assert len(received) == 1
    message = received[0]
    assert bytes(message.audio.data) == expected
    assert message.header.frame_id == FRAME_ID
    assert message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec == STAMP_NS


def test_child_process_runs_in_the_isolated_environment(ravdess_files, ros_context, make_node,
                                                        ros_process):
    # A listener lets the child run its normal course; the point is what the child reports.
    arrived = threading.Event()
    node = make_node('test_environment_listener')
    node.create_subscription(AudioDataStamped, TOPIC, lambda message: arrived.set(),
                             AUDIO_STREAM_QOS.to_rclpy())
    with spinning(ros_context, node):
        child = ros_process(python_command(PUBLISHER_SCRIPT), parameters={
            'audio_file': str(ravdess_files[0]), 'topic': TOPIC})
        assert arrived.wait(ARRIVAL_TIMEOUT_S), 'no audio message arrived'
        assert child.stop() == 0

    lines = [line for line in child.output().splitlines() if line.startswith(ENVIRONMENT_PREFIX)]
    assert len(lines) == 1, 'the child printed no environment report'
    report = json.loads(lines[0][len(ENVIRONMENT_PREFIX):])
    assert report['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert report['ROS_LOCALHOST_ONLY'] is None
    assert report['ROS_STATIC_PEERS'] is None
    assert report['ROS_DOMAIN_ID'] == os.environ['ROS_DOMAIN_ID']
    assert report['context_domain_id'] == int(os.environ['ROS_DOMAIN_ID'])
    assert report['context_domain_id'] == ros_context.get_domain_id()
    assert report['ROS_LOG_DIR'] == os.environ['ROS_LOG_DIR']
    # rcl names its log file <executable>_<pid>_<time>.log: the child's must be in our folder.
    assert list(Path(os.environ['ROS_LOG_DIR']).glob(f'*_{child.pid}_*.log'))
