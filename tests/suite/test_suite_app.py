"""The suite UI: a tab per demo, a broken demo contained in its tab, --only, safe defaults."""

from __future__ import annotations

import inspect

import pytest

from tunesmith import hookimpl
from tunesmith.errors import UserInputError
from tunesmith.hooktypes import Demo


def boom():
    raise RuntimeError("this demo is broken")


class BrokenDemoPlugin:
    @hookimpl
    def tunesmith_demos(self):
        return [Demo(name="broken", title="Broken", build=boom)]


def html_blocks(app):
    return [b.value for b in app.blocks.values() if type(b).__name__ == "HTML"]


def test_every_registered_demo_gets_a_tab():
    from tunesmith_suite.suite import build_suite, collect_demos

    names = [d.name for d in collect_demos()]
    assert {"playground", "support", "finance", "recommend"} <= set(names)
    app = build_suite()
    # A demo may hold tabs of its own; the suite's tabs are the children of its one Tabs row.
    tabs = [
        b
        for b in app.blocks.values()
        if type(b).__name__ == "Tab" and getattr(b.parent, "parent", None) is app
    ]
    assert sorted(t.id for t in tabs) == sorted(names)


def test_a_demo_that_raises_shows_its_error_in_its_own_tab(register_plugin):
    from tunesmith_suite.suite import build_suite

    register_plugin(BrokenDemoPlugin(), "broken-demo")
    app = build_suite(only=["broken", "support"])
    errors = html_blocks(app)
    assert len(errors) == 1 and "RuntimeError: this demo is broken" in errors[0]
    markdown = [b.value for b in app.blocks.values() if type(b).__name__ == "Markdown"]
    assert any("Customer support" in m for m in markdown)


def test_only_selects_demos_and_rejects_unknown_names():
    from tunesmith_suite.suite import collect_demos, parse_only

    chosen = collect_demos(parse_only("finance, support"))
    assert sorted(d.name for d in chosen) == ["finance", "support"]
    with pytest.raises(UserInputError, match="unknown demo"):
        collect_demos(["nope"])


def test_ui_binds_to_localhost_and_never_shares_by_default():
    from tunesmith_suite.command import ui_command

    params = inspect.signature(ui_command).parameters
    assert params["host"].default.default == "127.0.0.1"
    assert params["share"].default.default is False
    assert params["port"].default.default == 7860


def test_building_the_suite_loads_no_model_or_ml_library():
    import json
    import subprocess
    import sys

    code = (
        "import sys, json; from tunesmith_suite.suite import build_suite; build_suite(); "
        "print(json.dumps([m for m in ('torch', 'transformers', 'peft', 'captum') "
        "if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_ui_preloads_transformers_before_it_serves(monkeypatch):
    from tunesmith.ui import launch
    from tunesmith_suite import command, suite

    events = []

    class App:
        server_port = 7999

        def launch(self, **_kwargs):
            events.append("launch")

        def block_thread(self):
            events.append("serve")

    monkeypatch.setattr(suite, "build_suite", lambda only=None: App())
    monkeypatch.setattr(launch, "preload_transformers", lambda: events.append("preload"))
    monkeypatch.setattr(launch, "check_address", lambda host, port: events.append("check"))
    command.ui_command(host="127.0.0.1", port=7999, only="", share=False, models=None)
    assert events == ["check", "check", "preload", "launch", "serve"]


def test_ui_prints_its_address_only_once_the_server_answers(monkeypatch, capsys):
    # Printed before the libraries loaded, the address was opened to "connection refused" for
    # seconds (tens on a cold first run) with nothing saying it was still starting.
    from tunesmith.ui import launch
    from tunesmith_suite import command, suite

    said = []

    class App:
        server_port = 7999

        def launch(self, **options):
            assert options["prevent_thread_lock"] is True  # returns once it listens
            said.append(("listening", capsys.readouterr().err))

        def block_thread(self):
            said.append(("serving", capsys.readouterr().err))

    monkeypatch.setattr(suite, "build_suite", lambda only=None: App())
    monkeypatch.setattr(launch, "preload_transformers", lambda: None)
    monkeypatch.setattr(launch, "check_address", lambda host, port: None)
    command.ui_command(host="127.0.0.1", port=7999, only="", share=False, models=None)
    (_, before), (_, after) = said
    assert "http://" not in before and "starting" in before
    assert after.strip() == "tunesmith suite on http://127.0.0.1:7999"
