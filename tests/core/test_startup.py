"""The CLI starts light: help and plugin listing import none of the heavy libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ["torch", "transformers", "captum", "faiss", "gradio", "peft", "pandas", "sklearn"]

PROBE = """
import io, json, sys, contextlib
from tunesmith.cli import build_app
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    try:
        build_app()(sys.argv[1:], standalone_mode=False)
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["plugins"], ["plugins", "--json"], ["support", "about"]]
)
def test_light_commands_import_no_heavy_library(args):
    env = {**os.environ, "TUNESMITH_STRICT_PLUGINS": "1"}
    code = PROBE.format(heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_console_script_help_exits_zero():
    exe = os.path.join(os.path.dirname(sys.executable), "tunesmith")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "plugins" in out.stdout
