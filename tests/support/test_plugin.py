from __future__ import annotations


def test_support_plugin_keeps_the_contract():
    from tunesmith.testing import check_plugin_contract
    from tunesmith_support import plugin

    assert check_plugin_contract(plugin) == []


def test_support_group_offers_every_command(cli):
    result = cli("support", "--help")
    assert result.exit_code == 0
    for command in (
        "index",
        "calibrate",
        "train",
        "ask",
        "chat",
        "feedback",
        "handoffs",
        "eval",
        "export-feedback",
        "stats",
        "serve",
        "demo",
    ):
        assert command in result.output


def test_demo_tab_builds_without_indexing_the_sample_kb(tmp_path, monkeypatch):
    from tunesmith_support import plugin
    from tunesmith_support.demo import demo_dir

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    (demo,) = plugin.tunesmith_demos()
    blocks = demo.build()
    assert type(blocks).__name__ == "Blocks"
    # The KB is built on the first question, not when the suite draws its tabs.
    assert not (demo_dir() / "sample-kb").exists()
