"""microphone_node: no sound card here, so it must keep running, retry and say why.

The capture path itself (blocks at the device rate -> 16 kHz mono chunks with capture-time
stamps) is tested on real speech through ``Chunker``, the part of the node PortAudio feeds.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
from audio_common_msgs.msg import AudioInfo
from diagnostic_msgs.msg import DiagnosticArray

from ser_ros.core.pcm import PcmFormat, decode_pcm
from ser_ros.ros.diagnostics import ERROR, status_values
from ser_ros.ros.microphone_node import Chunker
from ser_ros.ros.params import EXIT_BAD_PARAMETER
from ser_ros.ros.topics import AUDIO_INFO, DIAGNOSTICS, qos_for

from .harness import python_command, spinning, wait_for

RATE = 16000
T0 = 1_700_000_000.0
RETRY_LINE = re.compile(r'cannot open (.+?): .* Available input devices: (.+?)\. '
                        r'Retrying in ([\d.]+) s \(attempt (\d+)\)')
MODULE = 'ser_ros.ros.microphone_node'


@pytest.fixture(scope='module')
def speech(ravdess_files: list[Path]) -> np.ndarray:
    samples, rate = soundfile.read(ravdess_files[0], dtype='float32')
    assert rate == RATE
    return samples


def chunk_all(chunker: Chunker, blocks: np.ndarray, block_frames: int, rate: int,
              start: float = T0) -> list[tuple[bytes, float]]:
    out = []
    for offset in range(0, len(blocks), block_frames):
        out += chunker.push(blocks[offset:offset + block_frames], start + offset / rate)
    return out


@pytest.mark.parametrize(('rate', 'block'), [(16000, 320), (48000, 1024), (44100, 441)])
def test_chunker_turns_device_blocks_into_stamped_16k_chunks(speech: np.ndarray, rate: int,
                                                             block: int) -> None:
    captured = soxr.resample(speech, RATE, rate).astype(np.float32)
    # Stereo: channel 0 carries the speech, channel 1 silence; averaging halves it.
    stereo = np.stack([captured, np.zeros_like(captured)], axis=1)
    chunker = Chunker(rate, channel=None, chunk_ms=20)
    chunks = chunk_all(chunker, stereo, block, rate)
    assert all(len(pcm) == 640 for pcm, _ in chunks)
    assert [start for _, start in chunks] == pytest.approx(
        [T0 + 0.02 * index for index in range(len(chunks))], abs=1e-9)
    audio = decode_pcm(b''.join(pcm for pcm, _ in chunks), PcmFormat(RATE))[:, 0]
    # Everything but the resampler's filter delay and a partial chunk arrives, aligned.
    assert len(speech) - 3 * 320 <= len(audio) <= len(speech)
    reference = speech[:len(audio)] / 2
    correlation = np.corrcoef(audio, reference)[0, 1]
    assert correlation > 0.99
    assert chunker.resyncs == 0


def test_chunker_selects_a_channel_and_reanchors_after_lost_audio(speech: np.ndarray) -> None:
    stereo = np.stack([np.zeros_like(speech), speech], axis=1)
    chunker = Chunker(RATE, channel=1, chunk_ms=20)
    first = chunk_all(chunker, stereo[:RATE], 320, RATE)
    # One second of audio lost: the next block is stamped 1 s later than predicted.
    later = chunk_all(chunker, stereo[RATE:2 * RATE], 320, RATE, start=T0 + 2.0)
    assert chunker.resyncs == 1
    assert first[-1][1] == pytest.approx(T0 + 0.98)
    assert later[0][1] == pytest.approx(T0 + 2.0)
    audio = decode_pcm(first[10][0], PcmFormat(RATE))[:, 0]
    assert np.abs(audio - speech[3200:3520]).max() <= 1 / 32768


def test_missing_device_keeps_the_node_alive_with_backoff_and_error_diagnostics(
        ros_process, make_node, ros_context) -> None:
    node = make_node('probe')
    diagnostics: list[DiagnosticArray] = []
    infos: list[AudioInfo] = []
    lock = threading.Lock()

    def keep(into: list):
        def callback(message: object) -> None:
            with lock:
                into.append(message)
        return callback

    node.create_subscription(DiagnosticArray, DIAGNOSTICS, keep(diagnostics),
                             qos_for(DIAGNOSTICS).to_rclpy())
    node.create_subscription(AudioInfo, AUDIO_INFO, keep(infos), qos_for(AUDIO_INFO).to_rclpy())
    process = ros_process(python_command(module=MODULE), timeout=30,
                          parameters={'device': 'USB PnP Mic', 'retry_initial_s': 0.2,
                                      'retry_max_s': 0.8, 'diagnostics_period_s': 0.2})
    with spinning(ros_context, node):
        assert wait_for(lambda: len(RETRY_LINE.findall(process.output())) >= 5, 15), \
            process.describe()
        assert wait_for(lambda: any(d.status[0].level == bytes([ERROR]) for d in diagnostics),
                        5)
        # audio_info is latched: this late subscriber still gets the published format.
        assert wait_for(lambda: len(infos) >= 1, 5)
    assert process.returncode is None, process.describe()
    output = process.output()
    retries = RETRY_LINE.findall(output)
    assert all(device == "device 'USB PnP Mic'" for device, _, _, _ in retries)
    assert all(listed == 'none' for _, listed, _, _ in retries)
    delays = [float(delay) for _, _, delay, _ in retries]
    assert delays[:4] == [0.2, 0.4, 0.8, 0.8]
    assert [int(attempt) for *_, attempt in retries] == list(range(1, len(retries) + 1))
    # One line per attempt, nothing else logged as an error, no traceback.
    assert output.count('[ERROR]') == len(retries)
    assert 'Traceback' not in output
    error = next(d for d in diagnostics if d.status[0].level == bytes([ERROR]))
    values = status_values(error)
    assert 'USB PnP Mic' in error.status[0].message
    assert values['available_input_devices'] == 'none'
    assert values['state'] == 'retrying'
    assert int(values['failed_attempts']) >= 1
    info = infos[0]
    assert (info.sample_rate, info.channels, info.sample_format) == (RATE, 1, 'S16LE')
    assert process.stop() == 0
    assert 'Traceback' not in process.output()


def test_default_device_missing_is_explained(ros_process) -> None:
    process = ros_process(python_command(module=MODULE), timeout=20,
                          parameters={'retry_initial_s': 5.0})
    assert wait_for(lambda: RETRY_LINE.search(process.output()) is not None, 15), \
        process.describe()
    assert 'no default input device' in process.output()
    assert process.stop() == 0


@pytest.mark.parametrize(('parameters', 'name'), [
    ({'chunk_ms': 0}, 'chunk_ms'),
    ({'channels': 2, 'channel': 2}, 'channel'),
    ({'retry_initial_s': 5.0, 'retry_max_s': 1.0}, 'retry_max_s'),
])
def test_invalid_parameter_is_refused_naming_it(ros_process, parameters: dict,
                                                name: str) -> None:
    process = ros_process(python_command(module=MODULE), parameters=parameters, timeout=20)
    assert process.wait(15) == EXIT_BAD_PARAMETER
    output = process.output()
    assert f"'{name}'" in output and 'Traceback' not in output


def test_device_given_by_index_is_named_in_the_error(ros_process) -> None:
    process = ros_process(python_command(module=MODULE), timeout=20,
                          parameters={'device': 3, 'retry_initial_s': 5.0})
    assert wait_for(lambda: RETRY_LINE.search(process.output()) is not None, 15), \
        process.describe()
    assert RETRY_LINE.search(process.output()).group(1) == 'device 3'
    assert process.stop() == 0
