"""Property-based fuzzing of every built-in reader and of ``--text``.

Any bytes, any JSON nesting, any size up to the limits: a file ends either in valid records or
in one ``TunesmithError`` (a ``DataError`` naming the file), never another exception. Bounded by
``max_examples`` and a per-example deadline so the file runs in seconds; each run draws new
inputs (no example database), so repeated runs explore more.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.data.limits import MAX_FIELD_CHARS, cli_text
from tunesmith.data.load import load_text_dataset, load_token_dataset, read_texts
from tunesmith.data.readers import ROW_KEY, reader_for
from tunesmith.data.records import TextDataset, TokenDataset, sort_labels
from tunesmith.errors import DataError, TunesmithError, UserInputError

pa = pytest.importorskip("pyarrow")

FUZZ = settings(
    max_examples=30,
    deadline=timedelta(seconds=10),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TAG = re.compile(r"^(?:O|[BI]-\S+)$")

# Characters that break parsers: quotes, separators, line breaks of every kind, NUL, a BOM,
# and characters str.splitlines() would wrongly treat as line ends.
TRICKY = list(",\"'\t\n\r {}[]:\\|\x00\x0b\x0c\x1c\ufeff\u2028\u2029\u0085é日")
tricky_text = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(), max_size=80)
# Lone surrogates cannot be written as UTF-8; with "surrogatepass" they become invalid bytes.
any_char = st.characters() | st.integers(0xD800, 0xDFFF).map(chr)

LOADERS: dict[str, Callable[[Path], Any]] = {
    "rows": lambda p: list(reader_for(p)(p)),
    "labelled": load_text_dataset,
    "unlabelled": partial(load_text_dataset, require_labels=False),
    "label_sep": partial(load_text_dataset, label_sep="|"),
    "texts": read_texts,
    "tokens": load_token_dataset,
}


@pytest.fixture(scope="module", autouse=True)
def _warm_up(tmp_path_factory):
    """Run every loader once on a small valid file, outside any example's deadline: the first
    call imports pyarrow's dataset module and loads the plugins, seconds on a busy machine."""
    pq = pytest.importorskip("pyarrow.parquet")
    folder = tmp_path_factory.mktemp("warm")
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["x", "y"]}), folder / "w.parquet")
    (folder / "w.csv").write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    (folder / "w.conll").write_text("a\tB-X\nb\tO\n", encoding="utf-8")
    for name in ("w.parquet", "w.csv", "w.conll"):
        _every_loader_ends_well((folder / name).read_bytes(), Path(name).suffix)


def _check_valid(name: str, result: Any) -> None:
    """What a loader that did not raise must have returned."""
    if name == "rows":
        assert all(isinstance(r, dict) and isinstance(r[ROW_KEY], int) for r in result)
        assert all(r[ROW_KEY] >= 1 for r in result)
    elif name == "texts":
        assert result and all(isinstance(t, str) for t in result)
        for text in result:
            text.encode("utf-8")
            assert len(text) <= MAX_FIELD_CHARS
    elif isinstance(result, TextDataset):
        assert len(result.texts) == len(result.labels) == len(result.rows) > 0
        for text, labels in zip(result.texts, result.labels, strict=True):
            assert isinstance(text, str) and len(text) <= MAX_FIELD_CHARS
            text.encode("utf-8")
            assert all(isinstance(lab, str) and lab for lab in labels)
            for label in labels:
                label.encode("utf-8")
            if not result.multilabel:
                assert len(labels) <= 1
        # whole-number names by number ("2" before "100"), as the model's outputs are ordered
        assert result.label_names == sort_labels({lab for ls in result.labels for lab in ls})
        assert all(isinstance(r, int) and r >= 1 for r in result.rows)
    else:
        assert isinstance(result, TokenDataset) and len(result) > 0
        for tokens, tags in zip(result.tokens, result.tags, strict=True):
            assert len(tokens) == len(tags) >= 1
            assert all(isinstance(t, str) and t for t in tokens)
            assert all(TAG.match(tag) for tag in tags)


def _every_loader_ends_well(data: bytes, suffix: str) -> None:
    """Each loader returns valid records or raises one TunesmithError naming the file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        for name, load in LOADERS.items():
            try:
                result = load(path)
            except DataError as exc:
                assert exc.path == str(path), (name, str(exc))
                assert "\n" not in str(exc) and "\r" not in str(exc), (name, str(exc))
                continue
            except TunesmithError as exc:  # e.g. UserInputError: still one line
                assert "\n" not in str(exc), (name, str(exc))
                continue
            _check_valid(name, result)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


# --- raw bytes and near-miss text, for every suffix ----------------------------------------------

SUFFIXES = [".csv", ".tsv", ".jsonl", ".json", ".parquet", ".conll", ".txt"]


@pytest.mark.parametrize("suffix", SUFFIXES)
@FUZZ
@given(data=st.binary(max_size=600))
def test_any_bytes_end_in_records_or_one_data_error(suffix, data):
    _every_loader_ends_well(data, suffix)


@pytest.mark.parametrize("suffix", SUFFIXES)
@FUZZ
@given(text=st.text(alphabet=st.sampled_from(TRICKY) | any_char, max_size=400))
def test_any_text_of_parser_breaking_characters_ends_well(suffix, text):
    _every_loader_ends_well(_encode(text), suffix)


# --- structured but hostile: CSV/TSV -------------------------------------------------------------

cell = st.one_of(tricky_text, st.sampled_from(["", "nan", "None", " ", "a|b", "a||b", "|"]))


@st.composite
def delimited_files(draw: Any, delimiter: str) -> bytes:
    """A file written by the csv module (valid), then maybe cut or given a stray quote."""
    width = draw(st.integers(1, 4))
    header = draw(
        st.lists(
            st.sampled_from(["text", "label", "x", " text ", ""]), min_size=width, max_size=width
        )
    )
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=width + 1), max_size=8))
    out = io.StringIO(newline="")
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, escapechar="\\")
    try:
        writer.writerow(header)
        writer.writerows(rows)
    except csv.Error:  # QUOTE_NONE cannot write some cells; write them raw instead
        out = io.StringIO()
        out.write("\n".join(delimiter.join(r) for r in [header, *rows]))
    text = out.getvalue()
    mutation = draw(st.sampled_from(["none", "cut", "quote", "join"]))
    if text and mutation == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif mutation == "quote":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + '"' + text[at:]
    elif mutation == "join":
        text = text.replace("\n", draw(st.sampled_from(["\r", "\u2028", "\u0085", ""])))
    return _encode(text)


@FUZZ
@given(data=delimited_files(","))
def test_csv_files_with_hostile_cells_end_well(data):
    _every_loader_ends_well(data, ".csv")


@FUZZ
@given(data=delimited_files("\t"))
def test_tsv_files_with_hostile_cells_end_well(data):
    _every_loader_ends_well(data, ".tsv")


# --- structured but hostile: JSON and JSONL ------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    tricky_text,
    st.text(alphabet=any_char, max_size=10),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def json_records(draw: Any) -> str:
    """One JSON record: maybe with text/label keys, maybe a deep or huge value spliced in."""
    record = draw(st.dictionaries(st.sampled_from(["text", "label", "x"]), values, max_size=3))
    dumped = json.dumps(record, ensure_ascii=draw(st.booleans()))
    splice = draw(st.sampled_from(["none", "deep", "digits", "raw"]))
    if splice == "deep":
        depth = draw(st.integers(1, 200_000))
        dumped = (
            dumped[:-1]
            + ("" if dumped == "{}" else ", ")
            + '"x": '
            + "[" * depth
            + "]" * depth
            + "}"
        )
    elif splice == "digits":
        dumped = '{"text": "t", "label": ' + "9" * draw(st.integers(1, 6000)) + "}"
    elif splice == "raw":
        dumped = draw(tricky_text)
    return dumped


@FUZZ
@given(
    records=st.lists(json_records(), max_size=6),
    breaks=st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\u2028"]),
)
def test_jsonl_files_with_any_values_and_nesting_end_well(records, breaks):
    _every_loader_ends_well(_encode(breaks.join(records) + "\n"), ".jsonl")


@FUZZ
@given(records=st.lists(json_records(), max_size=6), cut=st.booleans())
def test_json_arrays_with_any_values_and_nesting_end_well(records, cut):
    text = "[\n" + ",\n".join(records) + "\n]"
    if cut:
        text = text[: len(text) // 2]
    _every_loader_ends_well(_encode(text), ".json")


# --- structured but hostile: CoNLL ---------------------------------------------------------------

token = st.text(alphabet=st.sampled_from(list("ab \t\u2028\u0085\u00a0é-")), max_size=6)
tag = st.sampled_from(["O", "B-X", "I-X", "B-Y", "I-", "B-", "X", "", "S-Y", "o", "-DOCSTART-"])


@st.composite
def conll_files(draw: Any) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["pair", "pair", "pair", "blank", "bare", "three"]))
        sep = draw(st.sampled_from(["\t", " ", "\t\t", "  "]))
        if kind == "pair":
            lines.append(draw(token) + sep + draw(tag))
        elif kind == "three":
            lines.append(draw(token) + sep + "NNP" + sep + draw(tag))
        elif kind == "bare":
            lines.append(draw(token))
        else:
            lines.append(draw(st.sampled_from(["", " ", "\t"])))
    breaks = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return _encode(breaks.join(lines))


@pytest.mark.parametrize("suffix", [".conll", ".txt"])
@FUZZ
@given(data=conll_files())
def test_conll_files_with_any_separators_and_tags_end_well(suffix, data):
    _every_loader_ends_well(data, suffix)


# --- structured but hostile: Parquet -------------------------------------------------------------

# Parquet holds UTF-8 strings only: a lone surrogate cannot even be written into the table, so
# the strategy would fail while drawing the file (it did, about one run in a hundred).
parquet_text = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(codec="utf-8"), max_size=80)
columns = st.one_of(
    st.lists(st.none() | parquet_text, min_size=1, max_size=5),
    st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=5),
    st.lists(st.none() | st.floats(), min_size=1, max_size=5),
    st.lists(st.booleans(), min_size=1, max_size=5),
    st.lists(st.binary(max_size=8), min_size=1, max_size=5),
    st.lists(st.lists(parquet_text, max_size=3), min_size=1, max_size=5),
    st.lists(st.fixed_dictionaries({"name": parquet_text}), min_size=1, max_size=5),
)


@st.composite
def parquet_files(draw: Any) -> bytes:
    import pyarrow.parquet as pq

    names = draw(
        st.lists(st.sampled_from(["text", "label", "x"]), min_size=1, max_size=3, unique=True)
    )
    data = [draw(columns) for _ in names]
    rows = min(len(column) for column in data)
    table = pa.table(
        {name: pa.array(column[:rows]) for name, column in zip(names, data, strict=True)}
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    raw = sink.getvalue()
    if draw(st.booleans()):  # a damaged file: cut or one byte changed
        at = draw(st.integers(0, len(raw) - 1))
        raw = (
            raw[:at] if draw(st.booleans()) else raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1 :]
        )
    return raw


@FUZZ
@given(data=parquet_files())
def test_parquet_tables_of_any_column_types_end_well(data):
    _every_loader_ends_well(data, ".parquet")


# --- --text: argv bytes and any code point -------------------------------------------------------


def _cli_text_ends_well(value: str) -> None:
    try:
        checked = cli_text(value)
    except UserInputError as exc:
        assert str(exc).startswith("--text") and "\n" not in str(exc)
        return
    assert checked == value
    checked.encode("utf-8")


@settings(FUZZ, max_examples=150)
@given(raw=st.binary(max_size=64))
def test_text_from_any_argv_bytes_is_checked_or_refused_in_one_line(raw):
    _cli_text_ends_well(os.fsdecode(raw))


@settings(FUZZ, max_examples=150)
@given(value=st.text(alphabet=any_char, max_size=64))
def test_text_of_any_code_points_is_checked_or_refused_in_one_line(value):
    _cli_text_ends_well(value)


torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, one_torch_thread):
    """A tiny classifier, used on one torch thread: on a busy shared CPU more threads made each
    of the examples below several times slower."""
    from tunesmith.testing import make_tiny_classifier

    return make_tiny_classifier(
        tmp_path_factory.mktemp("fuzz_clf"), ["neg", "pos"], ["bad app", "good app é"]
    )


@settings(FUZZ, max_examples=15, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(min_size=1, max_size=40))
def test_predict_with_any_argv_bytes_labels_the_text_or_prints_one_error(cli, model_dir, raw):
    result = cli("predict", "--model", str(model_dir), "--text", os.fsdecode(raw), "--json")
    if result.exit_code == 0:
        assert "label" in json.loads(result.stdout)
        return
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr


@settings(FUZZ, max_examples=8, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(min_size=1, max_size=40))
def test_explain_with_any_argv_bytes_explains_the_text_or_prints_one_error(cli, model_dir, raw):
    args = ["explain", "--model", str(model_dir), "--text", os.fsdecode(raw), "--json"]
    result = cli(*args, "--steps", "4")
    if result.exit_code == 0:
        assert "tokens" in json.loads(result.stdout)
        return
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
