"""The CLI starts light: help and plugin listing import none of the heavy libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tunesmith.testing import HEAVY_MODULES

HEAVY = list(HEAVY_MODULES)  # the list a plugin's own check_startup_imports uses

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
    "args",
    [
        ["--help"],
        ["plugins"],
        ["plugins", "--json"],
        ["support", "about"],
        ["support", "--help"],
        ["finance", "--help"],
        ["recommend", "--help"],
        ["events", "list"],
    ],
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


#: ``--help`` of every command and group, in one process: the first one that imported each heavy
#: library (a plugin group's subcommand that computes a default at import time would show here).
PROBE_EVERY_HELP = """
import io, json, sys, contextlib
import typer
from tunesmith.cli import build_app

def paths(command, prefix):
    yield prefix
    for name, sub in sorted(getattr(command, "commands", {{}}).items()):
        yield from paths(sub, [*prefix, name])

every = list(paths(typer.main.get_command(build_app()), []))
first = {{}}
for path in every:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            build_app()([*path, "--help"], standalone_mode=False)
        except SystemExit:
            pass
    for module in {heavy}:
        if module in sys.modules:
            first.setdefault(module, " ".join(path) or "(root)")
print(json.dumps({{"commands": [" ".join(p) for p in every], "heavy": first}}))
"""


def test_help_of_every_command_of_every_plugin_group_imports_no_heavy_library():
    env = {**os.environ, "TUNESMITH_STRICT_PLUGINS": "1"}
    code = PROBE_EVERY_HELP.format(heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    # Every plugin group is there, with its commands (a group that failed to load has none).
    for command in ("support ask", "finance score", "recommend for-user", "events list"):
        assert command in found["commands"]
    assert found["heavy"] == {}
