"""The commands the README and the docs tell a newcomer to type exist, with the flags shown.

A newcomer copies `tunesmith ...` lines from README.md and the docs pages word for word; a
renamed command or flag must fail here, not in their terminal. The command tables are checked
the other way too: every flag a command takes is documented (core commands somewhere in
docs/cli.md, a plugin's commands in their row of its page's table).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    "README.md",
    "docs/cli.md",
    "docs/support.md",
    "docs/writing_plugins.md",
    "docs/finance.md",
    "docs/recommend.md",
]
PLUGIN_GROUPS = {"finance", "recommend", "support"}
# A flag as written in docs: `--top-k`, `-k`; not a word with a hyphen inside.
FLAG = re.compile(r"(?<![\w-])--?[a-z][a-z0-9-]*")


@pytest.fixture(scope="module")
def root() -> Any:
    import typer

    from tunesmith.cli import build_app

    return typer.main.get_command(build_app())


def long_flags(command: Any) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


def doc_command_lines() -> list[tuple[str, str]]:
    """(doc, the text after `tunesmith `) for every command line in a code span or block."""
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        # Up to a closing backtick, an end of line or a shell comment; a table's `\|` is `|`.
        for match in re.finditer(r"\btunesmith ([a-z][^`\n#]*)", text):
            found.append((doc, match.group(1).replace("\\|", "|").strip()))
    return found


def resolve(root: Any, words: list[str]) -> tuple[list[Any], list[str]]:
    """The commands the leading words name (a table's `list|tail|retry` names several)."""
    commands, used = [root], []
    for word in words:
        subs = [
            c.commands[alt]
            for c in commands
            for alt in word.split("|")
            if alt in getattr(c, "commands", {})
        ]
        if not subs:
            break
        commands, used = subs, [*used, word]
    return commands, used


def test_every_documented_command_line_names_real_commands_and_flags(root):
    problems = []
    checked = 0
    for doc, line in doc_command_lines():
        words = line.split()
        commands, used = resolve(root, words)
        if not used:  # prose ("tunesmith lands 0.006 below"), or a third-party plugin's group
            continue
        checked += 1
        rest = words[len(used) :]
        if any(hasattr(c, "commands") for c in commands):
            # `tunesmith recommend ...`: any of the group's commands.
            if rest and rest[0] != "..." and not rest[0].startswith("-"):
                problems.append(f"{doc}: `tunesmith {line}`: no command {rest[0]!r}")
            continue
        known = set().union(*(long_flags(c) for c in commands)) | {"--help", "-h"}
        unknown = sorted({f for f in FLAG.findall(" ".join(rest)) if f not in known})
        if unknown:
            problems.append(f"{doc}: `tunesmith {line}`: no flag {', '.join(unknown)}")
    assert checked > 50  # the pattern still finds the docs' commands
    assert problems == []


def test_the_cli_reference_table_names_every_command(root):
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `tunesmith ([a-z0-9-]+)", text, re.M))
    assert set(root.commands) - rows == set()


def test_every_flag_of_a_core_command_is_in_the_cli_reference(root):
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = []

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                if not (path == [] and name in PLUGIN_GROUPS):  # each plugin has its page
                    walk(sub, [*path, name])
            return
        for flag in sorted(long_flags(command) - {"--help", "-h"}):
            if flag.startswith("--") and not re.search(re.escape(flag) + r"(?![\w-])", text):
                missing.append(f"tunesmith {' '.join(path)} {flag}")

    walk(root, [])
    assert missing == []


def table_rows(group: str) -> dict[str, str]:
    """The rows of a plugin page's command table, by command; a command's several rows joined.

    A row starts with the command, with or without its group (`ask ...`, `finance score ...`).
    """
    text = (ROOT / "docs" / f"{group}.md").read_text(encoding="utf-8")
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    pattern = rf"^\| `(?:{group} )?([a-z-]+)[^|]*.*$"
    for match in re.finditer(pattern, section, re.M):
        rows[match.group(1)] = rows.get(match.group(1), "") + match.group(0) + "\n"
    return rows


def documented_flags(name: str, rows: dict[str, str]) -> list[str]:
    """The flags a command's row names; a row that takes "the ... flags of `X`" names X's too."""
    row = rows.get(name, "")
    for other in re.findall(r"flags of `([a-z-]+)`", row):
        row += rows.get(other, "")
    return FLAG.findall(row)


@pytest.mark.parametrize("group", sorted(PLUGIN_GROUPS))
def test_a_plugin_command_table_has_a_row_for_each_command_and_no_other(root, group):
    assert set(table_rows(group)) == set(root.commands[group].commands)


@pytest.mark.parametrize("group", sorted(PLUGIN_GROUPS))
def test_every_flag_of_a_plugin_command_is_in_its_command_row(root, group):
    rows = table_rows(group)
    missing = []
    for name, command in root.commands[group].commands.items():
        named = documented_flags(name, rows)
        for param in command.params:
            # `--lexical/--no-lexical`: the row names the one a user would type; `-m DIR` will do.
            flags = [o for o in (*param.opts, *param.secondary_opts) if o.startswith("-")]
            if flags and not set(flags) <= {"--help", "-h"} and not any(f in named for f in flags):
                missing.append(f"{group} {name} {'/'.join(flags)}")
    assert missing == []


@pytest.mark.parametrize("group", sorted(PLUGIN_GROUPS))
def test_a_plugin_command_row_shows_only_flags_its_command_takes(root, group):
    # The row's first cell is what a user types; the second may name other commands' flags.
    problems = []
    for name, rows in table_rows(group).items():
        command = root.commands[group].commands.get(name)
        if command is None:  # the row test above names it
            continue
        known = long_flags(command) | {"--help", "-h"}
        for row in rows.splitlines():
            usage = row.split(" | ", 1)[0]
            unknown = sorted({f for f in FLAG.findall(usage) if f not in known})
            if unknown:
                problems.append(f"{group} {name}: no flag {', '.join(unknown)}")
    assert problems == []


@pytest.mark.parametrize(
    ("command", "flag"),
    [("train", "--data"), ("train", "--unlabelled"), ("evaluate", "--data")],
)
def test_a_data_file_help_names_every_format_the_readers_read(root, command, flag):
    # The help said ".csv/.jsonl/.parquet/.conll" after Excel, TSV and JSON were readable.
    help_text = next(p.help for p in root.commands[command].params if flag in p.opts)
    for name in ("CSV", "TSV", "JSONL", "JSON", "Parquet", ".xlsx"):
        assert re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", help_text), (name, help_text)
