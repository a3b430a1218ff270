"""Every hook is documented with its exact signature and has a test (datasette's rule)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from tunesmith import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(
    name for name, obj in vars(hookspecs).items() if name.startswith("tunesmith_") and callable(obj)
)


def documented_headings() -> set[str]:
    text = (ROOT / "docs" / "plugin_hooks.md").read_text(encoding="utf-8")
    return {m.group(1).strip() for m in re.finditer(r"^## (.+)$", text, re.MULTILINE)}


def expected_heading(name: str) -> str:
    params = inspect.signature(getattr(hookspecs, name)).parameters
    return f"{name}({', '.join(params)})"


def all_test_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names.update(re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.M))
    return names


def test_hookspecs_define_the_hooks_of_the_design():
    assert len(HOOKS) >= 8


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_heading_with_its_exact_signature(name):
    assert expected_heading(name) in documented_headings()


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_docstring(name):
    assert (getattr(hookspecs, name).__doc__ or "").strip()


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test_named_after_it(name):
    assert any(t.startswith(f"test_hook_{name}") for t in all_test_names())


def test_docs_mention_no_hook_that_does_not_exist():
    documented = {h.split("(")[0] for h in documented_headings() if h.startswith("tunesmith_")}
    assert documented == set(HOOKS)


def dotted_names(doc: str) -> set[str]:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    return set(re.findall(r"`(tunesmith(?:\.\w+)+)", text))


def resolve(dotted: str) -> object:
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("doc", ["writing_plugins.md", "plugin_hooks.md"])
def test_every_dotted_name_in_the_plugin_docs_exists(doc):
    names = dotted_names(doc)
    assert "tunesmith.engine.train.train" in names or doc == "plugin_hooks.md"
    for name in sorted(names):
        resolve(name)  # raises for a module or function the docs name but the code lacks


def test_the_plugin_guide_training_and_explanation_calls_match_the_code():
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.train import train
    from tunesmith.explain.attribute import explain_loaded, explain_texts

    assert list(inspect.signature(train).parameters) == ["run", "log"]
    assert {"data", "eval_data", "out", "model", "epochs", "force"} <= set(
        inspect.signature(RunConfig).parameters
    )
    assert list(inspect.signature(explain_texts).parameters)[:3] == ["model", "tokenizer", "texts"]
    assert list(inspect.signature(explain_loaded).parameters)[:2] == ["loaded", "texts"]


# --- each plugin's CLI group (its `tunesmith_cli` hook) matches its docs page's command table ---

PLUGIN_PAGES = {"support": "support.md", "finance": "finance.md", "recommend": "recommend.md"}


def plugin_group(name: str):  # type: ignore[no-untyped-def]
    """The click group ``tunesmith NAME`` as the installed plugin builds it."""
    import typer

    from tunesmith.cli import build_app

    return typer.main.get_command(build_app()).commands[name]


def command_table_rows(doc: str) -> list[str]:
    """The first cell of each row of the table under ``## Commands`` in ``docs/DOC``."""
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    section = text.split("\n## Commands\n", 1)[1]
    rows = []
    for line in section.lstrip("\n").splitlines():
        if not line.startswith("|"):
            break
        first = re.split(r"(?<!\\)\|", line)[1].strip()
        if first.startswith("`"):
            rows.append(first)
    return rows


def row_command(row: str, group: str) -> str:
    words = row.split("`")[1].split()
    return words[1] if words[0] == group else words[0]


def option_names(command) -> set[str]:  # type: ignore[no-untyped-def]
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


@pytest.mark.parametrize("group", sorted(PLUGIN_PAGES))
def test_every_plugin_command_is_in_its_docs_page_command_table(group):
    documented = {row_command(row, group) for row in command_table_rows(PLUGIN_PAGES[group])}
    commands = set(plugin_group(group).commands)
    assert commands - documented == set(), f"docs/{PLUGIN_PAGES[group]} lacks these commands"
    assert documented - commands == set(), f"docs/{PLUGIN_PAGES[group]} names unknown commands"


@pytest.mark.parametrize("group", sorted(PLUGIN_PAGES))
def test_every_flag_in_a_plugin_command_table_exists(group):
    commands = plugin_group(group).commands
    for row in command_table_rows(PLUGIN_PAGES[group]):
        name = row_command(row, group)
        flags = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", row))
        unknown = flags - option_names(commands[name])
        assert unknown == set(), f"docs/{PLUGIN_PAGES[group]}: `{group} {name}` has no {unknown}"


@pytest.mark.parametrize("group", sorted(PLUGIN_PAGES))
def test_cli_reference_lists_every_command_of_each_plugin(group):
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    listed = re.search(rf"^\| `tunesmith {group} ([\w\\|-]+)`", text, re.M)
    assert listed, f"docs/cli.md has no row for `tunesmith {group}`"
    assert set(listed.group(1).split("\\|")) == set(plugin_group(group).commands)


def flags_not_named(commands: dict, text: str, prefix: str) -> list[str]:  # type: ignore[type-arg]
    """The options of ``commands`` (click commands or groups, by name) that ``text`` names in
    none of their spellings (``-k`` or ``--top-k``)."""
    missing = []
    for name, command in commands.items():
        if hasattr(command, "commands"):
            missing += flags_not_named(command.commands, text, f"{prefix} {name}")
            continue
        for param in command.params:
            spellings = [o for o in (*param.opts, *param.secondary_opts) if o.startswith("-")]
            if not spellings or "--help" in spellings:
                continue
            if not any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text) for o in spellings):
                missing.append(f"{prefix} {name} {spellings[0]}")
    return missing


@pytest.mark.parametrize("group", sorted(PLUGIN_PAGES))
def test_every_flag_of_a_plugin_command_is_named_on_its_docs_page(group):
    """A flag `--help` shows must be findable on the page too; recommend demo's --host and
    finance train's --allow-network were not."""
    text = (ROOT / "docs" / PLUGIN_PAGES[group]).read_text(encoding="utf-8")
    missing = flags_not_named(plugin_group(group).commands, text, group)
    assert missing == [], f"docs/{PLUGIN_PAGES[group]} does not name: {missing}"


def test_every_flag_of_a_core_command_is_named_in_the_cli_reference():
    import typer

    from tunesmith.cli import build_app

    commands = dict(typer.main.get_command(build_app()).commands)
    for group in PLUGIN_PAGES:
        commands.pop(group, None)
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = flags_not_named(commands, text, "tunesmith")
    assert missing == [], f"docs/cli.md does not name: {missing}"
