"""`finance watch` under a service manager: SIGTERM (systemd, ``docker stop``) stops it as
Ctrl-C does, its committed batches kept, in a real process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def test_sigterm_stops_watch_in_order_and_keeps_what_it_stored(tiny_model, tmp_path):
    """Python's default on SIGTERM killed the watcher mid-loop, with no word in the log."""
    folder, db = tmp_path / "feed", tmp_path / "finance.sqlite"
    folder.mkdir()
    lines = [
        {"id": f"d{i}", "time": f"2024-01-02T10:0{i}:00Z", "text": f"orcana beats estimates {i}"}
        for i in range(5)
    ]
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TUNESMITH_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "tunesmith.cli", "finance", "watch", str(folder)]
    command += ["--model", str(tiny_model), "--db", str(db), "--batch-size", "2"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        said = []
        while not any("rows read" in line for line in said):  # the first pass is stored
            line = process.stderr.readline()
            assert line, "".join(said)
            said.append(line)
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=30)[1]
    finally:
        process.kill()
    assert process.returncode == 0, rest
    assert rest.splitlines()[-1] == "stopped by SIGTERM"
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM finance_documents").fetchone()[0] == 5
