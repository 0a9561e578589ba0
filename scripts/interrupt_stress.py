"""Ctrl-C the nodes at random moments and count the stops that were not clean.

Starts ``emotion_node`` or ``vad_node`` (the venv's console scripts, as ``ros2 launch`` starts
them) again and again and sends SIGINT either while it starts (0.1-4 s after launch: imports,
model load) or just after it says it listens (0-0.5 s). A clean stop exits with status 0 and
prints no traceback; anything else is listed with its output. Rare teardown crashes need many
tries: the test suite's single Ctrl-C per node cannot show them.

    .venv/bin/python scripts/interrupt_stress.py [--tries 150] [--seed 2]

Isolated like the tests: LOCALHOST discovery, its own domain id, a temporary log folder.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
NODES = {'emotion_node': ['--ros-args', '-p', 'warm_up:=false'], 'vad_node': []}
READY_TEXT = b'listening'
STARTUP_WINDOW_S = (0.1, 4.0)
AFTER_READY_WINDOW_S = (0.0, 0.5)
READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 10.0
POLL_S = 0.01


def environment() -> dict[str, str]:
    """Ours, isolated: no DDS packet leaves the machine, logs go to a temporary folder."""
    return {**os.environ, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
            'ROS_DOMAIN_ID': str(1 + os.getpid() % 100), 'ROS_LOG_DIR': tempfile.mkdtemp(),
            'PYTHONFAULTHANDLER': '1', 'PYTHONUNBUFFERED': '1'}


def as_from_a_terminal() -> None:
    """Child setup: SIGINT handled by default even if this script was started with it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def try_once(node: str, during_startup: bool, rng: random.Random,
             env: dict[str, str]) -> tuple[float, int | None, str]:
    """Start ``node``, interrupt it; return (seconds after launch, exit status, output)."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([str(BIN / node), *NODES[node]], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, preexec_fn=as_from_a_terminal)
        launched = time.monotonic()
        if during_startup:
            time.sleep(rng.uniform(*STARTUP_WINDOW_S))
        else:
            while time.monotonic() - launched < READY_TIMEOUT_S:
                log.seek(0)
                if READY_TEXT in log.read():
                    break
                time.sleep(POLL_S)
            time.sleep(rng.uniform(*AFTER_READY_WINDOW_S))
        delay = time.monotonic() - launched
        os.killpg(process.pid, signal.SIGINT)
        try:
            status: int | None = process.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = None
        log.seek(0)
        return delay, status, log.read().decode('utf-8', errors='replace')


def main() -> int:
    """Run the tries; exit status 1 if any stop was not clean."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tries', type=int, default=150)
    parser.add_argument('--seed', type=int, default=2)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = environment()
    unclean = 0
    for index in range(args.tries):
        node = rng.choice(sorted(NODES))
        during_startup = rng.random() < 0.5
        delay, status, output = try_once(node, during_startup, rng, env)
        clean = status == 0 and 'Traceback' not in output and 'Fatal Python' not in output
        moment = 'starting' if during_startup else 'ready'
        print(f'{index:4d} {node:13} {moment:8} SIGINT at {delay:5.2f} s: '
              f'{"hung" if status is None else f"exit {status}"}{"" if clean else "  NOT CLEAN"}',
              flush=True)
        if not clean:
            unclean += 1
            print(output, flush=True)
    print(f'{unclean} of {args.tries} stops not clean')
    return 1 if unclean else 0


if __name__ == '__main__':
    sys.exit(main())
