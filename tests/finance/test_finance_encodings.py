"""finance's streaming reader checks encodings as the core's readers do: a UTF-16 or UTF-32
file refused in one line before anything is stored, a bad byte or a NUL skipping its row with
line and column, and the machine failing mid-read an exit 1 naming the file."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import pytest

from tunesmith.errors import DataError

ROWS = [
    {"id": "a", "time": "2026-11-02T10:00:00Z", "text": "Helix falls"},
    {"id": "b", "time": "2026-11-02T11:00:00Z", "text": "Orcana rises"},
]
CSV_TEXT = "id,time,text\na,2026-11-02T10:00:00Z,Helix falls\nb,2026-11-02T11:00:00Z,Orcana rises\n"
JSONL_TEXT = "".join(json.dumps(row) + "\n" for row in ROWS)


def _ingester(db):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester

    return Ingester(db, KeywordModel(), warn=lambda _m: None)


def _stored(db) -> tuple[int, int]:
    documents = db.query("SELECT COUNT(*) AS n FROM finance_documents")[0]["n"]
    issues = db.query("SELECT COUNT(*) AS n FROM finance_issues")[0]["n"]
    return documents, issues


@pytest.mark.parametrize(
    ("codec", "says"),
    [
        ("utf-16", "UTF-16 (its byte-order mark says so), not UTF-8; re-save it as UTF-8, e.g. "
                   "`iconv -f utf-16 -t utf-8`"),
        ("utf-16-le", "UTF-16 (a NUL byte beside each letter), not UTF-8; re-save it as UTF-8, "
                      "e.g. `iconv -f utf-16le -t utf-8`"),
        ("utf-32", "UTF-32 (its byte-order mark says so), not UTF-8; re-save it as UTF-8, e.g. "
                   "`iconv -f utf-32 -t utf-8`"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_utf16_or_utf32_file_is_refused_with_its_iconv_command_before_anything_is_stored(
    db, tmp_path, codec, says, suffix
):
    from tunesmith_finance.sources import check_file

    path = tmp_path / f"news{suffix}"
    path.write_bytes((CSV_TEXT if suffix == ".csv" else JSONL_TEXT).encode(codec))
    # Before the model loads (check_inputs), and again when the file is read.
    with pytest.raises(DataError) as checked:
        check_file(path)
    assert str(checked.value) == f"{path}: the file is {says}"
    with pytest.raises(DataError) as ingested:
        _ingester(db).ingest_file(path)
    assert str(ingested.value) == f"{path}: the file is {says}"
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_utf16_standard_input_is_refused_at_its_first_line_with_nothing_stored(db, fmt):
    text = CSV_TEXT if fmt == "csv" else JSONL_TEXT
    stream = io.BytesIO(text.encode("utf-16"))
    stream.name = "<stdin>"  # as sys.stdin.buffer is named
    with pytest.raises(DataError, match=r"^<stdin>: the file is UTF-16 .*`iconv -f utf-16"):
        _ingester(db).ingest_stream(stream, fmt=fmt)
    assert _stored(db) == (0, 0)


def test_a_bad_byte_skips_its_csv_row_naming_line_column_and_offset(db, tmp_path):
    path = tmp_path / "news.csv"
    data = (
        b"id,time,text,source\n"
        b"a,2026-11-02T10:00:00Z,Caf\xe9 au lait falls,wire\n"
        b"b,2026-11-02T11:00:00Z,Orcana rises,wire\n"
    )
    path.write_bytes(data)
    report = _ingester(db).ingest_file(path)
    assert (report.added, report.skipped) == (1, 1)
    assert str(report.issues[0]) == (
        f"{path}:2: skipped: column 'text': not UTF-8 (byte 0xe9 at offset {data.index(0xE9)} "
        "of the file); re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`"
    )
    assert db.query("SELECT detail FROM finance_issues")[0]["detail"].startswith(
        "column 'text': not UTF-8"
    )


def test_a_bad_byte_skips_its_jsonl_row_naming_the_field_it_is_in(db, tmp_path):
    path = tmp_path / "news.jsonl"
    data = (
        b'{"id": "a", "time": "2026-11-02T10:00:00Z", "text": "Helix falls"}\n'
        b'  {"id": "b", "time": "2026-11-02T11:00:00Z", "source": "Le Monde \xe9co", '
        b'"text": "Orcana rises"}\n'
    )
    path.write_bytes(data)
    report = _ingester(db).ingest_file(path)
    assert (report.added, report.skipped) == (1, 1)
    assert str(report.issues[0]) == (
        f"{path}:2: skipped: column 'source': not UTF-8 (byte 0xe9 at offset "
        f"{data.index(0xE9)} of the file); re-save the file as UTF-8, e.g. "
        "`iconv -f latin1 -t utf-8`"
    )


def test_a_nul_in_a_csv_cell_skips_the_row_naming_its_column(db, tmp_path):
    path = tmp_path / "news.csv"
    path.write_bytes(
        b"id,time,text\n"
        b"a,2026-11-02T10:00:00Z,Helix\x00 falls\n"
        b"b,2026-11-02T11:00:00Z,Orcana rises\n"
    )
    report = _ingester(db).ingest_file(path)
    assert (report.added, report.skipped) == (1, 1)
    assert str(report.issues[0]) == (
        f"{path}:2: skipped: column 'text': this cell holds a NUL byte (character 6), which no "
        "text has: the file is damaged or not text; remove it"
    )
    texts = [row["text"] for row in db.query("SELECT text FROM finance_documents")]
    assert texts == ["Orcana rises"]


def test_a_nul_byte_in_a_json_string_names_its_field_not_only_malformed_json(db, tmp_path):
    path = tmp_path / "news.jsonl"
    path.write_bytes(
        b'{"id": "a", "time": "2026-11-02T10:00:00Z", "text": "Helix\x00 falls"}\n'
        b'{"id": "b", "time": "2026-11-02T11:00:00Z", "text": "Orcana rises"\x00}\n'
    )
    report = _ingester(db).ingest_file(path)
    assert report.skipped == 2
    assert str(report.issues[0]) == (
        f"{path}:1: skipped: column 'text': this cell holds a NUL byte (character 6), which no "
        "text has: the file is damaged or not text; remove it"
    )
    # A NUL outside any string is malformed JSON, as before.
    assert str(report.issues[1]).startswith(f"{path}:2: skipped: malformed JSON (")


def test_a_bad_byte_in_the_csv_header_is_the_cores_line_with_its_offset(db, tmp_path):
    path = tmp_path / "news.csv"
    path.write_bytes(b"id,time,te\xe9xt\na,2026-11-02T10:00:00Z,Helix falls\n")
    with pytest.raises(DataError) as info:
        _ingester(db).ingest_file(path)
    assert str(info.value) == (
        f"{path}:1: the file is not UTF-8 (byte 0xe9 at offset 10); re-save it as UTF-8, "
        "e.g. `iconv -f latin1 -t utf-8`"
    )
    assert _stored(db) == (0, 0)


class _FailingReader(io.BufferedReader):
    """A file whose disk fails (EIO) once ``good`` lines have been read."""

    def __init__(self, raw, good: int) -> None:
        super().__init__(raw)
        self.good = good

    def readline(self, size=-1):  # type: ignore[override]
        if self.good <= 0:
            raise OSError(errno.EIO, "Input/output error")
        self.good -= 1
        return super().readline(size)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_an_io_error_mid_file_is_exit_1_naming_the_file_not_a_skipped_row(
    cli, tiny_model, tmp_path, monkeypatch, suffix
):
    path = tmp_path / f"news{suffix}"
    path.write_text(CSV_TEXT if suffix == ".csv" else JSONL_TEXT, encoding="utf-8")
    real_open = Path.open

    def failing_open(self, mode="r", *args, **kwargs):
        handle = real_open(self, mode, *args, **kwargs)
        if self == path and mode == "rb":
            return _FailingReader(handle.detach(), good=2)
        return handle

    monkeypatch.setattr(Path, "open", failing_open)
    db = tmp_path / "f.sqlite"
    result = cli("finance", "ingest", str(path), "--model", str(tiny_model), "--db", str(db))
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: [Errno 5] Input/output error: '{path}' (set TUNESMITH_DEBUG=1 for the traceback)"
    ]
    assert not db.exists()  # nothing was stored, and no empty database is left


def test_a_file_that_cannot_be_opened_is_an_input_error_before_the_model_loads(
    tmp_path, monkeypatch
):
    # Tests run as root, who reads any file: the refusal is simulated.
    from tunesmith_finance.sources import check_file

    path = tmp_path / "news.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    real_open = Path.open

    def refused(self, *args, **kwargs):
        if self == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refused)
    with pytest.raises(DataError) as info:
        check_file(path)
    assert str(info.value) == f"{path}: cannot read the file: Permission denied"
    assert info.value.exit_code == 2
