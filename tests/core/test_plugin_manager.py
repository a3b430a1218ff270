"""The plugin manager: built-ins, entry points one by one, broken plugins, disable list."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import tunesmith
from tunesmith.plugins import build_plugin_manager, get_plugin_manager, plugin_records


def write_entry_point_plugin(root: Path, name: str, module_source: str) -> None:
    """Make an importable module plus a dist-info folder declaring it in group ``tunesmith``."""
    (root / f"{name}_mod.py").write_text(module_source, encoding="utf-8")
    info = root / f"tunesmith_{name}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: tunesmith-{name}\nVersion: 0.0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[tunesmith]\n{name} = {name}_mod\n", encoding="utf-8")


@pytest.fixture
def plugin_dir(tmp_path, fresh_plugins):
    fresh_plugins.syspath_prepend(str(tmp_path))
    # CI runs strict; these tests are about the forgiving default unless they say otherwise.
    fresh_plugins.delenv("TUNESMITH_STRICT_PLUGINS", raising=False)
    yield tmp_path
    for mod in [m for m in sys.modules if m.endswith("_mod")]:
        sys.modules.pop(mod, None)


GOOD = """
import tunesmith

@tunesmith.hookimpl
def tunesmith_sample_data():
    return []
"""


def test_hookimpl_is_reexported_from_tunesmith():
    import pluggy

    assert isinstance(tunesmith.hookimpl, pluggy.HookimplMarker)
    assert tunesmith.hookimpl.project_name == "tunesmith"


def test_builtins_and_installed_domain_plugins_are_registered(fresh_plugins):
    names = {r.name for r in plugin_records()}
    assert {"tunesmith.builtins", "support", "finance", "recommend", "suite"} <= names
    assert all(r.error is None for r in plugin_records())


def test_plugin_that_fails_to_import_is_reported_and_others_still_work(plugin_dir, capsys):
    write_entry_point_plugin(plugin_dir, "broken", "raise RuntimeError('boom at import')\n")
    write_entry_point_plugin(plugin_dir, "good", GOOD)
    pm = build_plugin_manager()
    records = {r.name: r for r in plugin_records()}
    assert "boom at import" in records["broken"].error
    assert records["good"].error is None
    assert pm.get_plugin("good") is not None
    assert "plugin 'broken'" in capsys.readouterr().err


def test_strict_mode_reraises_a_broken_plugin(plugin_dir, monkeypatch):
    write_entry_point_plugin(plugin_dir, "broken", "raise RuntimeError('boom at import')\n")
    monkeypatch.setenv("TUNESMITH_STRICT_PLUGINS", "1")
    with pytest.raises(RuntimeError, match="boom at import"):
        build_plugin_manager()


def test_plugin_with_a_misspelled_hook_is_rejected(plugin_dir):
    source = "import tunesmith\n\n@tunesmith.hookimpl\ndef tunesmith_demo():\n    return []\n"
    write_entry_point_plugin(plugin_dir, "typo", source)
    pm = build_plugin_manager()
    records = {r.name: r for r in plugin_records()}
    assert "unknown hook(s) tunesmith_demo" in records["typo"].error
    assert pm.get_plugin("typo") is None


def test_disable_list_blocks_named_plugins(fresh_plugins):
    fresh_plugins.setenv("TUNESMITH_DISABLE_PLUGINS", "finance, recommend")
    pm = get_plugin_manager()
    assert pm.get_plugin("finance") is None
    assert pm.get_plugin("recommend") is None
    assert pm.get_plugin("support") is not None


def test_trace_prints_each_hook_call(fresh_plugins, capsys):
    fresh_plugins.setenv("TUNESMITH_TRACE_PLUGINS", "1")
    get_plugin_manager().hook.tunesmith_event_sinks()
    assert (
        "tunesmith trace: tunesmith_event_sinks() -> [tunesmith.builtins]"
        in capsys.readouterr().err
    )


def test_plugins_json_lists_name_distribution_version_hooks_error(fresh_plugins, cli):
    result = cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert records and all(
        set(r) == {"name", "distribution", "version", "hooks", "error"} for r in records
    )
    support = next(r for r in records if r["name"] == "support")
    assert support["distribution"] == "tunesmith-support"
    assert "tunesmith_cli" in support["hooks"] and support["error"] is None


def test_plugins_json_shows_a_broken_plugins_error(plugin_dir, cli):
    write_entry_point_plugin(plugin_dir, "broken", "raise ImportError('no such thing')\n")
    records = {r["name"]: r for r in json.loads(cli("plugins", "--json").stdout)}
    assert records["broken"]["error"] == "ImportError: no such thing"


def test_plugins_without_json_prints_a_table(fresh_plugins, cli):
    result = cli("plugins")
    assert result.exit_code == 0
    header = result.stdout.splitlines()[0].split()
    assert header == ["name", "distribution", "version", "hooks", "error"]
    assert "tunesmith-support" in result.stdout


BROKEN_AT_RUN_TIME = """
import tunesmith

@tunesmith.hookimpl
def tunesmith_cli(app):
    raise RuntimeError("boom in cli")

@tunesmith.hookimpl
def tunesmith_demos():
    raise RuntimeError("boom in demos")
"""


def test_a_plugin_whose_cli_hook_raises_is_listed_and_other_commands_work(plugin_dir, cli, capsys):
    write_entry_point_plugin(plugin_dir, "brokencli", BROKEN_AT_RUN_TIME)
    result = cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    assert "plugin 'brokencli' skipped: tunesmith_cli raised" in capsys.readouterr().err
    records = {r["name"]: r for r in json.loads(result.stdout)}
    error = records["brokencli"]["error"]
    assert "tunesmith_cli raised RuntimeError: boom in cli" in error
    assert "tunesmith_demos raised RuntimeError: boom in demos" in error
    assert records["support"]["error"] is None
    sample = cli("sample-data")
    assert sample.exit_code == 0, sample.output
    assert "support_intents" in sample.stdout


def test_a_plugin_whose_demos_hook_raises_is_skipped_by_the_suite(plugin_dir):
    from tunesmith_suite.suite import collect_demos

    write_entry_point_plugin(plugin_dir, "brokendemos", BROKEN_AT_RUN_TIME)
    names = [d.name for d in collect_demos()]
    assert names[0] == "playground" and len(names) >= 2
    records = {r.name: r for r in plugin_records()}
    assert "tunesmith_demos raised RuntimeError: boom in demos" in records["brokendemos"].error


def test_strict_mode_reraises_a_hook_that_raises_at_run_time(plugin_dir, monkeypatch, cli):
    write_entry_point_plugin(plugin_dir, "brokenstrict", BROKEN_AT_RUN_TIME)
    monkeypatch.setenv("TUNESMITH_STRICT_PLUGINS", "1")
    from tunesmith.cli import build_app

    with pytest.raises(RuntimeError, match="boom in cli"):
        build_app()


def test_a_registered_plugin_that_raises_gets_a_record_with_its_error(
    fresh_plugins, register_plugin
):
    from tunesmith.plugins import collect_list

    fresh_plugins.delenv("TUNESMITH_STRICT_PLUGINS", raising=False)

    class Broken:
        @tunesmith.hookimpl
        def tunesmith_sample_data(self):
            raise ValueError("bad sample")

    register_plugin(Broken(), "by-hand")
    names = [s.name for s in collect_list("tunesmith_sample_data")]
    assert "support_intents" in names
    records = {r.name: r for r in plugin_records()}
    assert records["by-hand"].error == "tunesmith_sample_data raised ValueError: bad sample"
    assert records["by-hand"].hooks == ["tunesmith_sample_data"]


UNMARKED = """
import tunesmith

@tunesmith.hookimpl
def tunesmith_sample_data():
    return []

def tunesmith_cli(app):  # the author forgot @tunesmith.hookimpl
    raise AssertionError("pluggy never calls an unmarked function")
"""


def test_a_hook_function_without_hookimpl_is_reported_not_silently_ignored(plugin_dir, capsys):
    write_entry_point_plugin(plugin_dir, "unmarked", UNMARKED)
    pm = build_plugin_manager()
    records = {r.name: r for r in plugin_records()}
    assert records["unmarked"].error == (
        "PluginError: tunesmith_cli not marked with @hookimpl, so never called"
    )
    assert records["unmarked"].hooks == ["tunesmith_sample_data"]
    assert pm.get_plugin("unmarked") is not None  # its marked hooks keep working
    assert "plugin 'unmarked': PluginError: tunesmith_cli not marked" in capsys.readouterr().err


def test_strict_mode_raises_for_a_hook_function_without_hookimpl(plugin_dir, monkeypatch):
    from tunesmith.errors import PluginError

    write_entry_point_plugin(plugin_dir, "unmarked", UNMARKED)
    monkeypatch.setenv("TUNESMITH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="tunesmith_cli not marked with @hookimpl"):
        build_plugin_manager()


def test_a_plugin_that_defines_its_own_hookspecs_is_not_reported_as_unmarked(plugin_dir):
    source = (
        "import pluggy\nimport tunesmith\n\nhookspec = pluggy.HookspecMarker('tunesmith')\n\n"
        "@hookspec\ndef tunesmith_ticket_routed(ticket):\n    pass\n\n"
        "@tunesmith.hookimpl\ndef tunesmith_sample_data():\n    return []\n"
    )
    write_entry_point_plugin(plugin_dir, "specs", source)
    build_plugin_manager()
    assert {r.name: r for r in plugin_records()}["specs"].error is None


def test_a_helper_named_like_a_hook_but_no_hook_is_not_reported(plugin_dir):
    source = (
        "import tunesmith\n\ndef tunesmith_version_string():\n    return '1'\n\n"
        "@tunesmith.hookimpl\ndef tunesmith_sample_data():\n    return []\n"
    )
    write_entry_point_plugin(plugin_dir, "helper", source)
    build_plugin_manager()
    assert {r.name: r for r in plugin_records()}["helper"].error is None


def test_a_plugin_registered_by_hand_is_listed_by_tunesmith_plugins(
    fresh_plugins, register_plugin, cli
):
    """writing_plugins.md tells authors to register a not-installed plugin by hand in tests;
    ``tunesmith plugins`` listed it only once one of its hooks had failed."""

    class ByHand:
        @tunesmith.hookimpl
        def tunesmith_sample_data(self):
            return []

    register_plugin(ByHand(), "by-hand")
    result = cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["by-hand"]["hooks"] == ["tunesmith_sample_data"]
    assert records["by-hand"]["error"] is None
