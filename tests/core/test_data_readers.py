"""Readers: CSV/TSV/JSONL/JSON/Parquet/CoNLL row dicts with line numbers, encodings, plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunesmith import hookimpl
from tunesmith.data.load import load_text_dataset
from tunesmith.data.readers import read_csv, read_json, read_jsonl, reader_for
from tunesmith.errors import DataError
from tunesmith.plugins import get_plugin_manager


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_carry_the_line_where_each_record_starts_even_after_quoted_newlines(tmp_path):
    path = write(
        tmp_path / "d.csv",
        'text,label\n"first line\nsecond line",a\n\nplain,b\n"x, y",c\n',
    )
    rows = list(read_csv(path))
    assert [r["__row__"] for r in rows] == [2, 5, 6]
    assert rows[0]["text"] == "first line\nsecond line"
    assert rows[2]["text"] == "x, y"


def test_csv_row_with_too_many_fields_names_file_and_line(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nok,a\nnot, quoted,b\n")
    with pytest.raises(DataError) as info:
        list(read_csv(path))
    assert str(info.value).startswith(f"{path}:3")
    assert "3 fields" in str(info.value)


def test_csv_header_naming_a_column_twice_is_an_error_naming_the_column(tmp_path):
    path = write(tmp_path / "d.csv", "question,answer,question\nfirst,a,second\n")
    with pytest.raises(DataError) as info:
        list(read_csv(path))
    assert str(info.value).startswith(f"{path}:1")
    assert "question" in str(info.value) and "columns 1 and 3" in str(info.value)


def test_csv_header_with_several_unnamed_columns_still_reads(tmp_path):
    # spreadsheets export trailing empty columns; only a real name twice loses data
    path = write(tmp_path / "d.csv", "text,label,,\nhi,a,,\n")
    assert [r["text"] for r in read_csv(path)] == ["hi"]


def test_tsv_is_read_by_suffix(tmp_path):
    path = write(tmp_path / "d.tsv", 'text\tlabel\nsay "hi"\tgreet\n')
    data = load_text_dataset(path)
    assert data.texts == ['say "hi"'] and data.labels == [["greet"]]


def test_jsonl_rows_are_line_numbers_and_bad_json_names_the_line(tmp_path):
    good = write(
        tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"}\n'
    )
    assert [r["__row__"] for r in read_jsonl(good)] == [1, 3]
    bad = write(tmp_path / "bad.jsonl", '{"text": "a", "label": "x"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: invalid JSON"):
        list(read_jsonl(bad))


def test_json_array_objects_get_the_line_they_start_on(tmp_path):
    path = write(
        tmp_path / "d.json",
        '[\n  {"text": "a", "label": "x"},\n  {\n    "text": "b",\n    "label": "y"\n  }\n]\n',
    )
    assert [r["__row__"] for r in read_json(path)] == [2, 3]


def test_json_that_is_not_an_array_is_a_data_error(tmp_path):
    path = write(tmp_path / "d.json", '{"text": "a"}')
    with pytest.raises(DataError, match="JSON array"):
        list(read_json(path))


def test_parquet_round_trip_keeps_texts_labels_and_record_numbers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    table = pa.table({"text": ["hello there", "refund please"], "label": ["greeting", "refund"]})
    pq.write_table(table, path)
    data = load_text_dataset(path)
    assert data.texts == ["hello there", "refund please"]
    assert data.labels == [["greeting"], ["refund"]]
    assert data.rows == [1, 2]


def test_parquet_null_text_names_record_and_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["fine", None], "label": ["a", "b"]}), path)
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    assert str(info.value).startswith(f"{path}:2, column 'text':")


def test_non_utf8_file_names_the_file_and_the_line_of_the_first_bad_byte(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nfine,a\ncaf\u00e9,b\n".encode("latin-1"))
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3, column 'text':")
    assert "not UTF-8" in message and "0xe9" in message


def test_utf8_byte_order_mark_does_not_end_up_in_the_first_column_name(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,label\nhi,a\n".encode())
    assert load_text_dataset(path).texts == ["hi"]


def test_unknown_suffix_lists_the_known_ones(tmp_path):
    path = write(tmp_path / "d.numbers", "whatever")
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    message = str(info.value)
    assert "no reader for files with .numbers" in message
    for suffix in (".csv", ".jsonl", ".parquet", ".conll"):
        assert suffix in message


class PipeReaderPlugin:
    """A throw-away plugin that reads 'text|label' lines from .pipe files."""

    @hookimpl
    def tunesmith_data_readers(self):
        def read_pipe(path):
            lines = Path(path).read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, start=1):
                text, label = line.split("|")
                yield {"text": text, "label": label, "__row__": number}

        return {".pipe": read_pipe}


@pytest.fixture
def pipe_plugin():
    pm = get_plugin_manager()
    pm.register(PipeReaderPlugin(), name="test-pipe-reader")
    yield
    pm.unregister(name="test-pipe-reader")


def test_a_plugin_adds_a_reader_for_a_new_suffix(tmp_path, pipe_plugin):
    path = write(tmp_path / "d.pipe", "hello|greeting\nmy card is gone|card_lost\n")
    data = load_text_dataset(path)
    assert data.texts == ["hello", "my card is gone"]
    assert data.label_names == ["card_lost", "greeting"]


def test_a_plugin_reader_is_gone_after_unregistering(tmp_path):
    with pytest.raises(DataError, match="no reader"):
        reader_for(tmp_path / "d.pipe")


class CsvOverridePlugin:
    @hookimpl
    def tunesmith_data_readers(self):
        return {".csv": lambda path: iter([{"text": "from plugin", "label": "p", "__row__": 2}])}


def test_a_later_plugin_reader_wins_over_the_builtin_for_the_same_suffix(tmp_path):
    pm = get_plugin_manager()
    pm.register(CsvOverridePlugin(), name="test-csv-override")
    try:
        data = load_text_dataset(write(tmp_path / "d.csv", "text,label\nreal,a\n"))
    finally:
        pm.unregister(name="test-csv-override")
    assert data.texts == ["from plugin"]
