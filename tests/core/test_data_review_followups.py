"""Follow-ups of the data reviews: texts read under several column names, time messages."""

from __future__ import annotations

import pytest

from tunesmith.data.load import read_texts
from tunesmith.errors import DataError

FEED_FIELDS = ("text", "headline", "title")


def test_read_texts_with_several_columns_reads_whichever_the_file_has(tmp_path):
    jsonl = tmp_path / "feed.jsonl"
    jsonl.write_text(
        '{"headline": "Helix falls"}\n{"title": "Orcana rises"}\n{"text": "Crown flat"}\n',
        encoding="utf-8",
    )
    assert read_texts(jsonl, text_col=FEED_FIELDS) == ["Helix falls", "Orcana rises", "Crown flat"]
    csv_file = tmp_path / "feed.csv"
    csv_file.write_text("id,headline\n1,Helix falls\n", encoding="utf-8")
    assert read_texts(csv_file, text_col=FEED_FIELDS) == ["Helix falls"]


def test_read_texts_with_several_columns_takes_the_first_with_a_value_in_each_row(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text("text,headline\nbody one,head one\n,head two\n", encoding="utf-8")
    assert read_texts(path, text_col=FEED_FIELDS) == ["body one", "head two"]


def test_read_texts_with_several_columns_names_them_all_when_none_is_there(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text("id,body\n1,hello\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no column 'text' \(nor headline, title\)"):
        read_texts(path, text_col=FEED_FIELDS)


def test_read_texts_with_several_columns_still_names_an_empty_row(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text("text,headline\nbody,head\n,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"feed\.csv:3, column 'text': empty value"):
        read_texts(path, text_col=FEED_FIELDS)


@pytest.mark.parametrize("value", ["next tuesday", True])
def test_an_unparsable_time_says_every_format_the_core_reads(value):
    from tunesmith.data.times import UnparsableTimeError, parse_time

    with pytest.raises(UnparsableTimeError) as info:
        parse_time(value)
    assert str(info.value) == (
        f"unparsable time {info.value.shown} (expected ISO 8601, YYYYMMDD or Unix seconds)"
    )
    assert info.value.shown == repr(value)
