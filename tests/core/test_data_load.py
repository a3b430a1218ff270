"""Loading and validating labelled text and token files; splitting them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.data.load import (
    load_text_dataset,
    load_token_dataset,
    read_texts,
    validate_labels_known,
)
from tunesmith.data.records import TextDataset
from tunesmith.data.split import stratified_split
from tunesmith.errors import DataError, UserInputError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_texts_labels_rows_and_sorted_label_names(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nhi,greeting\nlost my card,card_lost\n")
    data = load_text_dataset(path)
    assert data.texts == ["hi", "lost my card"]
    assert data.labels == [["greeting"], ["card_lost"]]
    assert data.label_names == ["card_lost", "greeting"]
    assert data.rows == [2, 3]
    assert data.multilabel is False
    assert data.source == str(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        load_text_dataset(tmp_path / "nope.csv")


def test_missing_label_column_names_file_and_column_and_lists_columns(tmp_path):
    path = write(tmp_path / "d.csv", "text,intent\nhi,greeting\n")
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    message = str(info.value)
    assert message.startswith(f"{path}, column 'label':")  # the file lacks it, not a row
    assert "the columns are: text, intent" in message


def test_other_column_names_are_used_when_given(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"utterance": "hi", "intent": "greeting"}\n')
    data = load_text_dataset(path, text_col="utterance", label_col="intent")
    assert data.texts == ["hi"] and data.labels == [["greeting"]]


def test_whitespace_only_text_names_file_row_and_column(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nfine,a\n   ,b\n")
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    assert str(info.value) == f"{path}:3, column 'text': empty value where a text is needed"


def test_empty_label_names_file_row_and_column(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nfine,a\nno label here,\n")
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    assert str(info.value).startswith(f"{path}:3, column 'label': empty value")


def test_nan_written_as_text_is_a_missing_value(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nnan,a\n")
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    assert str(info.value).startswith(f"{path}:2, column 'text': missing value written as 'nan'")


def test_json_null_and_nan_labels_are_missing_values(tmp_path):
    path = write(
        tmp_path / "d.jsonl",
        '{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n{"text": "c", "label": NaN}\n',
    )
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2, column 'label': missing value (null)")
    assert "(and 1 more problem in this file)" in message


def test_a_short_csv_row_says_it_has_fewer_fields_than_the_header(tmp_path):
    """A row that lost its separator was reported as "missing value (null)", as if the file
    held a null there: the row's field count is what the user must fix."""
    path = write(tmp_path / "d.csv", "text,label\nhi,greeting\nonly text\n")
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    assert str(info.value) == (
        f"{path}:3, column 'label': this row has 1 field but the header has 2 (a missing "
        "separator, or a line cut short?)"
    )
    tsv = write(tmp_path / "d.tsv", "id\tlabel\ttext\n1\tgreeting\thi\n2\tcard\n")
    with pytest.raises(DataError, match=r"d\.tsv:3, column 'text': this row has 2 fields but"):
        read_texts(tsv)


def test_a_short_row_may_leave_off_optional_columns(tmp_path):
    from tunesmith.data.readers import read_csv, short_row_problem

    path = write(tmp_path / "d.csv", "text,label,note\nhi,greeting,x\nbye,farewell\n")
    data = load_text_dataset(path)
    assert data.texts == ["hi", "bye"] and data.labels == [["greeting"], ["farewell"]]
    assert load_text_dataset(path, require_labels=False).texts == ["hi", "bye"]
    full, short = read_csv(path)
    assert short["note"] is None and short_row_problem(short, "note").startswith(
        "this row has 2 fields but the header has 3"
    )
    assert short_row_problem(short, "label") is None and short_row_problem(full, "note") is None
    # A JSON null is a missing value, not a short row.
    assert short_row_problem({"text": None, "__row__": 2}, "text") is None


def test_file_with_a_header_and_no_rows_is_an_error(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\n")
    with pytest.raises(DataError, match=r"d\.csv: the file has no data rows"):
        load_text_dataset(path)


def test_labels_may_be_missing_when_not_required(tmp_path):
    path = write(tmp_path / "d.csv", "text\nhello\nbye\n")
    data = load_text_dataset(path, require_labels=False)
    assert data.texts == ["hello", "bye"]
    assert data.labels == [[], []] and data.label_names == []


def test_label_separator_makes_multilabel_data(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\ncharged twice,billing|refund\nhi,greeting\n")
    data = load_text_dataset(path, label_sep="|")
    assert data.multilabel is True
    assert data.labels == [["billing", "refund"], ["greeting"]]
    assert data.label_names == ["billing", "greeting", "refund"]


def test_empty_part_of_a_multilabel_value_names_row_and_column(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\ncharged twice,billing|\n")
    with pytest.raises(DataError) as info:
        load_text_dataset(path, label_sep="|")
    assert str(info.value).startswith(f"{path}:2, column 'label': empty label between '|'")


def test_json_list_labels_are_multilabel(tmp_path):
    rows = [{"text": "a", "label": ["x", "y"]}, {"text": "b", "label": ["y"]}]
    path = write(tmp_path / "d.json", json.dumps(rows))
    data = load_text_dataset(path)
    assert data.multilabel and data.labels == [["x", "y"], ["y"]]


def test_a_json_list_written_in_a_csv_cell_is_refused_naming_its_row(tmp_path):
    """A CSV cell is text: '["billing", "refund"]' trained one label of that very name."""
    path = write(
        tmp_path / "d.csv",
        'text,label\nhi,greeting\nmy bill,"[""billing"", ""refund""]"\n',
    )
    with pytest.raises(DataError, match=r"d\.csv:3, column 'label': .*--label-sep"):
        load_text_dataset(path)
    # What it points to works: the cell split with --label-sep, and brackets that are no list.
    split = write(tmp_path / "s.csv", "text,label\nhi,greeting\nmy bill,billing|refund\n")
    assert load_text_dataset(split, label_sep="|").labels == [["greeting"], ["billing", "refund"]]
    odd = write(tmp_path / "o.csv", "text,label\nhi,[greeting]\nbye,[]\n")
    assert load_text_dataset(odd).labels == [["[greeting]"], ["[]"]]


def test_numeric_labels_become_strings(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n')
    assert load_text_dataset(path).label_names == ["0", "1"]


def test_read_texts_gives_texts_and_names_an_empty_one(tmp_path):
    path = write(tmp_path / "d.csv", "text\nhello\nbye\n")
    assert read_texts(path) == ["hello", "bye"]
    bad = write(tmp_path / "bad.csv", 'text\nhello\n""\n')
    with pytest.raises(DataError, match=r"bad\.csv:3, column 'text'"):
        read_texts(bad)


def test_unknown_eval_label_names_file_row_and_column(tmp_path):
    path = write(tmp_path / "eval.csv", "text,label\nhi,greeting\nhmm,mystery\n")
    data = load_text_dataset(path)
    with pytest.raises(DataError) as info:
        validate_labels_known(data, ["greeting", "card_lost"], path)
    message = str(info.value)
    assert message.startswith(f"{path}:3, column 'label': label 'mystery' is not one")
    assert "card_lost, greeting" in message
    validate_labels_known(load_text_dataset(path), ["greeting", "mystery"], path)


CONLL_BIO = """-DOCSTART- O

Maria\tB-PER
Lopez\tI-PER
lives\tO
in\tO
Madrid\tB-LOC

Acme\tB-ORG
hired\tO
Tom\tB-PER
"""


def test_conll_bio_is_detected_and_docstart_skipped(tmp_path):
    data = load_token_dataset(write(tmp_path / "d.conll", CONLL_BIO))
    assert data.scheme == "BIO"
    assert data.tokens == [["Maria", "Lopez", "lives", "in", "Madrid"], ["Acme", "hired", "Tom"]]
    assert data.tags[0] == ["B-PER", "I-PER", "O", "O", "B-LOC"]
    assert data.rows == [3, 9]
    assert data.notes == []
    assert data.label_names == ["B-LOC", "B-ORG", "B-PER", "I-PER", "O"]


def test_conll_io_is_detected_when_no_tag_starts_with_b(tmp_path):
    text = "SILICON I-ORG\nVALLEY I-ORG\nBANK I-ORG\nsigned O\n"
    data = load_token_dataset(write(tmp_path / "d.txt", text))
    assert data.scheme == "IO"
    assert data.tokens == [["SILICON", "VALLEY", "BANK", "signed"]]


def test_bio_entity_starting_with_i_is_accepted_and_reported(tmp_path):
    text = "Maria\tB-PER\nsaw\tO\nParis\tI-LOC\n"
    data = load_token_dataset(write(tmp_path / "d.conll", text), scheme="BIO")
    assert data.scheme == "BIO"
    assert len(data.notes) == 1 and "lines 3" in data.notes[0]


def test_b_tags_in_a_file_declared_io_name_the_line(tmp_path):
    path = write(tmp_path / "d.conll", "Maria\tI-PER\nParis\tB-LOC\n")
    with pytest.raises(DataError, match=r"d\.conll:2, column 'tag'"):
        load_token_dataset(path, scheme="IO")


def test_unknown_tag_shape_names_file_line_and_column(tmp_path):
    path = write(tmp_path / "d.conll", "Maria\tB-PER\nParis\tS-LOC\n")
    with pytest.raises(DataError) as info:
        load_token_dataset(path)
    assert str(info.value).startswith(f"{path}:2, column 'tag': tag 'S-LOC' is not O")


def test_token_line_without_a_tag_names_its_line(tmp_path):
    path = write(tmp_path / "d.conll", "Maria\tB-PER\n\nParis\n")
    with pytest.raises(DataError, match=r"d\.conll:3, column 'tag': this token has no tag"):
        load_token_dataset(path)


def test_unknown_scheme_is_a_user_input_error(tmp_path):
    with pytest.raises(UserInputError, match="unknown tag scheme 'BIOES'"):
        load_token_dataset(write(tmp_path / "d.conll", CONLL_BIO), scheme="BIOES")


def test_a_csv_is_not_a_token_file(tmp_path):
    with pytest.raises(DataError, match="not a token file"):
        load_token_dataset(write(tmp_path / "d.csv", "text,label\na,b\n"))


def make_dataset(counts: dict[str, int], multilabel: bool = False) -> TextDataset:
    texts, labels = [], []
    for label, n in counts.items():
        for i in range(n):
            texts.append(f"{label} example {i}")
            labels.append([label, "extra"] if multilabel and i % 2 else [label])
    names = sorted({lab for ls in labels for lab in ls})
    return TextDataset(texts, labels, names, multilabel=multilabel, source="train.csv")


def test_stratified_split_keeps_every_label_on_both_sides_and_is_seeded():
    data = make_dataset({"a": 20, "b": 10, "c": 2})
    train, held = stratified_split(data, 0.2, seed=1)
    assert len(train) + len(held) == 32
    assert held.label_counts() == {"a": 4, "b": 2, "c": 1}
    assert set(train.texts).isdisjoint(held.texts)
    assert train.rows == sorted(train.rows)
    again, _ = stratified_split(data, 0.2, seed=1)
    other, _ = stratified_split(data, 0.2, seed=2)
    assert again.texts == train.texts and other.texts != train.texts


def test_split_with_a_single_example_label_names_the_label_count_and_file():
    data = make_dataset({"a": 5, "lonely": 1})
    with pytest.raises(DataError) as info:
        stratified_split(data, 0.2, seed=0)
    message = str(info.value)
    assert message.startswith("train.csv:6")
    assert "label 'lonely' has only 1 example" in message


def test_multilabel_split_stratifies_on_the_first_label():
    data = make_dataset({"a": 10, "b": 10, "c": 1}, multilabel=True)
    train, held = stratified_split(data, 0.3, seed=0)
    assert {ls[0] for ls in held.labels} == {"a", "b"}
    assert ["c"] in train.labels
    assert train.multilabel and held.multilabel


def test_token_dataset_split_is_random_and_complete(tmp_path):
    data = load_token_dataset(write(tmp_path / "d.conll", CONLL_BIO + "\nx\tO\n\ny\tO\n"))
    train, held = stratified_split(data, 0.25, seed=0)
    assert len(train) == 3 and len(held) == 1
    assert sorted(train.rows + held.rows) == data.rows


def test_split_fraction_outside_zero_and_one_is_rejected():
    with pytest.raises(UserInputError, match="between 0 and 1"):
        stratified_split(make_dataset({"a": 4}), 1.5, seed=0)


def test_jsonl_row_without_the_label_field_names_its_line(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n')
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    assert str(info.value) == f"{path}:2, column 'label': this row has no such field"
