"""``ser_bag``: build, record and replay rosbag2 bags (``.db3``/``.mcap``) without ``ros2 bag``.

    ser_bag build OUT --audio a.flac b.flac [--gap 1.5] [--noise-snr 20] [--storage mcap]
    ser_bag record OUT --topics /emotion /utterance [--duration 60] [--storage mcap]
    ser_bag replay BAG [--rate 2 | --fast] [--loop]

``build`` writes a test bag (one ``audio_info``, then 20 ms AudioDataStamped chunks with real
stamps) of the audio files as utterances separated by silence, optionally under white or
babble noise at a given SNR, and ``OUT.truth.json`` with where each utterance's speech lies.
``record`` subscribes with rclpy (serialised messages, no decoding) and writes with rosbags;
it stops after ``--duration`` or on Ctrl-C and always closes the bag. ``replay`` publishes a
bag's messages with rclpy, R times real time or, with ``--fast``, as fast as the subscribers
acknowledge (bursts of at most half their queue, the player's Fast DDS writers
heartbeating every 5 ms so that acknowledgements come at once). Acknowledged means queued at
the subscriber, not processed: ROS keep-last queues give a publisher no back-pressure, so a
subscriber much slower than the bursts can still lose messages (``ser_pipeline --bag`` paces
on the VAD's own count and loses nothing at any speed). Our topics get the QoS of
``ser_ros.ros.topics`` (audio_info is transient-local, as live). Exit status: 0 done (Ctrl-C
included), 2 bad arguments or input.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ser_ros.bag_tools import (
    DEFAULT_GAP_S,
    DEFAULT_LEVEL_DB,
    DEFAULT_TRIM_DB,
    build_bag,
    truth_path,
)
from ser_ros.core.mixing import NOISE_KINDS

PROGRAM = 'ser_bag'
EXIT_OK = 0
EXIT_USAGE = 2
NS_PER_S = 1_000_000_000
STORAGE_NAMES = {'db3': 'sqlite3', 'sqlite3': 'sqlite3', 'mcap': 'mcap'}
DISCOVERY_S = 5.0
ACK_TIMEOUT_S = 5.0
SPIN_S = 0.05
# Fast DDS acknowledges on its writer heartbeat (every 3 s by default), which would make
# --fast crawl from one burst to the next; the player's writers heartbeat every 5 ms instead.
FAST_HEARTBEAT_PROFILE = '''<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <profiles>
    <data_writer profile_name="ser_bag_player" is_default_profile="true">
      <times><heartbeatPeriod><sec>0</sec><nanosec>5000000</nanosec></heartbeatPeriod></times>
    </data_writer>
  </profiles>
</dds>
'''
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')
# Types of our topics, so that record needs no publisher to learn them.
KNOWN_TYPES = {
    'audio': 'audio_common_msgs/msg/AudioDataStamped',
    'audio_info': 'audio_common_msgs/msg/AudioInfo',
    'utterance': 'audio_common_msgs/msg/AudioDataStamped',
    'emotion': 'vision_msgs/msg/Classification',
    'is_speaking': 'std_msgs/msg/Bool',
    'engage': 'std_msgs/msg/Bool',
    'robot_speaking': 'std_msgs/msg/Bool',
    'diagnostics': 'diagnostic_msgs/msg/DiagnosticArray',
}


def _fail(text: str, status: int = EXIT_USAGE) -> int:
    print(f'{PROGRAM}: {text}', file=sys.stderr, flush=True)
    return status


def message_class(msgtype: str) -> type:
    """Import the rclpy class of a type name like 'vision_msgs/msg/Classification'."""
    package, interface, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{interface}'), name)


def topic_qos(topic: str) -> Any:
    """Return the rclpy QoS of one of our topics; reliable, depth 10 for any other."""
    from ser_ros.ros.topics import RESULT_QOS, qos_for

    try:
        return qos_for(topic).to_rclpy()
    except ValueError:
        return RESULT_QOS.to_rclpy()


# -- build ---------------------------------------------------------------------------------

def build(arguments: argparse.Namespace) -> int:
    """Write the test bag and its truth file."""
    missing = [str(path) for path in arguments.audio if not Path(path).is_file()]
    if missing:
        return _fail(f'audio file(s) not found: {", ".join(missing)}')
    start_ns = (round(arguments.start_time * NS_PER_S) if arguments.start_time is not None
                else time.time_ns())
    try:
        spans = build_bag(arguments.out, arguments.audio, gap_s=arguments.gap,
                          noise_snr_db=arguments.noise_snr, noise=arguments.noise,
                          storage=STORAGE_NAMES[arguments.storage], start_ns=start_ns,
                          sample_rate=arguments.sample_rate, channels=arguments.channels,
                          trim_db=arguments.trim_db, seed=arguments.seed,
                          level_db=None if arguments.keep_levels else arguments.level_db)
    except (OSError, ValueError, RuntimeError) as error:
        return _fail(f'cannot build {arguments.out}: {error}')
    print(f'{arguments.out}: {len(spans)} utterance(s); truth in {truth_path(arguments.out)}',
          flush=True)
    return EXIT_OK


# -- record --------------------------------------------------------------------------------

class Recorder:
    """An rclpy node writing the serialised messages of some topics to a new bag."""

    def __init__(self, context: Any, out: Path, topics: Sequence[str], storage: str = 'mcap',
                 types: dict[str, str] | None = None) -> None:
        from rclpy.node import Node
        from rosbags.rosbag2 import Writer

        from ser_ros.bags import BAG_VERSION, STORAGES, make_typestore

        if storage not in STORAGES:
            raise ValueError(f'unknown storage {storage!r}; choose one of {sorted(STORAGES)}')
        self.out = Path(out)
        if self.out.exists():
            raise FileExistsError(f'bag {self.out} exists already; choose a new path')
        self.topics = [topic if topic.startswith('/') else f'/{topic}' for topic in topics]
        self._typestore = make_typestore()
        self._writer = Writer(self.out, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        self._writer.open()
        self._open = True
        self._connections: dict[str, Any] = {}
        self._types = dict(types or {})
        self.counts: dict[str, int] = {}
        self.node = Node('ser_bag_recorder', context=context)
        self._pending = [topic for topic in self.topics if not self._subscribe(topic)]
        self._discovery = self.node.create_timer(0.1, self._discover) if self._pending else None

    def _type_of(self, topic: str) -> str | None:
        if topic in self._types:
            return self._types[topic]
        for name, types in self.node.get_topic_names_and_types():
            if name == topic and types:
                return types[0]
        return KNOWN_TYPES.get(topic.lstrip('/'))

    def _subscribe(self, topic: str) -> bool:
        from ser_ros.bags import to_rosbags_qos
        from ser_ros.ros.topics import qos_for

        msgtype = self._type_of(topic)
        if msgtype is None:
            return False
        try:
            offered = [to_rosbags_qos(qos_for(topic))]
        except ValueError:
            offered = []
        connection = self._writer.add_connection(topic, msgtype, typestore=self._typestore,
                                                 offered_qos_profiles=offered)
        self.counts[topic] = 0

        def on_message(data: bytes) -> None:
            if not self._open:
                return
            # CDR bytes with their encapsulation header: exactly what rosbag2 stores.
            self._writer.write(connection, self.node.get_clock().now().nanoseconds,
                               bytes(data))
            self.counts[topic] += 1

        self.node.create_subscription(message_class(msgtype), topic, on_message,
                                      topic_qos(topic), raw=True)
        return True

    def _discover(self) -> None:
        self._pending = [topic for topic in self._pending if not self._subscribe(topic)]
        if not self._pending and self._discovery is not None:
            self._discovery.cancel()

    def close(self) -> None:
        """Close the bag (once) and destroy the node."""
        if self._open:
            self._open = False
            self.node.destroy_node()
            self._writer.close()


def record(arguments: argparse.Namespace) -> int:
    """Record the topics until --duration passes or Ctrl-C."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    if Path(arguments.out).exists():
        return _fail(f'{arguments.out} exists already; choose a new path')
    rclpy.init(args=[PROGRAM])
    recorder = None
    interrupted = False
    try:
        try:
            recorder = Recorder(None, arguments.out, arguments.topics,
                                STORAGE_NAMES[arguments.storage])
        except (OSError, ValueError, KeyError) as error:
            return _fail(f'cannot record: {error}')
        executor = SingleThreadedExecutor()
        executor.add_node(recorder.node)
        print(f'recording {" ".join(recorder.topics)} to {arguments.out}', file=sys.stderr,
              flush=True)
        deadline = (time.monotonic() + arguments.duration if arguments.duration
                    else float('inf'))
        # SIGTERM too ends the recording cleanly (the bag is closed below).
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        while rclpy.ok() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=SPIN_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        interrupted = True
    finally:
        if recorder is not None:
            recorder.close()
            counts = ', '.join(f'{t}: {n}' for t, n in recorder.counts.items()) or 'nothing'
            print(f'{arguments.out}: {counts}{" (interrupted)" if interrupted else ""}',
                  file=sys.stderr, flush=True)
        rclpy.try_shutdown()
    return EXIT_OK


# -- replay --------------------------------------------------------------------------------

class Player:
    """Publish a bag's serialised messages with rclpy, timed by their bag time stamps."""

    def __init__(self, node: Any, bag: Path, rate: float | None = 1.0,
                 topics: Sequence[str] | None = None) -> None:
        from ser_ros.bags import read_records

        if rate is not None and not rate > 0:
            raise ValueError(f'rate must be positive, got {rate}')
        self.node = node
        self.rate = rate
        self.records = list(read_records(bag, topics))
        if not self.records:
            raise ValueError(f'{bag}: no messages to play')
        self.publishers: dict[str, Any] = {}
        for record in self.records:
            if record.topic not in self.publishers:
                self.publishers[record.topic] = node.create_publisher(
                    message_class(record.msgtype), record.topic, topic_qos(record.topic))
        self.published = 0

    def wait_for_subscribers(self, timeout: float) -> list[str]:
        """Wait until every topic has a subscriber or `timeout` passes; return those without."""
        deadline = time.monotonic() + timeout
        while True:
            lonely = [t for t, p in self.publishers.items() if p.get_subscription_count() == 0]
            if not lonely or time.monotonic() >= deadline:
                return lonely
            time.sleep(0.01)

    def _burst_size(self, topic: str) -> int:
        return max(1, topic_qos(topic).depth // 2)

    def play_once(self, stop: Any = None) -> int:
        """Publish every record once; return how many. `stop()` true ends it early."""
        from rclpy.duration import Duration

        first = self.records[0].timestamp_ns
        started = time.monotonic()
        in_burst: dict[str, int] = {}
        count = 0
        for record in self.records:
            if stop is not None and stop():
                break
            publisher = self.publishers[record.topic]
            if self.rate is None:
                # As fast as acknowledged: never more than half the queue unacknowledged.
                in_burst[record.topic] = in_burst.get(record.topic, 0) + 1
                if in_burst[record.topic] > self._burst_size(record.topic):
                    publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
                    in_burst[record.topic] = 1
            else:
                delay = started + (record.timestamp_ns - first) / NS_PER_S / self.rate \
                    - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            publisher.publish(record.data)
            count += 1
        self.published += count
        return count

    def drain(self) -> bool:
        """Wait until the subscribers acknowledged everything published."""
        from rclpy.duration import Duration

        return all(p.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
                   for p in self.publishers.values())


def use_fast_heartbeat(folder: Path) -> None:
    """Point Fast DDS at a profile with a 5 ms writer heartbeat, unless one is set already."""
    if any(os.environ.get(name) for name in PROFILE_VARIABLES):
        return
    profile = folder / 'ser_bag_fastdds.xml'
    profile.write_text(FAST_HEARTBEAT_PROFILE, encoding='utf-8')
    for name in PROFILE_VARIABLES:
        os.environ[name] = str(profile)


def replay(arguments: argparse.Namespace) -> int:
    """Play the bag (looping if asked) until it ends or Ctrl-C."""
    if not Path(arguments.bag).exists():
        return _fail(f'bag {arguments.bag} does not exist')
    with tempfile.TemporaryDirectory(prefix='ser_bag_') as folder:
        if arguments.fast:
            use_fast_heartbeat(Path(folder))
        return _replay(arguments)


def _replay(arguments: argparse.Namespace) -> int:
    import rclpy
    from rclpy.node import Node

    from ser_ros.ros.node_main import stopping_quietly

    rclpy.init(args=[PROGRAM])
    node = None
    try:
        with stopping_quietly():
            node = Node('ser_bag_player')
            try:
                player = Player(node, arguments.bag,
                                None if arguments.fast else arguments.rate, arguments.topics)
            except (OSError, ValueError, KeyError) as error:
                return _fail(f'cannot replay {arguments.bag}: {error}')
            lonely = player.wait_for_subscribers(arguments.wait)
            if lonely:
                print(f'{PROGRAM}: no subscriber on {", ".join(lonely)} after '
                      f'{arguments.wait:g} s; playing anyway', file=sys.stderr, flush=True)
            speed = 'as fast as acknowledged' if arguments.fast else f'{arguments.rate:g}x'
            print(f'playing {len(player.records)} message(s) from {arguments.bag} at {speed}'
                  f'{" in a loop" if arguments.loop else ""}', file=sys.stderr, flush=True)
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            while True:
                player.play_once(lambda: not rclpy.ok())
                if not arguments.loop or not rclpy.ok():
                    break
            player.drain()
            print(f'published {player.published} message(s)', file=sys.stderr, flush=True)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return EXIT_OK


# -- command line --------------------------------------------------------------------------

def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be positive, got {text}')
    return value


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ser_bag."""
    parser = argparse.ArgumentParser(prog=PROGRAM, description='Build, record and replay '
                                     'rosbag2 bags (.db3, .mcap) for the ser_ros pipeline.')
    commands = parser.add_subparsers(dest='command', required=True)

    make = commands.add_parser('build', help='write a test bag from audio files')
    make.add_argument('out', type=Path, help='new bag folder')
    make.add_argument('--audio', type=Path, nargs='+', required=True, metavar='FILE',
                      help='audio files, one utterance each, in order')
    make.add_argument('--gap', type=float, default=DEFAULT_GAP_S,
                      help='seconds of silence before, between and after (default %(default)s)')
    make.add_argument('--noise-snr', type=float, default=None, metavar='DB',
                      help='add background noise at this SNR against the speech (dB)')
    make.add_argument('--noise', choices=NOISE_KINDS, default='white',
                      help='noise kind (default %(default)s)')
    make.add_argument('--storage', choices=('db3', 'mcap'), default='db3')
    make.add_argument('--sample-rate', type=int, default=16000,
                      help='sample rate of the bag audio (default %(default)s)')
    make.add_argument('--channels', type=int, default=1, help='channels (copies of the audio)')
    make.add_argument('--trim-db', type=float, default=DEFAULT_TRIM_DB,
                      help='trim each file to the frames within this many dB of its loudest '
                      '(0: keep whole files; default %(default)s)')
    make.add_argument('--level-db', type=float, default=DEFAULT_LEVEL_DB,
                      help='bring each utterance to this RMS level in dBFS (default '
                      '%(default)s)')
    make.add_argument('--keep-levels', action='store_true',
                      help='keep the recorded levels instead of --level-db')
    make.add_argument('--start-time', type=float, default=None, metavar='S',
                      help='stamp of the first chunk, seconds since the epoch (default: now)')
    make.add_argument('--seed', type=int, default=0, help='noise seed')

    rec = commands.add_parser('record', help='record topics with rclpy into a new bag')
    rec.add_argument('out', type=Path, help='new bag folder')
    rec.add_argument('--topics', nargs='+', required=True, help='topics to record')
    rec.add_argument('--duration', type=_positive, default=None, metavar='S',
                     help='stop after this many seconds (default: Ctrl-C)')
    rec.add_argument('--storage', choices=('db3', 'mcap'), default='mcap')

    play = commands.add_parser('replay', help='publish a bag with rclpy')
    play.add_argument('bag', type=Path, help='bag folder, .db3 or .mcap')
    speed = play.add_mutually_exclusive_group()
    speed.add_argument('--rate', type=_positive, default=1.0,
                       help='times real time (default %(default)s)')
    speed.add_argument('--fast', action='store_true',
                       help='as fast as the subscribers acknowledge')
    play.add_argument('--loop', action='store_true', help='play again until Ctrl-C')
    play.add_argument('--topics', nargs='+', default=None, help='only these topics')
    play.add_argument('--wait', type=float, default=DISCOVERY_S, metavar='S',
                      help='wait this long for subscribers before playing (default %(default)s)')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ser_bag command; return the exit status."""
    arguments = build_parser().parse_args(argv)
    if arguments.command == 'build':
        return build(arguments)
    if arguments.command == 'record':
        return record(arguments)
    return replay(arguments)


if __name__ == '__main__':
    sys.exit(main())
