"""What a stranger writing a fourth plugin needs from the core without copying it: a folder of
its own under ``$TUNESMITH_HOME`` and a check that its start-up stays light."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from tunesmith.plugins import plugin_home, tunesmith_home
from tunesmith.testing import check_startup_imports

HELLO = Path(__file__).resolve().parents[1] / "fixtures" / "third_party_plugin"


def test_tunesmith_home_is_the_variable_or_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    assert tunesmith_home() == tmp_path / "home"
    monkeypatch.setenv("TUNESMITH_HOME", "")  # an empty variable counts as unset, as for the outbox
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert tunesmith_home() == tmp_path / "user" / ".cache" / "tunesmith"


def test_tunesmith_home_is_where_the_outbox_and_demo_models_live(monkeypatch, tmp_path):
    from tunesmith.events import default_outbox_path
    from tunesmith.ui.model_access import demo_models_dir

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    assert default_outbox_path().parent == tunesmith_home()
    assert demo_models_dir().parent == tunesmith_home()


def test_plugin_home_is_a_made_folder_under_plugins(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    folder = plugin_home("moderation")
    assert folder == tmp_path / "plugins" / "moderation" and folder.is_dir()
    assert plugin_home("moderation") == folder  # a second call finds it


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "Moderation", "/abs", ".hidden", "x\n"])
def test_plugin_home_refuses_a_name_that_is_not_an_entry_point_name(monkeypatch, tmp_path, name):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="lower-case"):
        plugin_home(name)
    assert not (tmp_path / "plugins").exists() or not any((tmp_path / "plugins").iterdir())


def _plugin_package(root: Path, name: str, files: dict[str, str]) -> object:
    """A throw-away plugin package on ``sys.path``, imported as the suite would."""
    import importlib

    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    for file, code in files.items():
        (package / file).write_text(textwrap.dedent(code), encoding="utf-8")
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"{name}.plugin")
    finally:
        importlib.invalidate_caches()


@pytest.fixture
def heavy_lib(tmp_path, monkeypatch):
    """A stand-in heavy library (so the test need not time a real import) and clean-up."""
    lib = tmp_path / "libs"
    lib.mkdir()
    (lib / "slow_ml_lib.py").write_text("LOADED = True\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(lib))
    before = set(sys.modules)
    yield ("slow_ml_lib",)
    for name in set(sys.modules) - before:
        sys.modules.pop(name)
    sys.path[:] = [p for p in sys.path if not p.startswith(str(tmp_path))]


LIGHT_PLUGIN = """
    import typer
    from tunesmith import hookimpl

    @hookimpl
    def tunesmith_cli(app):
        group = typer.Typer()

        @group.command("flag")
        def flag(text: str):
            import slow_ml_lib  # inside the command: fine

        app.add_typer(group, name="mod")

    @hookimpl
    def tunesmith_demos():
        from tunesmith.hooktypes import Demo
        from {pkg}.demo import build_demo

        return [Demo(name="mod", title="Mod", build=build_demo)]
"""


def test_a_plugin_that_imports_heavy_libraries_only_when_used_starts_light(tmp_path, heavy_lib):
    demo = "def build_demo():\n    import slow_ml_lib\n"
    plugin = _plugin_package(
        tmp_path / "src",
        "light_mod",
        {"plugin.py": LIGHT_PLUGIN.format(pkg="light_mod"), "demo.py": demo},
    )
    assert check_startup_imports(plugin, heavy=heavy_lib) == []


def test_a_demo_module_importing_a_heavy_library_at_its_top_is_named(tmp_path, heavy_lib):
    # The guide tells authors to keep plugin.py light; the demos hook imports demo.py, so its
    # top-level imports run for `tunesmith plugins` too.
    demo = "import slow_ml_lib\n\ndef build_demo():\n    pass\n"
    plugin = _plugin_package(
        tmp_path / "src",
        "heavy_demo",
        {"plugin.py": LIGHT_PLUGIN.format(pkg="heavy_demo"), "demo.py": demo},
    )
    assert check_startup_imports(plugin, heavy=heavy_lib) == [
        "tunesmith_demos() imports slow_ml_lib"
    ]


def test_a_command_default_computed_with_a_heavy_library_is_named(tmp_path, heavy_lib):
    code = """
        import typer
        from tunesmith import hookimpl

        def default_threshold():
            import slow_ml_lib
            return 0.5

        @hookimpl
        def tunesmith_cli(app):
            group = typer.Typer()
            sub = typer.Typer()

            @sub.command("check")
            def check(threshold: float = default_threshold()):
                pass

            group.add_typer(sub, name="queue")
            app.add_typer(group, name="mod")
    """
    plugin = _plugin_package(tmp_path / "src", "heavy_cli", {"plugin.py": code})
    assert check_startup_imports(plugin, heavy=heavy_lib) == [
        "tunesmith_cli(app) imports slow_ml_lib"
    ]


def test_a_hook_that_raises_at_start_up_is_named(tmp_path, heavy_lib):
    code = """
        from tunesmith import hookimpl

        @hookimpl
        def tunesmith_sample_data():
            raise RuntimeError("no sample folder")
    """
    plugin = _plugin_package(tmp_path / "src", "broken_sample", {"plugin.py": code})
    assert check_startup_imports(plugin, heavy=heavy_lib) == [
        "tunesmith_sample_data() raised RuntimeError: no sample folder"
    ]


def test_the_guides_hello_plugin_starts_without_any_heavy_library(monkeypatch):
    monkeypatch.syspath_prepend(str(HELLO / "src"))
    import tunesmith_hello.plugin

    try:
        assert check_startup_imports(tunesmith_hello.plugin) == []
    finally:
        for name in [m for m in sys.modules if m.startswith("tunesmith_hello")]:
            sys.modules.pop(name)


def test_a_module_no_new_process_can_import_is_refused():
    import types

    with pytest.raises(ValueError, match="not an imported module"):
        check_startup_imports(types.ModuleType("made_in_memory"))


def _blocks_with_two_handlers():
    import gradio as gr

    def on_check(text):
        return text.upper()

    def on_clear():
        return ""

    with gr.Blocks() as blocks:
        box = gr.Textbox()
        out = gr.Textbox()
        gr.Button("Check").click(on_check, box, out)
        box.submit(on_check, box, out)  # a button and the keyboard: one handler
        gr.Button("Clear").click(on_clear, None, out)
    return blocks


def test_demo_handler_returns_the_function_a_demo_event_calls():
    from tunesmith.testing import demo_handler

    assert demo_handler(_blocks_with_two_handlers(), "on_check")("flag me") == "FLAG ME"


def test_demo_handler_names_the_handlers_there_are_when_one_is_missing():
    from tunesmith.testing import demo_handler

    with pytest.raises(LookupError, match="no event handler named 'on_flag'.*on_check, on_clear"):
        demo_handler(_blocks_with_two_handlers(), "on_flag")


def test_demo_handler_finds_a_plugin_demos_handler_built_by_its_hook(monkeypatch):
    monkeypatch.syspath_prepend(str(HELLO / "src"))
    import tunesmith_hello.plugin
    from tunesmith.testing import demo_handler

    try:
        (demo,) = tunesmith_hello.plugin.tunesmith_demos()
        assert demo_handler(demo.build(), "greeting")("Ada") == "Hello, Ada!"
    finally:
        for module in [m for m in sys.modules if m.startswith("tunesmith_hello")]:
            sys.modules.pop(module)
