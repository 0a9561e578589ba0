"""Write and read rosbag2 files of microphone audio without a ROS installation.

Built on the pure-Python `rosbags` package so that recorded test audio, regression bags and
the `ser_bag` tool work on any machine; the bags play back with `ros2 bag play` on the robot.
The audio_common_msgs and vision_msgs types are registered from their `.msg` definitions
(the installed package share folder, or `interfaces/` in a source checkout).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from ser_ros.ros.topics import AUDIO, AUDIO_INFO, QosSpec, qos_for

AUDIO_INFO_TYPE = 'audio_common_msgs/msg/AudioInfo'
AUDIO_DATA_TYPE = 'audio_common_msgs/msg/AudioData'
AUDIO_DATA_STAMPED_TYPE = 'audio_common_msgs/msg/AudioDataStamped'
CLASSIFICATION_TYPE = 'vision_msgs/msg/Classification'
OBJECT_HYPOTHESIS_TYPE = 'vision_msgs/msg/ObjectHypothesis'
HEADER_TYPE = 'std_msgs/msg/Header'
TIME_TYPE = 'builtin_interfaces/msg/Time'

INTERFACE_PACKAGES = ('audio_common_msgs', 'vision_msgs')
# Jazzy is the LTS the development environment runs; std_msgs and friends are identical in
# every distribution since Humble.
DEFAULT_STORE = Stores.ROS2_JAZZY
# Metadata version 9 is what rosbag2 on Jazzy writes and reads.
BAG_VERSION = 9
STORAGES: dict[str, StoragePlugin] = {'sqlite3': StoragePlugin.SQLITE3,
                                      'mcap': StoragePlugin.MCAP}

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
BITS_PER_BYTE = 8
# Bytes per sample of each PCM sample format we write (GStreamer/audio_common names).
SAMPLE_FORMAT_BYTES = {'S16LE': 2}
DEFAULT_CHUNK_MS = 20
DEFAULT_FRAME_ID = 'microphone'
# Stored as fully qualified names, as `ros2 bag record` does in the root namespace.
DEFAULT_AUDIO_TOPIC = f'/{AUDIO}'
DEFAULT_INFO_TOPIC = f'/{AUDIO_INFO}'

_SOURCE_INTERFACES = Path(__file__).resolve().parents[1] / 'interfaces'
_UNSET_TIME = QosTime(sec=0, nsec=0)


def interface_msg_dir(package: str) -> Path:
    """Folder holding `package`'s `.msg` files: installed share folders first, then the source tree.

    Raises FileNotFoundError naming every place that was searched.
    """
    prefixes = [Path(p) for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    prefixes.append(Path(sys.prefix))
    candidates = [prefix / 'share' / package / 'msg' for prefix in prefixes]
    candidates.append(_SOURCE_INTERFACES / package / 'msg')
    for folder in candidates:
        if any(folder.glob('*.msg')):
            return folder
    searched = ', '.join(str(c) for c in candidates)
    raise FileNotFoundError(f'no .msg files for {package!r} found; searched: {searched}')


def make_typestore(packages: Sequence[str] = INTERFACE_PACKAGES,
                   store: Stores = DEFAULT_STORE) -> Typestore:
    """Type store with the standard ROS 2 types plus our interface packages registered."""
    typestore = get_typestore(store)
    definitions = {}
    for package in packages:
        for msg_file in sorted(interface_msg_dir(package).glob('*.msg')):
            name = f'{package}/msg/{msg_file.stem}'
            definitions.update(get_types_from_msg(msg_file.read_text(encoding='utf-8'), name))
    # One call for all files so that references between them (e.g. ObjectHypothesis) resolve.
    typestore.register(definitions)
    return typestore


def to_rosbags_qos(spec: QosSpec) -> Qos:
    """Translate one of our QoS profiles into the form rosbag2 metadata records."""
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=spec.depth,
        reliability=QosReliability.RELIABLE if spec.reliable else QosReliability.BEST_EFFORT,
        durability=QosDurability.TRANSIENT_LOCAL if spec.transient_local
        else QosDurability.VOLATILE,
        deadline=_UNSET_TIME,
        lifespan=_UNSET_TIME,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_UNSET_TIME,
        avoid_ros_namespace_conventions=False,
    )


@dataclass(frozen=True)
class AudioFormat:
    """Raw PCM stream format, as announced on the audio_info topic."""

    sample_rate: int = 16000
    channels: int = 1
    sample_format: str = 'S16LE'
    coding_format: str = 'WAVE'

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f'sample_rate must be positive, got {self.sample_rate}')
        if self.channels <= 0:
            raise ValueError(f'channels must be positive, got {self.channels}')
        if self.sample_format not in SAMPLE_FORMAT_BYTES:
            raise ValueError(f'unsupported sample_format {self.sample_format!r}; '
                             f'supported: {sorted(SAMPLE_FORMAT_BYTES)}')

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample frame (one sample per channel)."""
        return SAMPLE_FORMAT_BYTES[self.sample_format] * self.channels

    @property
    def bitrate(self) -> int:
        """Bits per second of the uncompressed stream."""
        return self.sample_rate * self.frame_bytes * BITS_PER_BYTE


def stamp_message(typestore: Typestore, stamp_ns: int) -> object:
    """builtin_interfaces/Time for a time in nanoseconds."""
    sec, nanosec = divmod(stamp_ns, NS_PER_S)
    return typestore.types[TIME_TYPE](sec=sec, nanosec=nanosec)


def audio_info_message(typestore: Typestore, audio_format: AudioFormat) -> object:
    """audio_common_msgs/AudioInfo describing `audio_format`."""
    return typestore.types[AUDIO_INFO_TYPE](
        channels=audio_format.channels,
        sample_rate=audio_format.sample_rate,
        sample_format=audio_format.sample_format,
        bitrate=audio_format.bitrate,
        coding_format=audio_format.coding_format,
    )


def audio_chunk_message(typestore: Typestore, data: bytes, stamp_ns: int,
                        frame_id: str = DEFAULT_FRAME_ID) -> object:
    """audio_common_msgs/AudioDataStamped carrying `data` captured at `stamp_ns`."""
    header = typestore.types[HEADER_TYPE](stamp=stamp_message(typestore, stamp_ns),
                                          frame_id=frame_id)
    audio = typestore.types[AUDIO_DATA_TYPE](data=np.frombuffer(data, dtype=np.uint8))
    return typestore.types[AUDIO_DATA_STAMPED_TYPE](header=header, audio=audio)


def chunk_pcm(pcm: bytes, audio_format: AudioFormat, chunk_ms: int) -> list[bytes]:
    """Split interleaved PCM into chunks of `chunk_ms` (the last one may be shorter)."""
    if chunk_ms <= 0:
        raise ValueError(f'chunk_ms must be positive, got {chunk_ms}')
    if not pcm:
        raise ValueError('pcm is empty: nothing to write')
    if len(pcm) % audio_format.frame_bytes:
        raise ValueError(f'pcm length {len(pcm)} is not a whole number of '
                         f'{audio_format.frame_bytes}-byte sample frames')
    samples_per_chunk = audio_format.sample_rate * chunk_ms // 1000
    if samples_per_chunk == 0:
        raise ValueError(f'chunk_ms={chunk_ms} holds no whole sample at '
                         f'{audio_format.sample_rate} Hz')
    step = samples_per_chunk * audio_format.frame_bytes
    return [pcm[start:start + step] for start in range(0, len(pcm), step)]


class BagWriter:
    """Context manager that writes messages to a new rosbag2 bag, one connection per topic."""

    def __init__(self, path: str | Path, storage: str = 'sqlite3',
                 typestore: Typestore | None = None) -> None:
        if storage not in STORAGES:
            raise ValueError(f'unknown storage {storage!r}; choose one of {sorted(STORAGES)}')
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f'bag {self.path} exists already; choose a new path')
        self.typestore = typestore if typestore is not None else make_typestore()
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        self._connections: dict[str, object] = {}
        self.count = 0

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._writer.close()

    def write(self, topic: str, msgtype: str, message: object, timestamp_ns: int,
              qos: QosSpec | None = None) -> None:
        """Serialise `message` and append it to `topic` at `timestamp_ns` (receive time).

        `qos` is recorded as the topic's offered profile the first time the topic is seen
        (default: the profile `ser_ros.ros.topics` gives the topic, if it is one of ours).
        """
        connection = self._connections.get(topic)
        if connection is None:
            if qos is None:
                try:
                    qos = qos_for(topic)
                except ValueError:
                    qos = None
            offered = [to_rosbags_qos(qos)] if qos is not None else []
            connection = self._writer.add_connection(topic, msgtype, typestore=self.typestore,
                                                     offered_qos_profiles=offered)
            self._connections[topic] = connection
        elif connection.msgtype != msgtype:
            raise ValueError(f'topic {topic!r} holds {connection.msgtype}, not {msgtype}')
        data = self.typestore.serialize_cdr(message, msgtype)
        self._writer.write(connection, timestamp_ns, bytes(data))
        self.count += 1


def write_audio_bag(path: str | Path, pcm: bytes, audio_format: AudioFormat = AudioFormat(), *,
                    storage: str = 'sqlite3', chunk_ms: int = DEFAULT_CHUNK_MS,
                    start_ns: int = 0, frame_id: str = DEFAULT_FRAME_ID,
                    audio_topic: str = DEFAULT_AUDIO_TOPIC,
                    info_topic: str = DEFAULT_INFO_TOPIC,
                    typestore: Typestore | None = None) -> int:
    """Record `pcm` as a microphone would publish it: one AudioInfo, then stamped chunks.

    Chunk i is stamped (header and bag time) `start_ns + i * chunk_ms`. Returns the number
    of messages written.
    """
    chunks = chunk_pcm(pcm, audio_format, chunk_ms)
    with BagWriter(path, storage=storage, typestore=typestore) as bag:
        bag.write(info_topic, AUDIO_INFO_TYPE, audio_info_message(bag.typestore, audio_format),
                  start_ns)
        for index, chunk in enumerate(chunks):
            stamp_ns = start_ns + index * chunk_ms * NS_PER_MS
            bag.write(audio_topic, AUDIO_DATA_STAMPED_TYPE,
                      audio_chunk_message(bag.typestore, chunk, stamp_ns, frame_id), stamp_ns)
        return bag.count


@dataclass(frozen=True)
class BagRecord:
    """One serialised message from a bag."""

    topic: str
    msgtype: str
    timestamp_ns: int
    data: bytes


def read_records(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[BagRecord]:
    """Yield the serialised messages of a bag (folder, .db3 or .mcap) in time order.

    `topics` limits the output to those topic names (as stored in the bag).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'bag {path} does not exist')
    wanted = set(topics) if topics is not None else None
    with Reader(path) as reader:
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if not connections:
            return
        for connection, timestamp_ns, data in reader.messages(connections=connections):
            yield BagRecord(connection.topic, connection.msgtype, timestamp_ns, bytes(data))


def read_messages(path: str | Path, topics: Iterable[str] | None = None,
                  typestore: Typestore | None = None) -> Iterator[tuple[BagRecord, object]]:
    """Yield the records of a bag in time order, each with its decoded message."""
    typestore = typestore if typestore is not None else make_typestore()
    for record in read_records(path, topics):
        yield record, typestore.deserialize_cdr(record.data, record.msgtype)
