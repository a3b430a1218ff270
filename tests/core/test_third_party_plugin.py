"""A stranger's plugin, with its own pyproject.toml, adds a CLI group and a UI tab.

It is registered through a temporary entry point (a dist-info folder on ``sys.path``), the same
way pip would install it, with no change to the core.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from tunesmith.testing import check_plugin_contract

PLUGIN_ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "third_party_plugin"


@pytest.fixture
def hello_installed(tmp_path, fresh_plugins):
    """Declare the fixture plugin's entry points exactly as its pyproject.toml does."""
    project = tomllib.loads((PLUGIN_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    info = tmp_path / "tunesmith_hello-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['project']['name']}\nVersion: 0.1.0\n",
        encoding="utf-8",
    )
    points = project["project"]["entry-points"]["tunesmith"]
    lines = "".join(f"{name} = {target}\n" for name, target in points.items())
    (info / "entry_points.txt").write_text(f"[tunesmith]\n{lines}", encoding="utf-8")
    fresh_plugins.syspath_prepend(str(tmp_path))
    fresh_plugins.syspath_prepend(str(PLUGIN_ROOT / "src"))
    yield
    for name in [m for m in sys.modules if m.startswith("tunesmith_hello")]:
        sys.modules.pop(name)


def test_third_party_plugin_adds_a_cli_group(hello_installed, cli):
    result = cli("hello", "greet", "Ada")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Hello, Ada!"


def test_third_party_plugin_is_listed_with_its_distribution(hello_installed, cli):
    import json

    records = {r["name"]: r for r in json.loads(cli("plugins", "--json").stdout)}
    assert records["hello"]["distribution"] == "tunesmith-hello"
    assert records["hello"]["hooks"] == ["tunesmith_cli", "tunesmith_demos"]


def test_third_party_plugin_adds_a_tab_to_the_suite(hello_installed):
    from tunesmith_suite.suite import build_suite, collect_demos

    assert "hello" in [d.name for d in collect_demos()]
    app = build_suite(only=["hello"])
    labels = [getattr(block, "label", None) for block in app.blocks.values()]
    assert "Greeting" in labels


def test_third_party_plugin_keeps_the_plugin_contract(hello_installed):
    import tunesmith_hello.plugin

    assert check_plugin_contract(tunesmith_hello.plugin) == []


def test_contract_check_reports_a_demo_without_a_demo_object():
    from tunesmith import hookimpl

    class Bad:
        @staticmethod
        @hookimpl
        def tunesmith_demos():
            return ["not a demo"]

    assert check_plugin_contract(Bad()) == [
        "tunesmith_demos must return a list of tunesmith.hooktypes.Demo"
    ]


def test_contract_check_reports_a_hook_function_without_hookimpl():
    class Forgetful:
        @staticmethod
        def tunesmith_sample_data():  # no @hookimpl: the suite would never call it
            return []

    assert check_plugin_contract(Forgetful()) == [
        "tunesmith_sample_data is not marked with @hookimpl, so tunesmith never calls it"
    ]


def test_contract_check_reports_nameless_augmenter_uncallable_sink_failing_demo_and_misspelling():
    from tunesmith import hookimpl
    from tunesmith.hooktypes import Demo

    def broken_build():
        raise RuntimeError("no model here")

    class Nameless:
        def augment(self, texts, labels, rng):
            return [], []

    class Bad:
        @staticmethod
        @hookimpl
        def tunesmith_augmenters():
            return [Nameless()]

        @staticmethod
        @hookimpl
        def tunesmith_event_sinks():
            return {"pager": "not a factory"}

        @staticmethod
        @hookimpl
        def tunesmith_demos():
            return [Demo(name="broken", title="Broken", build=broken_build)]

        @staticmethod
        @hookimpl
        def tunesmith_demo():  # one letter short of tunesmith_demos
            return []

    problems = check_plugin_contract(Bad())
    assert any(p.startswith("augmenter ") and "has no name" in p for p in problems)
    assert "event sink 'pager': the factory is not callable" in problems
    assert "demo 'broken': build() raised RuntimeError: no model here" in problems
    assert any(p.startswith("tunesmith_demo is not a tunesmith hook") for p in problems)
    assert len(problems) == 4
