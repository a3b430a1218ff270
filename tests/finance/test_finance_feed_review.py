"""Behaviours found wiring real feeds into ingest and watch: RSS and Twitter times, rotated logs."""

from __future__ import annotations

import pytest

from tunesmith_finance.documents import RowError, parse_time, resolve_zone, to_document


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("Thu, 05 Nov 2026 14:03:00 GMT", "2026-11-05T14:03:00Z"),  # RSS pubDate
        ("Thu, 05 Nov 2026 09:03:00 -0500", "2026-11-05T14:03:00Z"),
        ("Thu, 05 Nov 2026 09:03:00 EST", "2026-11-05T14:03:00Z"),
        ("Thu Nov 05 14:03:00 +0000 2026", "2026-11-05T14:03:00Z"),  # Twitter's created_at
    ],
)
def test_rss_and_twitter_times_are_read_with_their_zone(value, utc):
    assert to_document({"id": "a", "published": value, "text": "x"}).time == utc


def test_an_rss_time_without_a_zone_is_read_in_the_naive_zone():
    berlin = parse_time("Thu, 05 Nov 2026 15:03:00 -0000", resolve_zone("Europe/Berlin"))
    assert berlin.isoformat() == "2026-11-05T14:03:00+00:00"


def test_an_rss_time_with_an_unknown_zone_name_is_a_row_error_not_a_naive_time():
    # Read as naive (UTC), CET would move the document by an hour without a word.
    with pytest.raises(RowError, match="unknown time zone 'CET'"):
        parse_time("Thu, 05 Nov 2026 15:03:00 CET")


def test_lines_written_around_a_log_rotation_by_rename_are_not_lost(db, tmp_path):
    import json
    import threading

    from finance_fakes import KeywordModel, doc, wait_for

    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.storage import count_documents
    from tunesmith_finance.watch import watch_folder

    folder = tmp_path / "inbox"
    folder.mkdir()
    feed = folder / "feed.jsonl"
    warnings: list[str] = []
    reports = []
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_folder,
        args=(Ingester(db, KeywordModel(), warn=warnings.append), folder),
        kwargs={"stop_event": stop, "log": lambda _m: None, "on_pass": reports.append},
        daemon=True,
    )
    writer = feed.open("a", encoding="utf-8")
    thread.start()
    try:
        writer.write(json.dumps(doc(1)) + "\n")
        writer.flush()
        assert wait_for(lambda: count_documents(db) == 1, timeout=10)
        # logrotate without copytruncate: the line written just before the rename, and the one
        # the writer still adds to its open (now renamed) file, are only in feed.jsonl.1.
        writer.write(json.dumps(doc(2)) + "\n")
        writer.flush()
        feed.rename(folder / "feed.jsonl.1")
        writer.write(json.dumps(doc(3)) + "\n")
        writer.flush()
        feed.write_text(json.dumps(doc(4)) + "\n", encoding="utf-8")
        assert wait_for(lambda: count_documents(db) == 4, timeout=10), count_documents(db)
        # Rotated once more: its progress moves along, nothing is read twice.
        (folder / "feed.jsonl.1").rename(folder / "feed.jsonl.2")
        writer.write(json.dumps(doc(5)) + "\n")
        writer.flush()
        assert wait_for(lambda: count_documents(db) == 5, timeout=10), count_documents(db)
    finally:
        writer.close()
        stop.set()
        thread.join(timeout=10)
    assert sum(r.read for r in reports) == 5
    assert not [w for w in warnings if "reading it again" in w]


def test_a_gzip_feed_is_refused_with_the_command_that_reads_it():
    from tunesmith.errors import UserInputError
    from tunesmith_finance.sources import format_of

    with pytest.raises(
        UserInputError, match=r"zcat a\.csv\.gz \| tunesmith finance ingest - --format csv"
    ):
        format_of("a.csv.gz")


def test_progress_moves_along_a_chain_of_renames_in_one_step(db):
    from tunesmith_finance.storage import get_progress, move_progress, set_progress

    with db.transaction() as tx:
        set_progress(tx, "/f/feed.jsonl", 30, 3, None, "new")
        set_progress(tx, "/f/feed.jsonl.1", 90, 9, None, "old")
    with db.transaction() as tx:
        move_progress(
            tx, {"/f/feed.jsonl": "/f/feed.jsonl.1", "/f/feed.jsonl.1": "/f/feed.jsonl.2"}
        )
    assert get_progress(db, "/f/feed.jsonl") is None
    assert get_progress(db, "/f/feed.jsonl.1").offset == 30
    assert get_progress(db, "/f/feed.jsonl.2").offset == 90
