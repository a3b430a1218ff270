"""Hostile data files: each ends in one ``DataError`` naming file, row and column, and valid data
holding unusual characters is read with the right row numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.data import readers
from tunesmith.data.load import load_text_dataset, load_token_dataset, read_texts
from tunesmith.data.readers import read_conll, read_jsonl
from tunesmith.errors import DataError, UserInputError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def jsonl(path: Path, *lines: str) -> Path:
    return write(path, "".join(line + "\n" for line in lines))


GOOD = ['{"text": "a", "label": "x"}', '{"text": "b", "label": "y"}']


# --- JSON past the limits: RecursionError and ValueError used to escape --------------------------


@pytest.mark.parametrize("load", [load_text_dataset, read_texts])
def test_jsonl_value_nested_100000_levels_is_a_data_error_at_its_row(tmp_path, load):
    deep = "[" * 100_000 + "]" * 100_000
    path = jsonl(tmp_path / "d.jsonl", *GOOD, f'{{"text": "c", "label": "x", "x": {deep}}}')
    with pytest.raises(DataError, match=r"d\.jsonl:3: a JSON value is nested more than 100"):
        load(path)


def test_jsonl_value_nested_just_past_the_limit_is_refused_and_at_it_is_read(tmp_path):
    at = jsonl(tmp_path / "at.jsonl", '{"text": "c", "x": ' + "[" * 99 + "]" * 99 + "}")
    assert read_texts(at) == ["c"]
    past = jsonl(tmp_path / "past.jsonl", '{"text": "c", "x": ' + "[" * 100 + "]" * 100 + "}")
    with pytest.raises(DataError, match=r"past\.jsonl:1: a JSON value is nested more than 100"):
        read_texts(past)


def test_jsonl_5000_digit_integer_is_a_data_error_at_its_row(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", *GOOD, '{"text": "c", "label": ' + "7" * 5000 + "}")
    with pytest.raises(DataError, match=r"d\.jsonl:3: a JSON number has more than 4,300 digits"):
        load_text_dataset(path)


def test_json_array_nested_deep_is_a_data_error_at_the_record_line(tmp_path):
    deep = "[" * 50_000 + "]" * 50_000
    path = write(tmp_path / "d.json", f'[\n{{"text": "a", "label": "x"}},\n{{"x": {deep}}}\n]\n')
    with pytest.raises(DataError, match=r"d\.json:3: a JSON value is nested"):
        load_text_dataset(path)


def test_lone_surrogate_escape_in_a_text_is_a_data_error_naming_the_column(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", *GOOD, '{"text": "bad \\ud800 text", "label": "x"}')
    with pytest.raises(DataError, match=r"d\.jsonl:3, column 'text': .*U\+D800.*lone surrogate"):
        load_text_dataset(path)


# --- CSV: an unclosed quote was one merged text in predict ---------------------------------------


@pytest.mark.parametrize("load", [load_text_dataset, read_texts])
def test_csv_unclosed_quote_names_the_line_it_opens_on(tmp_path, load):
    path = write(tmp_path / "d.csv", 'text,label\nfine,a\n"never closed,b\nmore,a\nrest,b\n')
    with pytest.raises(DataError, match=r"d\.csv:3: a quoted field starts on this line .*unclosed"):
        load(path)


def test_csv_text_after_a_closing_quote_is_refused_not_glued(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label\n"hello" there,a\n')
    with pytest.raises(DataError, match=r"d\.csv:2: text follows the closing quote"):
        read_texts(path)


def test_csv_field_past_the_field_limit_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_FIELD_CHARS", 10)
    import csv

    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(10)
        path = write(tmp_path / "d.csv", "text,label\n" + "x" * 50 + ",a\n")
        with pytest.raises(DataError, match=r"d\.csv:2: a field is longer than 10 characters"):
            read_texts(path)
    finally:
        csv.field_size_limit(limit)


def test_text_longer_than_the_text_limit_is_a_data_error(tmp_path, monkeypatch):
    from tunesmith.data import limits

    monkeypatch.setattr(limits, "MAX_FIELD_CHARS", 10)
    path = jsonl(tmp_path / "d.jsonl", '{"text": "' + "x" * 11 + '"}')
    with pytest.raises(DataError, match=r"d\.jsonl:1, column 'text': the text has 11 characters"):
        read_texts(path)


def test_file_larger_than_the_file_limit_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_FILE_BYTES", 100)
    path = write(tmp_path / "d.csv", "text,label\n" + "a,b\n" * 40)
    with pytest.raises(DataError, match=r"d\.csv: the file is .* GiB"):
        read_texts(path)


# --- labels: only text, whole numbers and true/false ---------------------------------------------


@pytest.mark.parametrize(
    ("label", "found"),
    [
        ('{"name": "x"}', "found an object"),
        ('[["a", "b"]]', "found a list inside the label list"),
        ("0.5", "fractional number"),
    ],
)
def test_label_that_is_not_a_name_is_a_data_error_at_its_row(tmp_path, label, found):
    path = jsonl(tmp_path / "d.jsonl", *GOOD, f'{{"text": "c", "label": {label}}}')
    with pytest.raises(DataError, match=rf"d\.jsonl:3, column 'label': .*{found}"):
        load_text_dataset(path)


def test_bytes_label_from_parquet_is_a_data_error(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "label": [b"x", b"y"]}), path)
    with pytest.raises(DataError, match=r"d\.parquet:1, column 'label': .*found bytes"):
        load_text_dataset(path)


def test_whole_number_labels_and_booleans_are_names(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", '{"text": "a", "label": 3}', '{"text": "b", "label": 4.0}')
    assert load_text_dataset(path).labels == [["3"], ["4"]]


def test_boolean_labels_are_named_as_json_and_a_csv_file_write_them(tmp_path):
    path = jsonl(
        tmp_path / "d.jsonl", '{"text": "a", "label": true}', '{"text": "b", "label": false}'
    )
    csv_path = write(tmp_path / "d.csv", "text,label\na,true\nb,false\n")
    assert load_text_dataset(path).labels == load_text_dataset(csv_path).labels
    assert load_text_dataset(path).label_names == ["false", "true"]
    assert load_text_dataset(
        jsonl(tmp_path / "m.jsonl", '{"text": "a", "label": [true]}')
    ).labels == [["true"]]


def test_one_list_label_among_single_labels_is_refused_naming_its_row(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", *GOOD, '{"text": "c", "label": ["x", "y"]}', GOOD[0])
    with pytest.raises(DataError, match=r"d\.jsonl:3, column 'label': this label is a list but 3"):
        load_text_dataset(path)


def test_one_single_label_among_lists_is_refused_naming_its_row(tmp_path):
    lists = ['{"text": "a", "label": ["x"]}', '{"text": "b", "label": ["x", "y"]}']
    path = jsonl(tmp_path / "d.jsonl", *lists, '{"text": "c", "label": "y"}')
    with pytest.raises(DataError, match=r"d\.jsonl:3, column 'label': this label is a single"):
        load_text_dataset(path)


def test_all_list_labels_are_multilabel(tmp_path):
    lists = ['{"text": "a", "label": ["x"]}', '{"text": "b", "label": ["x", "y"]}']
    data = load_text_dataset(jsonl(tmp_path / "d.jsonl", *lists))
    assert data.multilabel and data.labels == [["x"], ["x", "y"]]


# --- line breaks: U+2028 and U+0085 are characters, not lines ------------------------------------


def test_jsonl_string_holding_u2028_and_u0085_is_read_with_the_right_rows(tmp_path):
    rows = [
        json.dumps({"text": "one\u2028two", "label": "x"}, ensure_ascii=False),
        json.dumps({"text": "three\u0085four", "label": "y"}, ensure_ascii=False),
    ]
    path = jsonl(tmp_path / "d.jsonl", rows[0], "", rows[1])
    data = load_text_dataset(path)
    assert data.texts == ["one\u2028two", "three\u0085four"]
    assert data.rows == [1, 3]


def test_conll_token_holding_u2028_is_a_token_and_rows_stay_right(tmp_path):
    path = write(tmp_path / "d.conll", "a\u2028b\tB-X\nc\u0085\tO\n\nd\tB-X\n")
    data = load_token_dataset(path)
    assert data.tokens == [["a\u2028b", "c\u0085"], ["d"]]
    assert data.rows == [1, 4]


def test_crlf_and_lone_cr_line_ends_count_as_editors_count_them(tmp_path):
    path = write(tmp_path / "d.jsonl", GOOD[0] + "\r\n" + GOOD[1] + "\r" + '{"text": oops}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:3: invalid JSON"):
        list(read_jsonl(path))


# --- CoNLL: a line without a tab dropped words ---------------------------------------------------


def test_conll_line_without_a_tab_in_a_tab_file_is_a_data_error_naming_the_line(tmp_path):
    path = write(tmp_path / "d.conll", "I\tO\nlive\tO\nNew York B-location\n")
    with pytest.raises(DataError, match=r"d\.conll:3, column 'tag': this line has no tab"):
        load_token_dataset(path)


def test_space_separated_conll_with_a_token_holding_a_space_is_refused(tmp_path):
    path = write(tmp_path / "d.conll", "I O\nlive O\nNew York B-location\n")
    with pytest.raises(DataError, match=r"d\.conll:3, column 'tag': this line has 3 space"):
        list(read_conll(path))


def test_space_separated_conll_2003_columns_read_token_first_tag_last(tmp_path):
    path = write(tmp_path / "d.conll", "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    data = load_token_dataset(path)
    assert data.tokens == [["EU", "rejects"]] and data.tags == [["B-ORG", "O"]]


def test_conll_empty_token_before_the_tab_is_a_data_error(tmp_path):
    path = write(tmp_path / "d.conll", "a\tO\n\tB-X\n")
    with pytest.raises(DataError, match=r"d\.conll:2, column 'token': empty token"):
        load_token_dataset(path)


# --- a tagger with nothing to tag ----------------------------------------------------------------


def test_ner_file_with_only_o_tags_is_refused_as_a_one_class_classifier_is(cli, tmp_path):
    path = write(tmp_path / "d.conll", "I\tO\nlive\tO\n\nhere\tO\n")
    result = cli("train", "--data", str(path), "--out", str(tmp_path / "model"))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"Error: {path}, column 'tag': only 'O' tags in the data; a tagger needs at least one "
        "entity type (B-TYPE/I-TYPE tags)"
    )


def test_parquet_string_that_is_not_utf8_is_a_data_error_at_its_row(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    raw = pa.array([b"ok", b"\xcf"], type=pa.binary())
    strings = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())  # not validated
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": strings, "label": ["a", "b"]}), path)
    with pytest.raises(DataError, match=r"d\.parquet:2: cannot read this row .*utf-8"):
        read_texts(path)


def test_empty_label_separator_is_a_user_error_for_every_command_that_loads_labels(tmp_path):
    # evaluate and calibrate pass --label-sep straight here (train checks it in RunConfig).
    path = write(tmp_path / "d.csv", "text,label\na,x|y\nb,y\n")
    with pytest.raises(UserInputError, match="--label-sep '' is not valid"):
        load_text_dataset(path, label_sep="")


def test_device_or_pipe_given_as_data_is_refused_without_reading_it(tmp_path):
    import os

    zero = tmp_path / "zero.csv"
    os.symlink("/dev/zero", zero)  # would be read forever
    with pytest.raises(DataError, match=r"zero\.csv: not a regular file"):
        read_texts(zero)
    pipe = tmp_path / "pipe.jsonl"
    os.mkfifo(pipe)  # would block forever
    with pytest.raises(DataError, match=r"pipe\.jsonl: not a regular file"):
        load_text_dataset(pipe)


def test_a_folder_given_to_the_readers_is_called_a_folder_whatever_its_name(tmp_path):
    from tunesmith.data.readers import check_file_size, reader_for

    # Plugins read through the readers directly (not load_text_dataset's own check): a folder
    # was "not a regular file (a device or a pipe?)", or had "no reader for no suffix".
    for name in ("runs.csv", "runs"):  # with a data suffix, and with none
        folder = tmp_path / name
        folder.mkdir()
        for read in (reader_for, check_file_size, read_texts):
            with pytest.raises(DataError, match=rf"{name}: this is a folder; give a data file"):
                read(folder)


def test_a_missing_column_names_the_file_and_column_not_the_first_data_row(tmp_path):
    path = tmp_path / "wrongcols.csv"
    path.write_text("a,b\nx,y\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_texts(path, text_col="text")
    assert str(caught.value).startswith(f"{path}, column 'text': there is no column 'text'")


def test_a_missing_column_lists_a_broken_header_in_one_short_line(tmp_path):
    # A 200,000-character "column" (an unclosed quote in the header) was echoed whole, and a
    # NUL byte in a column name printed raw.
    header = "b" * 200_000 + ",na\x00me," + ",".join(f"c{i}" for i in range(30))
    path = write(tmp_path / "wide.csv", header + "\n" + ",".join(["x"] * 32) + "\n")
    with pytest.raises(DataError) as caught:
        load_text_dataset(path, text_col="text", label_col="label")
    message = str(caught.value)
    assert len(message) < 600 and "\x00" not in message
    assert "b" * 40 + "..." in message and "na\\x00me" in message and "and 12 more" in message
