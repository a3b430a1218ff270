"""A knowledge base shipped elsewhere: unpacked under another path, or baked read-only into an
image. It answers there, reads write nothing into it, and a read-only one says how to run."""

from __future__ import annotations

import json
import os
import shutil


def _snapshot(folder):
    """Every file and folder under ``folder`` with its size and modification time."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
    }


def _read_only(monkeypatch, folder):
    """``folder`` as a read-only mount answers ``access``, whoever runs the tests (root
    ignores a chmod, not a read-only file system)."""
    real = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and os.path.abspath(path) == str(folder):
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_a_read_only_kb_without_db_is_one_line_naming_db_and_creates_nothing(
    kb_copy, cli, monkeypatch
):
    # SQLite said only "conversations.sqlite: cannot open the database: unable to open
    # database file" about a KB baked into a Docker image.
    before = _snapshot(kb_copy)
    _read_only(monkeypatch, kb_copy)
    result = cli("support", "ask", "--kb", str(kb_copy), "how much does shipping cost")
    assert result.exit_code == 2
    assert "read-only" in result.output and "--db" in result.output
    assert "Traceback" not in result.output
    assert _snapshot(kb_copy) == before


def test_a_read_only_kb_answers_with_its_conversations_elsewhere_and_stays_unchanged(
    kb_copy, cli, monkeypatch, tmp_path
):
    before = _snapshot(kb_copy)
    _read_only(monkeypatch, kb_copy)
    db = tmp_path / "state" / "conversations.sqlite"
    db.parent.mkdir()
    for question in ("how much does shipping cost", "I'd like to speak to a person"):
        result = cli("support", "ask", "--kb", str(kb_copy), "--db", str(db),
                     "--sink", f"jsonl:{tmp_path / 'state' / 'handoffs.jsonl'}", "--json",
                     question)  # fmt: skip
        assert result.exit_code == 0, result.output
    evaluated = cli("support", "eval", "--kb", str(kb_copy), "--data", str(_questions()))
    assert evaluated.exit_code == 0, evaluated.output
    assert _snapshot(kb_copy) == before
    assert db.is_file()


def test_a_kb_moved_to_another_path_answers_without_the_old_one(kb_copy, cli, tmp_path):
    moved = tmp_path / "elsewhere" / "shop-kb"
    moved.parent.mkdir()
    shutil.move(kb_copy, moved)
    result = cli("support", "ask", "--kb", str(moved), "--json", "how much does shipping cost")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["candidates"]
    # What it reads is named inside the KB (the index, a tuned encoder: "kb:encoders/g..."):
    # nothing in it points at the folder it was built in.
    for path in moved.rglob("*.json"):
        assert str(kb_copy) not in path.read_text(encoding="utf-8"), path


def _questions():
    from tunesmith_support.sample import sample_paths

    return sample_paths()["questions"]
