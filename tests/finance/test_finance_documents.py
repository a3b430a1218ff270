from __future__ import annotations

from datetime import UTC

import pytest

from tunesmith.errors import UserInputError
from tunesmith_finance.documents import RowError, parse_time, resolve_zone, to_document


def test_times_with_zones_are_normalised_to_utc():
    doc = to_document({"id": "a", "time": "2026-11-05T14:30:00+01:00", "text": "x"})
    assert doc.time == "2026-11-05T13:30:00Z"
    assert to_document({"id": "a", "time": "2026-11-05T13:30:00Z", "text": "x"}).ts == doc.ts
    west = to_document({"id": "a", "time": "2026-11-05T08:30:00-05:00", "text": "x"})
    assert west.ts == doc.ts


def test_naive_times_are_read_in_the_naive_zone():
    assert parse_time("2026-11-05 12:00").isoformat() == "2026-11-05T12:00:00+00:00"
    berlin = parse_time("2026-11-05 12:00", resolve_zone("Europe/Berlin"))
    assert berlin.isoformat() == "2026-11-05T11:00:00+00:00"


def test_unix_seconds_and_milliseconds_are_times():
    assert parse_time(1793836800).tzinfo is UTC
    assert parse_time("1793836800000") == parse_time(1793836800)


@pytest.mark.parametrize("value", [None, "", "yesterday", "2026-13-40", True, [1]])
def test_missing_or_unparsable_times_are_row_errors(value):
    with pytest.raises(RowError):
        to_document({"id": "a", "time": value, "text": "x"})


def test_a_placeholder_time_in_year_one_is_a_row_error_not_a_date():
    # .NET's "no date": read as a time, a 7 h trends bucket started before year 1 and crashed
    with pytest.raises(RowError, match="before the year 1000: a placeholder"):
        to_document({"id": "a", "time": "0001-01-01T00:00:00", "text": "x"})
    assert to_document({"id": "a", "time": "1929-10-29T15:00:00Z", "text": "x"}).time == (
        "1929-10-29T15:00:00Z"
    )


def test_an_unknown_zone_name_is_a_user_error():
    with pytest.raises(UserInputError, match="Mars/Olympus"):
        resolve_zone("Mars/Olympus")


def test_a_huge_text_is_cut_and_flagged():
    doc = to_document({"id": "a", "time": "2026-11-05", "text": "y" * 9000}, max_chars=100)
    assert (len(doc.text), doc.chars, doc.truncated) == (100, 9000, True)


def test_a_row_without_id_gets_a_stable_content_id():
    row = {"time": "2026-11-05T10:00:00Z", "source": "s", "text": "same"}
    first, again = to_document(row), to_document(dict(row))
    assert first.id.startswith("sha1:") and first.id == again.id
    assert to_document({**row, "text": "other"}).id != first.id


def test_field_aliases_and_ticker_strings_are_read():
    doc = to_document(
        {"doc_id": 7, "timestamp": "2026-11-05", "headline": "h", "ticker": "AAA; $bbb"}
    )
    assert (doc.id, doc.text, doc.tickers) == ("7", "h", ["AAA", "$bbb"])


@pytest.mark.parametrize(
    "row",
    [{"id": "a", "time": "2026-11-05"}, {"id": "a", "time": "2026-11-05", "text": "  "}, ["a"]],
)
def test_rows_without_text_or_not_objects_are_row_errors(row):
    with pytest.raises(RowError):
        to_document(row)


def test_a_lone_surrogate_from_a_cut_emoji_becomes_a_replacement_character_not_a_crash(
    db, tmp_path
):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester

    path = tmp_path / "tweets.jsonl"
    path.write_text(
        '{"id": "t1\\udc00", "time": "2026-11-02T10:00:00Z", "source": "x\\ud800", '
        '"topic": "y\\ud800", "text": "Helix Bank falls \\ud83d"}\n'
    )
    report = Ingester(db, KeywordModel(), warn=lambda _m: None).ingest_file(path)
    assert report.added == 1
    row = db.query("SELECT id, source, text FROM finance_documents")[0]
    assert tuple(row) == ("t1\ufffd", "x\ufffd", "Helix Bank falls \ufffd")
