"""ser_bag build/record/replay with live nodes: built bags of real speech through real topics.

The bag is built from RAVDESS sentences by ``ser_bag build``, replayed by the ``ser_bag replay``
command in its own process into vad_node and emotion_node (the shipped model) running here,
and /emotion and /utterance are recorded by the recorder into an .mcap that mcap-ros2-support
decodes. The emotions are compared with the offline EmotionRecognizer on the same utterances.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.context import Context
from rclpy.parameter import Parameter

from ser_ros.bag_tools import read_truth, truth_path
from ser_ros.bags import read_messages
from ser_ros.cli.bag import Recorder, main
from ser_ros.core.checkpoint import default_model_path
from ser_ros.core.inference import EmotionRecognizer
from ser_ros.ros.emotion_node import EmotionNode
from ser_ros.ros.vad_node import VadNode
from ser_ros.training.vad_cuts import emotion_node_trailing_silence

from .harness import python_command, spinning, wait_for

NS_PER_S = 1_000_000_000
SAMPLE_RATE = 16000
START_S = 1_700_000_000.0
# Four actors, four emotions; short sentences keep the test fast.
UTTERANCES = ('Actor_03/03-01-05-02-01-01-03', 'Actor_08/03-01-04-01-02-01-08',
              'Actor_13/03-01-03-02-01-02-13', 'Actor_20/03-01-06-01-02-02-20')
# The truth ends where a file's energy falls 35 dB under its loudest frame.
END_TOLERANCE_S = 0.05
NOISY_EARLY_END_S = 0.1
RESULT_TIMEOUT_S = 40.0
REPLAY_RATE = 4.0


def pick(ravdess_files: list[Path], names: tuple[str, ...]) -> list[Path]:
    return [next(f for f in ravdess_files if str(f).endswith(name + '.flac')) for name in names]


def stamp_s(message: object) -> float:
    return message.header.stamp.sec + message.header.stamp.nanosec / NS_PER_S


def start_nodes(context: Context) -> tuple[VadNode, EmotionNode]:
    vad = VadNode(context=context, parameter_overrides=[Parameter('idle_flush_s', value=0.5)])
    emotion = EmotionNode(context=context, parameter_overrides=[
        Parameter('model_path', value=str(default_model_path()))])
    return vad, emotion


def run_through_nodes(ros_context: Context, ros_process: object, bag: Path, record: Path,
                      replay_options: list[str]) -> tuple[dict, dict, bool]:
    """Replay `bag` (ser_bag replay process) into live nodes; record their output to `record`."""
    vad, emotion = start_nodes(ros_context)
    recorder = Recorder(ros_context, record, ['/emotion', '/utterance'], storage='mcap')
    try:
        with spinning(ros_context, vad, emotion, recorder.node):
            assert wait_for(lambda: emotion.stats()['state'] == 'ready', RESULT_TIMEOUT_S)
            player = ros_process([*python_command(module='ser_ros.cli.bag'), 'replay', str(bag),
                                  *replay_options], timeout=RESULT_TIMEOUT_S + 20)
            assert player.wait(RESULT_TIMEOUT_S) == 0, player.describe()
            assert 'Traceback' not in player.output()

            chunks = sum(r.topic == '/audio' for r, _ in read_messages(bag))

            def answered() -> bool:
                stats = emotion.stats()
                return (vad.counters['messages'] == chunks and not vad.segmenter.is_speaking
                        and stats['handled'] == vad.counters['utterances_published']
                        and recorder.counts['/emotion'] == stats['published'])

            assert wait_for(answered, RESULT_TIMEOUT_S), (vad.counters, emotion.stats())
            counters, stats = dict(vad.counters), emotion.stats()
            bf16 = emotion._recognizer.bf16
    finally:
        recorder.close()
        vad.destroy_node()
        emotion.destroy_node()
    return counters, stats, bf16


def read_mcap(record: Path, topic: str) -> list[object]:
    """Decode one topic of a recorded .mcap with mcap-ros2-support (no rosbags involved)."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    (mcap_file,) = record.glob('*.mcap')
    with mcap_file.open('rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        return [message for _, _, _, message in reader.iter_decoded_messages(topics=[topic])]


@pytest.mark.timeout(120)
def test_each_utterance_gives_one_emotion_equal_to_offline(
        ros_context: Context, ros_process: object, tmp_path: Path,
        ravdess_files: list[Path]) -> None:
    files = pick(ravdess_files, UTTERANCES)
    bag = tmp_path / 'speech'
    assert main(['build', str(bag), '--audio', *map(str, files), '--start-time', str(START_S),
                 '--storage', 'db3']) == 0
    truth = read_truth(bag)
    counters, stats, bf16 = run_through_nodes(ros_context, ros_process, bag, tmp_path / 'out',
                                              ['--rate', str(REPLAY_RATE)])

    # Recorded /emotion is standard rosbag2 mcap: mcap-ros2-support decodes it.
    emotions = read_mcap(tmp_path / 'out', '/emotion')
    assert len(emotions) == len(files) == counters['utterances_published'], counters
    assert stats['malformed'] == stats['dropped'] == stats['failed'] == 0
    utterances = [message for _, message in read_messages(tmp_path / 'out',
                                                           topics=['/utterance'])]
    assert len(utterances) == len(files)

    # The nodes read config/ser.yaml: the same precision and appended silence offline.
    offline = EmotionRecognizer.from_checkpoint(default_model_path(), device='cpu', bf16=bf16,
                                                trailing_silence_s=emotion_node_trailing_silence())
    errors = []
    for emotion, utterance, span in zip(emotions, utterances, truth, strict=True):
        samples = np.frombuffer(bytes(utterance.audio.data), '<i2').astype(np.float32) / 32768
        expected = offline.predict(samples, SAMPLE_RATE)
        scores = {h.class_id: h.score for h in emotion.results}
        assert list(scores) == list(offline.labels)
        assert max(scores, key=scores.get) == expected.label
        np.testing.assert_allclose([scores[k] for k in offline.labels],
                                   [expected.probabilities[k] for k in offline.labels],
                                   atol=1e-5)
        # The stamp is the end of the utterance: its start plus its length, in audio time.
        end_s = stamp_s(utterance) + len(samples) / SAMPLE_RATE
        assert stamp_s(emotion) == pytest.approx(end_s, abs=1e-6)
        errors.append(stamp_s(emotion) - span.end_s)
        assert emotion.header.frame_id == 'microphone'
    print('stamp - true end (s):', [round(e, 3) for e in errors])
    assert all(abs(e) <= END_TOLERANCE_S for e in errors), errors


@pytest.mark.timeout(120)
def test_white_noise_at_20_db_loses_nothing_and_adds_nothing(
        ros_context: Context, ros_process: object, tmp_path: Path,
        ravdess_files: list[Path]) -> None:
    files = pick(ravdess_files, UTTERANCES)
    bag = tmp_path / 'noisy'
    assert main(['build', str(bag), '--audio', *map(str, files), '--start-time', str(START_S),
                 '--noise-snr', '20', '--storage', 'mcap']) == 0
    truth = read_truth(bag)
    counters, stats, _ = run_through_nodes(ros_context, ros_process, bag, tmp_path / 'out',
                                           ['--rate', str(REPLAY_RATE)])
    utterances = [message for _, message in read_messages(tmp_path / 'out',
                                                          topics=['/utterance'])]
    emotions = read_mcap(tmp_path / 'out', '/emotion')
    assert len(emotions) == len(utterances) == counters['utterances_published'] >= len(files)
    spans = [(stamp_s(u), stamp_s(u) + len(u.audio.data) / 2 / SAMPLE_RATE) for u in utterances]

    def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    for span in truth:   # no utterance lost
        assert any(overlaps((span.start_s, span.end_s), s) for s in spans), (span, spans)
    for s in spans:      # no phantom from the noise between utterances
        assert any(overlaps((t.start_s, t.end_s), s) for t in truth), (s, truth)
    # Each sentence's last piece ends near its true end: the noise after it is not taken for
    # speech. A faded last syllable under the noise cannot be told from it, so ends may come
    # up to NOISY_EARLY_END_S early.
    errors = [max(s[1] for s in spans if overlaps((t.start_s, t.end_s), s)) - t.end_s
              for t in truth]
    print('stamp - true end in noise (s):', [round(e, 3) for e in errors])
    assert all(-NOISY_EARLY_END_S <= e <= END_TOLERANCE_S for e in errors), errors


def test_build_refuses_bad_input_clearly(tmp_path: Path, ravdess_files: list[Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['build', str(tmp_path / 'b'), '--audio', str(tmp_path / 'none.wav')]) == 2
    assert 'none.wav' in capsys.readouterr().err
    bag = tmp_path / 'b'
    assert main(['build', str(bag), '--audio', str(ravdess_files[0])]) == 0
    assert truth_path(bag).is_file()
    assert main(['build', str(bag), '--audio', str(ravdess_files[0])]) == 2
    assert 'exists' in capsys.readouterr().err
    assert main(['replay', str(tmp_path / 'missing')]) == 2
    with pytest.raises(SystemExit):
        main(['replay', str(bag), '--rate', '0'])
    with pytest.raises(SystemExit):
        main(['replay', str(bag), '--rate', '2', '--fast'])


def test_record_command_stops_after_its_duration(ros_process: object, tmp_path: Path) -> None:
    out = tmp_path / 'rec'
    process = ros_process([sys.executable, '-m', 'ser_ros.cli.bag', 'record', str(out),
                           '--topics', '/emotion', 'engage', '--duration', '1'], timeout=40)
    assert process.wait(35) == 0, process.describe()
    assert 'Traceback' not in process.output()
    assert (out / 'metadata.yaml').is_file()
    assert read_mcap(out, '/emotion') == []


def test_replay_fast_and_loop_deliver_every_message(ros_context: Context, make_node: object,
                                                    ros_process: object, tmp_path: Path,
                                                    ravdess_files: list[Path]) -> None:
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo

    from ser_ros.ros.topics import qos_for

    from .harness import message_fields

    bag = tmp_path / 'short'
    assert main(['build', str(bag), '--audio', str(ravdess_files[0]), '--gap', '0.2',
                 '--start-time', str(START_S)]) == 0
    stored = [message_fields(m) for r, m in read_messages(bag) if r.topic == '/audio']
    received: list[object] = []
    infos: list[object] = []
    listener = make_node('listener')
    listener.create_subscription(AudioDataStamped, '/audio', received.append,
                                 qos_for('audio').to_rclpy())
    listener.create_subscription(AudioInfo, '/audio_info', infos.append,
                                 qos_for('audio_info').to_rclpy())
    command = [*python_command(module='ser_ros.cli.bag'), 'replay', str(bag)]
    with spinning(ros_context, listener):
        fast = ros_process([*command, '--fast'], timeout=40)
        assert fast.wait(35) == 0, fast.describe()
        assert wait_for(lambda: len(received) == len(stored), 5.0), (len(received), len(stored))
        assert [message_fields(m) for m in received] == stored
        assert len(infos) == 1 and infos[0].sample_rate == SAMPLE_RATE

        received.clear()
        looping = ros_process([*command, '--rate', '20', '--loop'], timeout=40)
        assert wait_for(lambda: len(received) > 2 * len(stored), 30.0), looping.describe()
        assert looping.stop() == 0, looping.describe()
    assert [message_fields(m) for m in received[:len(stored)]] == stored
    assert 'Traceback' not in fast.output() + looping.output()
