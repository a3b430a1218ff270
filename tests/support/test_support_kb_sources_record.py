"""A nightly re-index of a large help centre (20,000 articles, ~200 changed) reads and splits
only the files that changed: the KB records each file it read (size, mtime, hash, entry ids)
in a generation file that ``kb.json`` switches with the index. Counted in files read, not
timed."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from test_kb import FAQ, write_faq
from test_kb_atomic_updates import kill_everywhere

from tunesmith.errors import UserInputError
from tunesmith.retrieval import VectorIndex
from tunesmith_support import documents, sourcerecord
from tunesmith_support import kb as kb_module
from tunesmith_support.kbindex import build_index, index_dir, read_meta, stored_entries

ARTICLE = """# Article {n}

## Reset a password

Open Settings, choose Security and then Reset password for account {n}.

## Change the plan

Billing lists the plans. Choose one and confirm; the new price applies from the next invoice,
and the unused days of the old plan are credited to account {n}.
"""


@pytest.fixture
def help_centre(tmp_path):
    """Five articles and an FAQ file, written a minute ago (not in the current mtime tick)."""
    src = tmp_path / "src"
    (src / "billing").mkdir(parents=True)
    for n in range(5):
        (src / "billing" / f"article-{n}.md").write_text(ARTICLE.format(n=n), encoding="utf-8")
    write_faq(src / "faq.csv", FAQ)
    _age(src)
    return src


def _age(src, seconds=60):
    for path in src.rglob("*.*"):
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns - seconds * 10**9))


@pytest.fixture
def reads(monkeypatch):
    """The source files each `build_index` opens and splits (documents) or parses (FAQ)."""
    seen: list[str] = []
    passages, read_faq = kb_module._passages, kb_module.read_faq

    def counted_passages(path, source, stem=None):
        seen.append(source)
        return passages(path, source, stem)

    def counted_faq(path, columns, *, source=None):
        seen.append(source)
        return read_faq(path, columns, source=source)

    monkeypatch.setattr(kb_module, "_passages", counted_passages)
    monkeypatch.setattr(kb_module, "read_faq", counted_faq)
    return seen


def _entries(kb):
    index = VectorIndex.load(index_dir(kb, read_meta(kb)))
    return sorted((e.id, e.content_hash, e.source) for e in stored_entries(index))


def test_reindex_reads_only_the_files_that_changed(help_centre, tiny_model, reads, tmp_path):
    kb = tmp_path / "kb"
    first = build_index(help_centre, kb, model=str(tiny_model))
    assert (first.files_read, first.files_unchanged) == (6, 0)
    changed = help_centre / "billing" / "article-3.md"
    changed.write_text(ARTICLE.format(n=3) + "Or call us.\n", encoding="utf-8")
    (help_centre / "billing" / "article-4.md").unlink()
    (help_centre / "billing" / "article-5.md").write_text(ARTICLE.format(n=5), encoding="utf-8")
    reads.clear()
    report = build_index(help_centre, kb)
    # Before: every file read and split again (21 s for 20,000 articles) to find these two.
    assert sorted(reads) == ["billing/article-3.md", "billing/article-5.md"]
    assert (report.files_read, report.files_unchanged) == (2, 4)
    assert (report.added, report.updated, report.removed, report.unchanged) == (2, 1, 2, 10)
    assert "4 of 6 files unchanged (not read again)" in report.summary()
    # The same entries as a KB built from the same files read whole.
    fresh = build_index(help_centre, tmp_path / "fresh", model=str(tiny_model))
    assert _entries(kb) == _entries(tmp_path / "fresh") and fresh.entries == report.entries
    reads.clear()
    again = build_index(help_centre, kb)
    assert reads == [] and (again.files_read, again.files_unchanged) == (0, 6)


def test_a_file_touched_without_a_change_is_hashed_not_split(
    help_centre, tiny_model, reads, tmp_path, monkeypatch
):
    kb = tmp_path / "kb"
    build_index(help_centre, kb, model=str(tiny_model))
    for path in (help_centre / "faq.csv", help_centre / "billing" / "article-0.md"):
        info = path.stat()
        path.write_bytes(path.read_bytes())  # a checkout or a copy: new mtime, same bytes
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns - 30 * 10**9))
    reads.clear()
    hashed = []
    file_hash = sourcerecord._file_hash

    def counted(path):
        hashed.append(path.name)
        return file_hash(path)

    monkeypatch.setattr(sourcerecord, "_file_hash", counted)
    report = build_index(help_centre, kb)
    assert reads == [] and sorted(hashed) == ["article-0.md", "faq.csv"]
    assert report.unchanged == report.entries
    # Their new size and mtime are recorded: the next run opens nothing.
    hashed.clear()
    build_index(help_centre, kb)
    assert reads == [] and hashed == []


def test_a_file_changed_in_the_mtime_tick_it_was_read_in_is_read_again(
    help_centre, tiny_model, reads, tmp_path
):
    kb = tmp_path / "kb"
    article = help_centre / "billing" / "article-1.md"
    os.utime(article)  # written just now: its mtime may not move on the next write
    build_index(help_centre, kb, model=str(tiny_model))
    before = article.stat()
    # Same size, same mtime (a write within the file system's mtime tick), other words.
    article.write_text(ARTICLE.format(n=7), encoding="utf-8")
    os.utime(article, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert article.stat().st_size == before.st_size
    reads.clear()
    report = build_index(help_centre, kb)
    assert reads == ["billing/article-1.md"] and report.updated == 2


def test_a_changed_splitter_setting_splits_every_file_again(
    help_centre, tiny_model, reads, tmp_path, monkeypatch
):
    kb = tmp_path / "kb"
    first = build_index(help_centre, kb, model=str(tiny_model))
    monkeypatch.setattr(documents, "MAX_WORDS", 12)
    reads.clear()
    report = build_index(help_centre, kb)
    assert len(reads) == 6 and report.files_unchanged == 0
    assert report.entries > first.entries  # the long sections are cut in two now
    # Other FAQ columns are another reading too.
    reads.clear()
    build_index(help_centre, kb, columns=kb_module.FaqColumns(category="none"))
    assert len(reads) == 6


def test_a_new_document_with_the_same_name_splits_the_old_one_again(
    help_centre, tiny_model, reads, tmp_path
):
    kb = tmp_path / "kb"
    build_index(help_centre, kb, model=str(tiny_model))
    (help_centre / "shipping").mkdir()
    (help_centre / "shipping" / "article-2.md").write_text(ARTICLE.format(n=9), encoding="utf-8")
    reads.clear()
    build_index(help_centre, kb)
    # Two article-2.md: their passage ids now start with their paths, the unchanged one's too.
    assert sorted(reads) == ["billing/article-2.md", "shipping/article-2.md"]
    ids = {e[0] for e in _entries(kb)}
    assert "article-2#reset-a-password" not in ids
    assert {
        "billing/article-2.md#reset-a-password",
        "shipping/article-2.md#reset-a-password",
    } <= ids


def test_a_kb_without_a_record_or_with_a_damaged_one_reads_every_file(
    help_centre, tiny_model, reads, tmp_path
):
    kb = tmp_path / "kb"
    build_index(help_centre, kb, model=str(tiny_model))
    record = kb / read_meta(kb)[sourcerecord.KEY]
    record.write_text("{not json", encoding="utf-8")
    reads.clear()
    build_index(help_centre, kb)
    assert len(reads) == 6
    # An index written before the record (kb.json names none) reads them all once, too.
    meta = json.loads((kb / "kb.json").read_text())
    del meta[sourcerecord.KEY]
    (kb / "kb.json").write_text(json.dumps(meta))
    reads.clear()
    build_index(help_centre, kb)
    assert len(reads) == 6
    assert len(list(kb.glob("sources-*.json"))) == 1  # the records nothing names are removed


def test_index_killed_at_any_rename_leaves_the_record_with_its_index(
    help_centre, tiny_model, tmp_path
):
    work = tmp_path / "work"
    work.mkdir()
    sources = work / "sources"
    shutil.copytree(help_centre, sources)
    kb = tmp_path / "kb"
    build_index(sources, kb, model=str(tiny_model))
    (sources / "billing" / "article-0.md").write_text(ARTICLE.format(n=8), encoding="utf-8")
    (sources / "billing" / "article-1.md").unlink()
    total = kill_everywhere(kb, work, "index")
    expected = _entries(work / "after")
    for n in range(1, total + 1):
        killed = work / f"kill{n}"
        # The next night's run from whatever the kill left gives what a whole run gives: a
        # record switched before its index would say article-0 was read as it is now, and
        # the KB would keep its old passages for good.
        build_index(sources, killed)
        assert _entries(killed) == expected, f"killed at rename {n} of {total}"


def test_another_encoder_is_refused_before_any_file_is_read(
    help_centre, tiny_model, reads, tmp_path
):
    kb = tmp_path / "kb"
    build_index(help_centre, kb, model=str(tiny_model))
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model, other)
    (help_centre / "billing" / "article-0.md").write_text(ARTICLE.format(n=8), encoding="utf-8")
    reads.clear()
    with pytest.raises(UserInputError, match="built with another encoder"):
        build_index(help_centre, kb, model=str(other))
    # Before: refused after every file was read and split (two minutes at 20,000 articles).
    assert reads == []
