"""The quick starts as a new user types them: README.md's tour and the quick start of each
plugin's page (docs/support.md, finance.md, recommend.md), copied line by line.

Each line must name a command that exists with flags it takes, each sample path must be there,
each relative link must lead somewhere, and what a command prints at the end must say what it
did. A renamed flag or moved file must fail here, not on the first evening of an evaluation.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Each page and the heading of its quick start.
QUICK_STARTS = {
    "README.md": "## A tour",
    "docs/support.md": "## Quick start on the sample data",
    "docs/finance.md": "## Quick start on the sample stream",
    "docs/recommend.md": "## Quick start on the sample data",
}
PAGES = ("README.md", "docs/support.md", "docs/finance.md", "docs/recommend.md", "docs/cli.md")


def section(page: str, heading: str) -> str:
    """The text of ``page`` from ``heading`` to the next heading of the same level."""
    text = (ROOT / page).read_text(encoding="utf-8")
    assert f"\n{heading}\n" in text, f"{page}: no section {heading!r}"
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def command_lines(page: str, heading: str) -> list[str]:
    """The ``tunesmith ...`` lines of a section's bash blocks, continuations joined and
    comments dropped."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", section(page, heading), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line.startswith("tunesmith "):
                lines.append(line)
    return lines


def words_of(line: str) -> list[str]:
    """A shell line's words, quoted ones kept whole (enough for the docs' lines)."""
    return [a or b or c for a, b, c in re.findall(r"'([^']*)'|\"([^\"]*)\"|(\S+)", line)]


@pytest.fixture(scope="module")
def root_command():
    import typer.main

    from tunesmith.cli import build_app

    return typer.main.get_command(build_app())


def resolve(root_command, words: list[str]):
    """The command a line's words name, and the words that named it."""
    command, named = root_command, []
    for word in words:
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        command, named = sub, [*named, word]
    return command, named


@pytest.mark.parametrize(("page", "heading"), sorted(QUICK_STARTS.items()))
def test_quick_start_lines_name_commands_and_flags_that_exist(root_command, page, heading):
    lines = command_lines(page, heading)
    assert lines, f"{page}: no tunesmith line under {heading!r}"
    for line in lines:
        words = words_of(line)[1:]
        command, named = resolve(root_command, words)
        assert named, f"{page}: {line!r} names no command"
        if hasattr(command, "commands"):  # a group: only `--help` makes sense on it
            assert words[len(named) :] == ["--help"], f"{page}: {line!r} stops at a group"
            continue
        flags = {"--help", "-h"}
        for param in command.params:
            flags.update(param.opts, getattr(param, "secondary_opts", []))
        for word in words[len(named) :]:
            if word.startswith("-") and not re.fullmatch(r"-?\d+(\.\d+)?", word):
                assert word in flags, f"{page}: {line!r}: `{' '.join(named)}` has no {word}"


def test_quick_start_sample_paths_exist():
    from tunesmith_support.sample import SAMPLE_DIR

    for page, heading in QUICK_STARTS.items():
        text = section(page, heading)
        found = re.search(r"^S=(\S+)", text, re.M)
        if not found:  # recommend's quick start takes --sample
            assert "$S" not in text, f"{page}: $S with no S=... line"
            continue
        folder = Path(SAMPLE_DIR) if found.group(1).startswith("$(") else ROOT / found.group(1)
        assert folder.is_dir(), f"{page}: S={found.group(1)} is not a folder"
        for name in re.findall(r"\$S/([\w./-]+)", text):
            assert (folder / name).exists(), f"{page}: $S/{name} does not exist"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_lead_to_a_file_and_heading_that_exist(page):
    path = ROOT / page
    for link in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        target_path = (path.parent / target) if target else path
        assert target_path.exists(), f"{page}: the link {link} leads nowhere"
        if anchor and target_path.suffix == ".md":
            headings = re.findall(r"^#+\s+(.*)$", target_path.read_text(encoding="utf-8"), re.M)
            assert anchor in {github_anchor(h) for h in headings}, f"{page}: no #{anchor}"


@pytest.mark.slow
def test_finance_train_ends_with_the_held_out_score_as_tunesmith_train_does(cli, tmp_path):
    from tunesmith.testing import make_tiny_base_model, write_csv

    rows = [["shares plunge on losses", "negative"], ["profit beats estimates", "positive"],
            ["results due on thursday", "neutral"]] * 8  # fmt: skip
    data = write_csv(tmp_path / "train.csv", rows)
    held_out = write_csv(tmp_path / "held_out.csv", rows[:6])
    base = make_tiny_base_model(tmp_path / "base", [r[0] for r in rows])
    out = tmp_path / "fin"
    result = cli("finance", "train", "--data", str(data), "--eval", str(held_out), "--out",
                 str(out), "--model", str(base), "--epochs", "1", "--strategy", "head")  # fmt: skip
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    # Only the path was printed: a run given --eval said nothing of how the model scored.
    assert re.fullmatch(
        rf"saved {re.escape(str(out))}: accuracy \d\.\d{{4}}, macro F1 \d\.\d{{4}}, "
        r"ECE \d\.\d{4} on held_out\.csv \(6 rows\)",
        last,
    ), last
