"""What a large knowledge base (100,000 passages, re-indexed nightly) must not pay for: work
repeated per entry, payloads twice their size, batches padded to their longest text, a log
that says nothing for hours. Counted on small KBs, not timed."""

from __future__ import annotations

import hashlib
import sys

from test_kb import FAQ, write_faq

from tunesmith.retrieval import VectorIndex
from tunesmith_support import kb as kb_module
from tunesmith_support.kbindex import (
    build_index,
    load_encoder,
    open_index,
    stored_entries,
    upsert_entries,
)

DOC = """# Help centre

## Reset a password

Open Settings, choose Security and then Reset password.

## Change the plan

Billing lists the plans. Choose one and confirm; the new price applies from the next
invoice, and the unused days of the old plan are credited to the account.

## Close the account

Write to us.
"""


def _sources(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_faq(src / "faq.csv", FAQ)
    (src / "guide.md").write_text(DOC, encoding="utf-8")
    return src


def test_reindex_reads_the_stored_payloads_in_one_pass_not_one_query_per_vector(
    tmp_path, tiny_model, monkeypatch
):
    src = _sources(tmp_path)
    kb = tmp_path / "kb"
    build_index(src, kb, model=str(tiny_model))
    write_faq(src / "faq.csv", [dict(FAQ[0], answer="Click 'Forgot password'."), *FAQ[1:]])
    calls = {"get": 0, "items": 0}
    get, items = VectorIndex.get, VectorIndex.items

    def counted_get(self, item_id):
        calls["get"] += 1
        return get(self, item_id)

    def counted_items(self):
        calls["items"] += 1
        return items(self)

    monkeypatch.setattr(VectorIndex, "get", counted_get)
    monkeypatch.setattr(VectorIndex, "items", counted_items)
    report = build_index(src, kb)
    assert (report.updated, report.unchanged) == (1, 5)
    # Before: one locked SQLite query and JSON parse per vector (100,000 at a time).
    assert calls["get"] <= 2  # the changed entry's own vectors at most
    assert calls["items"] == 1
    calls.update(get=0, items=0)
    entries = stored_entries(open_index(kb, load_encoder(kb)))  # a server's start, a reload
    assert len(entries) == 6 and calls == {"get": 0, "items": 1}


def test_an_entry_payload_does_not_store_the_encoded_text_a_second_time(tmp_path, tiny_model):
    src = _sources(tmp_path)
    kb = tmp_path / "kb"
    build_index(src, kb, model=str(tiny_model))
    index = open_index(kb, load_encoder(kb))
    payloads = dict(index.items())
    assert payloads["a::q"]["question"] == "how do I reset my password"
    assert payloads["guide#reset-a-password::a"]["answer"].startswith("Open Settings")
    # Before, each payload carried "text" too: the heading and answer again, which doubled the
    # table every re-index writes and every server load reads.
    assert not [vid for vid, payload in payloads.items() if "text" in payload]
    assert [e.id for e in stored_entries(index)] == [
        "a",
        "b",
        "c",
        "guide#reset-a-password",
        "guide#change-the-plan",
        "guide#close-the-account",
    ]


def test_reindex_hashes_each_entry_read_once(tmp_path, tiny_model, monkeypatch):
    src = _sources(tmp_path)
    kb = tmp_path / "kb"
    build_index(src, kb, model=str(tiny_model))
    hashed = []

    class CountingHashlib:
        def __getattr__(self, name):
            return getattr(hashlib, name)

        def sha256(self, data=b""):
            hashed.append(data)
            return hashlib.sha256(data)

    guide = src / "guide.md"
    guide.write_text(guide.read_text(encoding="utf-8") + "Or call us.\n", encoding="utf-8")
    monkeypatch.setattr(kb_module, "hashlib", CountingHashlib())
    report = build_index(src, kb)
    # The guide's three passages read; before, each was hashed again for the diff, the
    # moved-file check and every payload (five times a passage at 100,000 passages). The
    # unchanged FAQ file is not read at all: its entries keep their stored hashes.
    assert (report.updated, report.unchanged) == (1, 5)
    assert len(hashed) == 3


def test_texts_are_encoded_shortest_first_and_stored_in_entry_order(tmp_path, tiny_model):
    src = _sources(tmp_path)
    kb = tmp_path / "kb"
    build_index(src, kb, model=str(tiny_model))
    index = open_index(kb, load_encoder(kb))
    entries = stored_entries(index)
    calls: list[list[str]] = []
    encode = index.encoder.encode

    def recording(texts, **options):
        calls.append(list(texts))
        return encode(texts, **options)

    index.encoder.encode = recording
    told: list[tuple[int, int]] = []
    fresh = VectorIndex.create(tmp_path / "fresh", encoder=index.encoder)
    upsert_entries(fresh, entries, batch=4, progress=lambda done, total: told.append((done, total)))
    texts = [text for call in calls for text in call]
    # A batch pads to its longest text: in file order, a short FAQ question shared a batch
    # with the longest passage.
    assert [len(t) for t in texts] == sorted(len(t) for t in texts)
    assert len(texts) == 9 and [len(c) for c in calls] == [4, 4, 1]
    assert told == [(0, 6), (2, 6), (5, 6), (6, 6)]
    assert fresh.ids() == index.ids()
    for vector_id in index.ids():
        assert (abs(fresh.vector(vector_id) - index.vector(vector_id)) < 1e-5).all()


def test_a_long_index_logged_to_a_file_says_how_far_it_is(monkeypatch, capsys):
    from tunesmith_support.commands.index import _progress_bar

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    update = _progress_bar("encoding")
    for done in range(0, 100_001, 256):
        update(done, 100_000)
    update(100_000, 100_000)
    lines = capsys.readouterr().err.splitlines()
    # Before: a nightly job's log showed nothing for the hours a first index takes.
    assert lines[0] == "encoding: 0 of 100,000 entries"
    assert lines[-1] == "encoding: 100,000 of 100,000 entries"
    assert len(lines) == 11
    small = _progress_bar("encoding")
    small(0, 60)
    small(60, 60)
    assert capsys.readouterr().err == ""  # the sample KB's index stays quiet
