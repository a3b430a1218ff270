"""The knowledge-base folder scan loses no file without a word: a folder it cannot read, a link
that leads nowhere, a folder removed during the scan, links and hidden folders.

Tests run as root, who reads every folder: an unreadable one is simulated by an ``os.scandir``
that refuses it, as the kernel refuses another user."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tunesmith.errors import DataError
from tunesmith_support.kb import read_sources, source_files

FAQ = "question,answer\nHow do I return boots?,Within 30 days of delivery.\n"


def _kb(root: Path) -> Path:
    (root / "faq").mkdir(parents=True)
    (root / "faq" / "faq.csv").write_text(FAQ, encoding="utf-8")
    (root / "private").mkdir()
    (root / "private" / "care.md").write_text("# Care\n\nWash the tent in cold water.\n")
    return root


def _refusing(monkeypatch, folder: Path, code: int = errno.EACCES) -> None:
    """Make ``os.scandir(folder)`` fail with ``code``, as it does for a folder without read
    permission (EACCES) or on a machine out of file descriptors (EMFILE)."""
    real = os.scandir

    def scandir(path="."):
        if Path(path) == folder:
            raise OSError(code, os.strerror(code), str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def _names(files: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in files]


def test_an_unreadable_subfolder_is_one_line_naming_it_not_a_silent_loss(tmp_path, monkeypatch):
    root = _kb(tmp_path / "kb")
    _refusing(monkeypatch, root / "private")
    with pytest.raises(DataError) as info:
        source_files(root)
    assert str(info.value) == (
        f"{root / 'private'}: cannot read this folder (Permission denied), so its files would be "
        "left out of the knowledge base; make it readable, or move it out of the knowledge-base "
        "folder"
    )
    assert info.value.exit_code == 2


def test_index_of_a_folder_with_an_unreadable_subfolder_exits_2_and_writes_nothing(
    cli, tmp_path, monkeypatch
):
    root = _kb(tmp_path / "kb")
    _refusing(monkeypatch, root / "private")
    out = tmp_path / "out"
    result = cli("support", "index", "--kb", str(root), "--out", str(out))
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"Error: {root / 'private'}: cannot read this folder (Permission denied), so its files "
        "would be left out of the knowledge base; make it readable, or move it out of the "
        "knowledge-base folder"
    ]
    assert not out.exists()


def test_the_machine_failing_while_listing_is_the_os_error_naming_the_folder(tmp_path, monkeypatch):
    # Too many open files is not the folder's fault: exit 1 from the CLI, not a data error.
    root = _kb(tmp_path / "kb")
    _refusing(monkeypatch, root / "private", errno.EMFILE)
    with pytest.raises(OSError) as info:
        source_files(root)
    assert not isinstance(info.value, DataError)
    assert (info.value.errno, info.value.filename) == (errno.EMFILE, str(root / "private"))


def test_a_folder_removed_during_the_scan_is_left_out_not_a_crash(tmp_path, monkeypatch):
    root = _kb(tmp_path / "kb")
    real = os.scandir

    class Listed:
        """The root's listing, after which another process removes ``private``."""

        def __init__(self, path) -> None:
            with real(path) as listing:
                self.entries = list(listing)
            for child in (root / "private").iterdir():
                child.unlink()
            (root / "private").rmdir()

        def __enter__(self):
            return iter(self.entries)

        def __exit__(self, *exc) -> None:
            return None

    monkeypatch.setattr(
        os, "scandir", lambda path=".": Listed(path) if Path(path) == root else real(path)
    )
    assert _names(source_files(root), root) == ["faq/faq.csv"]


def test_a_link_that_leads_nowhere_is_one_line_naming_it(tmp_path):
    root = _kb(tmp_path / "kb")
    (root / "returns.md").symlink_to(tmp_path / "moved" / "returns.md")
    with pytest.raises(DataError) as info:
        source_files(root)
    assert str(info.value) == (
        f"{root / 'returns.md'}: a link to {tmp_path / 'moved' / 'returns.md'}, which leads to "
        "nothing; fix the link or remove it from the knowledge-base folder"
    )


def test_a_linked_folder_is_read_and_a_link_loop_is_read_once(tmp_path):
    root = _kb(tmp_path / "kb")
    shared = tmp_path / "shared" / "docs"
    shared.mkdir(parents=True)
    (shared / "warranty.md").write_text("# Warranty\n\nTwo years on every tent.\n")
    (root / "product").symlink_to(shared)
    (root / "faq" / "again").symlink_to(root)  # a loop back to the KB folder
    (root / "zz-product").symlink_to(shared)  # the same folder twice: read at its first name
    files = source_files(root)
    assert _names(files, root) == ["faq/faq.csv", "private/care.md", "product/warranty.md"]
    ids = {entry.id for entry in read_sources(root)}
    assert any(i.startswith("warranty") for i in ids), ids


def test_hidden_folders_are_not_listed_so_an_unreadable_one_is_no_error(tmp_path, monkeypatch):
    root = _kb(tmp_path / "kb")
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "notes.md").write_text("# Not a KB page\n\ntext\n")
    (root / "faq" / "~$faq.xlsx").write_bytes(b"lock")  # Office's lock file
    _refusing(monkeypatch, root / ".git" / "objects")
    assert _names(source_files(root), root) == ["faq/faq.csv", "private/care.md"]
