"""A service manager's stop (SIGTERM from systemd or ``docker stop``, SIGHUP from a closed
terminal) ends a command as Ctrl-C does: cleanup runs, one line says so, exit 128 + the signal.

Each test runs the real ``tunesmith`` command line in a subprocess, with one extra command that
holds what real commands hold mid-work (an atomic file being written, a run lock), and signals
it once it says it is holding them. No model is loaded: each test takes well under a second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: The root app with a ``hold`` command: an atomic write and a run lock held until a signal,
#: then (with ``--slow-cleanup``) a cleanup that takes a minute unless cut short.
HOLDING = r"""
import sys, time
from pathlib import Path

import typer

from tunesmith.cli import build_app
from tunesmith.io import atomic_open
from tunesmith.locks import run_lock

app = build_app()


@app.command("hold")
def hold(target: Path, slow_cleanup: bool = typer.Option(False, "--slow-cleanup")) -> None:
    try:
        with run_lock(target), atomic_open(target) as handle:
            handle.write("half")
            print("holding", file=sys.stderr, flush=True)
            time.sleep(60)
    finally:
        if slow_cleanup:
            print("cleaning up", file=sys.stderr, flush=True)
            time.sleep(60)


sys.argv[0] = "tunesmith"
app()
"""


def _start(tmp_path: Path, *args: str, preexec=None) -> tuple[subprocess.Popen, Path]:
    target = tmp_path / "out.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDING, "hold", str(target), *args],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=preexec,
    )
    _wait_for(process, "holding")
    return process, target


def _wait_for(process: subprocess.Popen, word: str) -> None:
    line = process.stderr.readline()
    assert line.strip() == word, line + process.stderr.read()


def _finish(process: subprocess.Popen) -> tuple[int, list[str], float]:
    """Exit code, stderr lines and seconds until the process ended."""
    start = time.monotonic()
    try:
        rest = process.communicate(timeout=30)[1]
    finally:
        process.kill()
    return process.returncode, rest.splitlines(), time.monotonic() - start


def _left_behind(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_cleans_up_says_one_line_and_exits_128_plus_its_number(
    tmp_path, signum, code
):
    """Python's default died at once: exit -15 (-1), no word in the log, and the half-written
    temporary file and the lock file left beside the target."""
    process, _target = _start(tmp_path)
    process.send_signal(signum)
    returncode, lines, seconds = _finish(process)
    name = signal.Signals(signum).name
    assert (returncode, lines) == (code, [f"Error: stopped by {name}"])
    assert _left_behind(tmp_path) == []  # no temp file, no lock file, no half-written target
    assert seconds < 5


def test_ctrl_c_still_says_interrupted_and_exits_130(tmp_path):
    process, _target = _start(tmp_path)
    process.send_signal(signal.SIGINT)
    returncode, lines, _seconds = _finish(process)
    assert (returncode, lines) == (130, ["Error: interrupted (Ctrl-C)"])
    assert _left_behind(tmp_path) == []


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (signal.SIGTERM, signal.SIGTERM),
        (signal.SIGTERM, signal.SIGINT),
        (signal.SIGINT, signal.SIGTERM),
    ],
)
def test_a_second_stop_signal_during_cleanup_stops_at_once(tmp_path, first, second):
    """``docker stop`` or a second Ctrl-C must be able to cut a slow cleanup short."""
    process, _target = _start(tmp_path, "--slow-cleanup")
    process.send_signal(first)
    _wait_for(process, "cleaning up")  # the first signal's cleanup runs
    process.send_signal(second)
    returncode, lines, seconds = _finish(process)
    name = signal.Signals(second).name
    assert returncode == 128 + second
    assert lines == [f"Error: stopped at once by a second {name} (cleanup skipped)"]
    assert seconds < 5


def test_a_hangup_ignored_by_nohup_stays_ignored(tmp_path):
    """Started under ``nohup`` (SIGHUP ignored), a closed terminal must not stop the command."""
    process, _target = _start(
        tmp_path, preexec=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)
    )
    process.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    returncode, lines, _seconds = _finish(process)
    assert (returncode, lines) == (143, ["Error: stopped by SIGTERM"])


def test_the_handlers_are_put_back_after_an_in_process_run(cli):
    """Tests and embedding programs call the app in-process: the stop handlers are the CLI's
    only while a command runs."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert cli("plugins", "--json").exit_code == 0
    assert {s: signal.getsignal(s) for s in before} == before
