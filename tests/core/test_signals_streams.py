"""A stop (SIGTERM from ``docker stop``, Ctrl-C) during inference streams ends the command at
once: the batches already running in the streams are not waited for (their results are thrown
away), the process ends without crashing in them, and cleanup still runs. ``docker stop`` kills
a process 10 s after its SIGTERM; one batch of a real model can take longer than that on a busy
machine, and interpreter finalization after it took 6-13 s more at load 10.

The subprocess test runs the real ``tunesmith`` entry point with one extra command whose
batches are long loops of small torch products (as a model's forward is), inside an atomic
write and a run lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from tunesmith.streams import run_streams

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: ``tunesmith crunch TARGET``: TARGET written (committed), then TARGET.next being written and
#: locked while two streams each run one minute-long batch of torch products.
CRUNCHING = r"""
import sys, threading, time

import torch

import tunesmith.cli as cli
from tunesmith.io import atomic_open
from tunesmith.locks import run_lock
from tunesmith.streams import run_streams

build = cli.build_app


def build_app():
    app = build()

    @app.command("crunch")
    def crunch(target: str) -> None:
        with atomic_open(target) as handle:
            handle.write("committed")
        started = threading.Barrier(2, action=lambda: print("running", file=sys.stderr))

        def work(_batch):
            started.wait()
            a = torch.ones(256, 256)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                a @ a

        with run_lock(target + ".next"), atomic_open(target + ".next") as handle:
            handle.write("half")
            run_streams(work, [0, 1], 2)

    return app


cli.build_app = build_app
sys.argv[0] = "tunesmith"
cli.main()
"""


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGTERM, 143, "Error: stopped by SIGTERM"),
        (signal.SIGINT, 130, "Error: interrupted (Ctrl-C)"),
    ],
)
def test_a_stop_during_streams_exits_at_once_without_waiting_for_running_batches(
    tmp_path, signum, code, line
):
    """Before: the stop waited for both minute-long batches (a docker SIGKILL at 10 s), and
    streams left running at exit made torch abort (exit 134, "terminate called")."""
    target = tmp_path / "out.txt"
    process = subprocess.Popen(
        [sys.executable, "-c", CRUNCHING, "crunch", str(target)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first = process.stderr.readline()
        assert first.strip() == "running", first + process.stderr.read()
        time.sleep(0.2)  # both streams inside torch products
        process.send_signal(signum)
        start = time.monotonic()
        rest = process.communicate(timeout=15)[1]
        seconds = time.monotonic() - start
    finally:
        process.kill()
    assert (process.returncode, rest.splitlines()) == (code, [line])
    assert seconds < 5
    # What was committed stays; the half-written file and the lock are gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    assert target.read_text() == "committed"


def test_an_interrupted_caller_returns_at_once_and_no_batch_starts_after():
    """In-process (a notebook's Ctrl-C): the interruption is raised without waiting for the
    batch still running, the queued ones never start, and torch's thread count is restored."""
    before = torch.get_num_threads()
    started, release = [], threading.Event()

    def work(batch):
        started.append(batch)
        if batch == 1:
            release.wait(10)  # a slow batch
        else:
            time.sleep(0.05)

    def done(_batch):
        raise KeyboardInterrupt  # Ctrl-C as the first batch is reported

    begin = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_streams(work, list(range(8)), 2, done=done)
    seconds, begun = time.monotonic() - begin, len(started)
    release.set()
    time.sleep(0.3)  # the slow batch ends: its stream takes nothing more
    assert seconds < 2
    assert len(started) == begun < 8
    assert torch.get_num_threads() == before


#: A script of the Python API (no CLI): run_streams interrupted by Ctrl-C while both streams
#: are inside torch, then the interpreter exits.
API_SCRIPT = r"""
import os, signal, sys, threading, time

import torch

from tunesmith.streams import run_streams

started = threading.Barrier(3)


def work(_batch):
    started.wait()
    a = torch.ones(128, 128)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        a @ a


def interrupt():
    started.wait()
    time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGINT)


threading.Thread(target=interrupt, daemon=True).start()
try:
    run_streams(work, [0, 1, 2, 3], 2)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_a_python_script_interrupted_in_streams_exits_without_torch_aborting():
    """Streams left in a batch by an interruption were daemon threads the interpreter ended
    inside torch at exit: abort(), exit -6, "terminate called without an active exception"."""
    result = subprocess.run(
        [sys.executable, "-c", API_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (0, "interrupted\n"), result.stderr
    assert "terminate called" not in result.stderr


#: ``tunesmith swallow MODE TARGET``: a command whose stop signal is swallowed as it arrives,
#: then goes on for a while (up to 20 s) as if never signalled, inside an atomic write.
#: del: in a ``__del__`` (Python prints "Exception ignored in" and goes on); except: by a
#: library's ``except BaseException`` in a model batch that retries.
SWALLOWING = r"""
import os, signal, sys, time

import tunesmith.cli as cli
from tunesmith.io import atomic_open
from tunesmith.streams import run_streams

build = cli.build_app


def stop_now():
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):  # the handler runs here, between two instructions
        pass


class Dies:
    def __del__(self):
        stop_now()


def build_app():
    app = build()

    @app.command("swallow")
    def swallow(mode: str, target: str) -> None:
        def work(batch):
            if batch == 0:
                try:
                    stop_now()
                except BaseException:
                    pass  # a library that retries
            time.sleep(0.1)

        with atomic_open(target) as handle:
            handle.write("half")
            if mode == "del":
                Dies()
                time.sleep(20)
            else:
                run_streams(work, list(range(200)), 1)
        print("went on", file=sys.stderr)

    return app


cli.build_app = build_app
sys.argv[0] = "tunesmith"
cli.main()
"""


@pytest.mark.parametrize("mode", ["del", "except"])
def test_a_stop_signal_that_was_swallowed_still_stops_the_command(tmp_path, mode):
    """Before: the command went on to the end as if never signalled (and wrote its file)."""
    target = tmp_path / "out.txt"
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", SWALLOWING, "swallow", mode, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.monotonic() - start
    assert (result.returncode, result.stderr.splitlines()) == (
        143,
        ["Error: stopped by SIGTERM"],
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert seconds < 15


def test_stream_threads_leave_stop_signals_to_the_caller():
    """A stop the kernel handed to a stream (or a torch thread it started) did not wake the
    caller waiting for the batches: the stop came only after all of them."""
    masks = []

    def work(_batch):
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))

    run_streams(work, list(range(4)), 2)
    assert masks and all({signal.SIGINT, signal.SIGTERM, signal.SIGHUP} <= m for m in masks)
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


#: ``tunesmith slow-exit``: stopped while an exit handler (``atexit``) takes a minute.
SLOW_EXIT = r"""
import atexit, sys, time

import tunesmith.cli as cli

build = cli.build_app


def build_app():
    app = build()

    @app.command("slow-exit")
    def slow_exit() -> None:
        def slow():
            print("exit handler", file=sys.stderr, flush=True)
            time.sleep(60)

        atexit.register(slow)
        print("running", file=sys.stderr, flush=True)
        time.sleep(60)

    return app


cli.build_app = build_app
sys.argv[0] = "tunesmith"
cli.main()
"""


def test_a_second_stop_during_the_exit_handlers_ends_at_once_with_its_code():
    """Before: the CLI's handlers were gone by then; a second SIGTERM killed the process
    silently (exit -15) and a second Ctrl-C raised into the exit handlers."""
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_EXIT, "slow-exit"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr.readline().strip() == "running"
        process.send_signal(signal.SIGTERM)
        assert process.stderr.readline().strip() == "Error: stopped by SIGTERM"
        assert process.stderr.readline().strip() == "exit handler"
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=15)[1]
    finally:
        process.kill()
    assert process.returncode == 143
    assert rest.splitlines() == ["Error: stopped at once by a second SIGTERM (cleanup skipped)"]
