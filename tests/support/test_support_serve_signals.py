"""`support serve` stopped by a service manager or a closed terminal, in a real process: the
server stops in order, says which signal stopped it, and exits 0."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_the_server_in_order_and_names_the_signal(built_kb, tmp_path, signum):
    """uvicorn handles SIGTERM but not SIGHUP: raised inside its event loop, a closed
    terminal's SIGHUP stopped the server with a CancelledError traceback (before that, Python's
    default killed it with the database open)."""
    kb = tmp_path / "kb"
    shutil.copytree(built_kb, kb)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TUNESMITH_HOME": str(tmp_path / "home")}
    env.pop("TUNESMITH_SUPPORT_TOKEN", None)
    command = [sys.executable, "-m", "tunesmith.cli", "support", "serve", "--kb", str(kb)]
    process = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        process.send_signal(signum)
        said = process.communicate(timeout=30)[1]
    finally:
        process.kill()
    assert process.returncode == 0, said
    assert "Traceback" not in said
    assert said.splitlines()[-1] == f"stopped by {signal.Signals(signum).name}"
