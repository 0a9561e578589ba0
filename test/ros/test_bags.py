"""rosbag2 files written without ROS read back exactly and replay into live rclpy nodes."""

from __future__ import annotations

import json
import threading

import pytest
import soundfile
from audio_common_msgs.msg import AudioDataStamped, AudioInfo

from ser_ros.bags import (
    AUDIO_DATA_STAMPED_TYPE,
    AUDIO_INFO_TYPE,
    CLASSIFICATION_TYPE,
    OBJECT_HYPOTHESIS_TYPE,
    AudioFormat,
    BagWriter,
    audio_chunk_message,
    chunk_pcm,
    interface_msg_dir,
    make_typestore,
    read_messages,
    read_records,
    write_audio_bag,
)
from ser_ros.ros.topics import AUDIO, AUDIO_INFO, qos_for

from .harness import message_fields, replay_records, spinning, wait_for

STORAGES = ('sqlite3', 'mcap')
STORAGE_SUFFIX = {'sqlite3': '.db3', 'mcap': '.mcap'}
SAMPLE_RATE = 16000
SPEECH_START_S = 1.0
SPEECH_DURATION_S = 1.0
CHUNK_MS = 20
CHUNK_BYTES = SAMPLE_RATE * CHUNK_MS // 1000 * 2
START_NS = 1_700_000_000_123_456_789
NS_PER_MS = 1_000_000
ARRIVAL_TIMEOUT_S = 10.0


@pytest.fixture(scope='module')
def speech_pcm(ravdess_files) -> bytes:
    """One second of real speech as 16 kHz mono int16 bytes."""
    samples, rate = soundfile.read(ravdess_files[0], start=round(SPEECH_START_S * SAMPLE_RATE),
                                   frames=round(SPEECH_DURATION_S * SAMPLE_RATE), dtype='int16')
    assert rate == SAMPLE_RATE
    return samples.tobytes()


@pytest.mark.parametrize('storage', STORAGES)
def test_bag_reads_back_what_was_written(tmp_path, speech_pcm, storage):
    path = tmp_path / 'speech'
    written = write_audio_bag(path, speech_pcm, AudioFormat(sample_rate=SAMPLE_RATE),
                              storage=storage, chunk_ms=CHUNK_MS, start_ns=START_NS)

    assert [p.suffix for p in path.iterdir() if p.name != 'metadata.yaml'] == \
        [STORAGE_SUFFIX[storage]]
    records = list(read_messages(path))
    assert written == len(records) == 1 + len(speech_pcm) // CHUNK_BYTES

    info_record, info = records[0]
    assert (info_record.topic, info_record.msgtype) == (f'/{AUDIO_INFO}', AUDIO_INFO_TYPE)
    assert (info.sample_rate, info.channels, info.sample_format, info.coding_format) == \
        (SAMPLE_RATE, 1, 'S16LE', 'WAVE')
    assert info.bitrate == SAMPLE_RATE * 16

    chunks = records[1:]
    assert {(r.topic, r.msgtype) for r, _ in chunks} == {(f'/{AUDIO}', AUDIO_DATA_STAMPED_TYPE)}
    assert b''.join(bytes(m.audio.data) for _, m in chunks) == speech_pcm
    assert all(len(m.audio.data) == CHUNK_BYTES for _, m in chunks)
    for index, (record, message) in enumerate(chunks):
        stamp_ns = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
        assert stamp_ns == record.timestamp_ns == START_NS + index * CHUNK_MS * NS_PER_MS
        assert message.header.frame_id == 'microphone'


@pytest.mark.parametrize('storage', STORAGES)
def test_records_come_back_in_time_order(tmp_path, storage):
    typestore = make_typestore()
    stamps = [START_NS + k * CHUNK_MS * NS_PER_MS for k in range(5)]
    with BagWriter(tmp_path / 'shuffled', storage=storage, typestore=typestore) as bag:
        for stamp_ns in (stamps[3], stamps[0], stamps[4], stamps[1], stamps[2]):
            payload = stamp_ns.to_bytes(8, 'little')
            bag.write('/audio', AUDIO_DATA_STAMPED_TYPE,
                      audio_chunk_message(typestore, payload, stamp_ns), stamp_ns)

    records = list(read_messages(tmp_path / 'shuffled', typestore=typestore))
    assert [r.timestamp_ns for r, _ in records] == stamps
    assert [int.from_bytes(bytes(m.audio.data), 'little') for _, m in records] == stamps


def test_topic_filter_and_recorded_qos(tmp_path, speech_pcm):
    path = tmp_path / 'speech'
    write_audio_bag(path, speech_pcm, storage='mcap')
    only_info = list(read_records(path, topics=[f'/{AUDIO_INFO}']))
    assert [r.topic for r in only_info] == [f'/{AUDIO_INFO}']
    assert list(read_records(path, topics=['/not_there'])) == []

    # The offered QoS lets `ros2 bag play` latch audio_info as the live topic does.
    metadata = (path / 'metadata.yaml').read_text()
    assert 'durability: transient_local' in metadata
    assert qos_for(AUDIO_INFO).transient_local and not qos_for(AUDIO).transient_local


@pytest.mark.parametrize('msgtype', [AUDIO_INFO_TYPE, AUDIO_DATA_STAMPED_TYPE,
                                     CLASSIFICATION_TYPE, OBJECT_HYPOTHESIS_TYPE])
def test_type_hashes_match_the_built_interfaces(msgtype):
    # rosidl writes each type's RIHS01 hash next to its .msg; bag players compare against it.
    package, _, name = msgtype.split('/')
    description = interface_msg_dir(package) / f'{name}.json'
    if not description.is_file():
        pytest.fail(f'{description} missing: the interface packages are not built/installed')
    hashes = json.loads(description.read_text())['type_hashes']
    built = next(h['hash_string'] for h in hashes if h['type_name'] == msgtype)
    assert make_typestore().hash_rihs01(msgtype) == built


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='whole number of 2-byte sample frames'):
        chunk_pcm(b'\x00\x01\x02', AudioFormat(), CHUNK_MS)
    with pytest.raises(ValueError, match='pcm is empty'):
        chunk_pcm(b'', AudioFormat(), CHUNK_MS)
    with pytest.raises(ValueError, match='chunk_ms must be positive'):
        chunk_pcm(b'\x00\x00', AudioFormat(), 0)
    with pytest.raises(ValueError, match='unsupported sample_format'):
        AudioFormat(sample_format='F32LE')
    with pytest.raises(ValueError, match="unknown storage 'zip'"):
        BagWriter('/nonexistent/bag', storage='zip')


@pytest.mark.parametrize('storage', STORAGES)
def test_bag_replays_into_live_subscriber(tmp_path, speech_pcm, storage, ros_context,
                                          make_node):
    path = tmp_path / 'speech'
    write_audio_bag(path, speech_pcm, storage=storage, chunk_ms=CHUNK_MS, start_ns=START_NS)
    stored = list(read_messages(path))
    expected = {topic: [message_fields(m) for r, m in stored if r.topic == topic]
                for topic in {r.topic for r, _ in stored}}

    received: dict[str, list] = {topic: [] for topic in expected}
    lock = threading.Lock()

    def keep(topic: str):
        def callback(message) -> None:
            with lock:
                received[topic].append(message)
        return callback

    listener = make_node('bag_listener')
    listener.create_subscription(AudioInfo, f'/{AUDIO_INFO}', keep(f'/{AUDIO_INFO}'),
                                 qos_for(AUDIO_INFO).to_rclpy())
    listener.create_subscription(AudioDataStamped, f'/{AUDIO}', keep(f'/{AUDIO}'),
                                 qos_for(AUDIO).to_rclpy())
    player = make_node('bag_player')
    with spinning(ros_context, listener):
        replay_records(player, [record for record, _ in stored])
        def everything() -> bool:
            with lock:
                return all(len(received[t]) >= len(expected[t]) for t in expected)

        assert wait_for(everything, ARRIVAL_TIMEOUT_S), \
            f'lost messages: got {({t: len(m) for t, m in received.items()})}'

    for topic, messages in expected.items():
        assert [message_fields(m) for m in received[topic]] == messages, topic
