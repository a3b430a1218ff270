"""The data readers' error lines, as a user fixing her file reads them: file, row and column
where they apply, exit 2 for the file's fault and exit 1 for the machine's."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest

from tunesmith.data.load import load_text_dataset
from tunesmith.data.readers import read_csv, read_parquet, read_stdin, read_tsv, read_xlsx
from tunesmith.errors import DataError


def _failing_read(monkeypatch, path: Path, code: int) -> None:
    """Reading ``path`` fails with ``code``, as a read(2) does: no file name in the error."""
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == path:
            raise OSError(code, __import__("os").strerror(code))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)


def _csv(tmp_path: Path, data: bytes, name: str = "d.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- the machine's fault is not the file's -------------------------------------------------------


def test_too_many_open_files_while_reading_data_is_the_cli_line_with_exit_1(
    cli, tmp_path, monkeypatch
):
    data = _csv(tmp_path, b"text,label\nhello,a\nbye,b\n")
    _failing_read(monkeypatch, data, errno.EMFILE)
    result = cli("train", "--data", str(data), "--out", str(tmp_path / "run"))
    # It was "d.csv: cannot read the file: Too many open files" with exit 2 ("fix your input").
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: too many open files: ")
    assert f"(opening {data}); raise the limit" in result.output


def test_an_io_error_while_reading_data_names_the_file_with_exit_1(cli, tmp_path, monkeypatch):
    data = _csv(tmp_path, b"text,label\nhello,a\nbye,b\n")
    _failing_read(monkeypatch, data, errno.EIO)
    result = cli("train", "--data", str(data), "--out", str(tmp_path / "run"))
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: [Errno 5] Input/output error: '{data}'")


def test_memory_run_out_while_reading_data_is_not_an_input_error(tmp_path, monkeypatch):
    data = _csv(tmp_path, b"text,label\nhello,a\n")
    _failing_read(monkeypatch, data, errno.ENOMEM)
    with pytest.raises(OSError) as info:
        read_csv(data)
    assert not isinstance(info.value, DataError) and info.value.filename == str(data)


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM])
def test_a_file_the_user_may_not_read_stays_an_input_error(tmp_path, monkeypatch, code):
    data = _csv(tmp_path, b"text,label\nhello,a\n")
    _failing_read(monkeypatch, data, code)
    with pytest.raises(DataError) as info:
        read_tsv(data)
    assert str(info.value) == f"{data}: cannot read the file: {__import__('os').strerror(code)}"
    assert info.value.exit_code == 2


def test_a_folder_on_the_way_the_user_may_not_open_is_an_input_error(tmp_path, monkeypatch):
    data = tmp_path / "locked" / "d.csv"

    def exists(self: Path) -> bool:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "exists", exists)
    with pytest.raises(DataError, match="locked/d.csv: cannot read the file: Permission denied"):
        load_text_dataset(data)


def test_too_many_open_files_opening_parquet_is_not_a_damaged_file(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    data = _csv(tmp_path, b"PAR1", "d.parquet")

    def read_table(*_args, **_kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(pq, "read_table", read_table)
    with pytest.raises(OSError) as info:
        list(read_parquet(data))
    assert not isinstance(info.value, DataError)
    assert (info.value.errno, info.value.filename) == (errno.EMFILE, str(data))


def test_memory_run_out_reading_parquet_is_not_a_damaged_file(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    data = _csv(tmp_path, b"PAR1", "d.parquet")

    def read_table(*_args, **_kwargs):
        raise MemoryError("malloc of 8589934592 bytes failed")

    monkeypatch.setattr(pq, "read_table", read_table)
    with pytest.raises(MemoryError):
        list(read_parquet(data))


def test_too_many_open_files_opening_a_workbook_is_not_an_unreadable_workbook(
    tmp_path, monkeypatch
):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["text", "label"])
    path = tmp_path / "d.xlsx"
    book.save(path)
    real = Path.open

    def open_(self: Path, *args, **kwargs):
        if self == path:
            raise OSError(errno.EMFILE, "Too many open files", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    with pytest.raises(OSError) as info:
        list(read_xlsx(path))
    assert not isinstance(info.value, DataError) and info.value.errno == errno.EMFILE


# -- encodings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "said", "source"),
    [
        ("utf-16", "UTF-16 (its byte-order mark says so)", "utf-16"),
        ("utf-32", "UTF-32 (its byte-order mark says so)", "utf-32"),
        ("utf-16-le", "UTF-16 (a NUL byte beside each letter)", "utf-16le"),
        ("utf-16-be", "UTF-16 (a NUL byte beside each letter)", "utf-16be"),
    ],
)
def test_a_utf16_file_says_so_and_how_to_convert_it(tmp_path, encoding, said, source):
    # Excel's "Unicode Text" is UTF-16: it said "byte 0xff" and `iconv -f latin1`, which garbles
    # it; without a byte-order mark it read as text with NULs, and no column was found.
    path = _csv(tmp_path, "text\tlabel\nhello\ta\n".encode(encoding), "d.tsv")
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    assert str(info.value) == (
        f"{path}: the file is {said}, not UTF-8; re-save it as UTF-8, e.g. "
        f"`iconv -f {source} -t utf-8`"
    )


def test_a_binary_file_with_nuls_is_not_called_utf16(tmp_path):
    path = _csv(tmp_path, bytes(range(256)) * 4, "d.csv")
    with pytest.raises(DataError, match="the file is not UTF-8 .byte 0x80"):
        list(read_csv(path))


def test_a_utf8_bom_is_dropped_from_the_first_column_name(tmp_path):
    path = _csv(tmp_path, b"\xef\xbb\xbftext,label\nhello,a\n")
    assert load_text_dataset(path).texts == ["hello"]


def test_a_byte_that_is_not_utf8_names_its_row_and_column(tmp_path):
    path = _csv(tmp_path, b'id,text,label\n1,hello,a\n2,"two\nlines caf\xe9",b\n')
    with pytest.raises(DataError) as info:
        list(read_csv(path))
    assert str(info.value).startswith(f"{path}:4, column 'text': the file is not UTF-8 (byte 0xe9")


def test_a_byte_that_is_not_utf8_in_the_header_names_no_column(tmp_path):
    path = _csv(tmp_path, b"id,caf\xe9\n1,x\n")
    with pytest.raises(DataError) as info:
        list(read_csv(path))
    assert str(info.value).startswith(f"{path}:1: the file is not UTF-8 (byte 0xe9")


def test_a_byte_that_is_not_utf8_on_standard_input_names_its_column(tmp_path):
    with pytest.raises(DataError) as info:
        read_stdin("tsv", stream=io.BytesIO(b"text\tlabel\nhello\ta\nbye\tb\xff\n"))
    assert str(info.value).startswith("<stdin>:3, column 'label': the file is not UTF-8")


# -- NUL bytes ----------------------------------------------------------------------------------


def test_a_nul_byte_in_a_csv_cell_is_refused_at_its_row_and_column(tmp_path):
    # It was trained on as part of the text, without a word.
    path = _csv(tmp_path, b"text,label\nhello,a\nwo\x00rld,b\n")
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    assert str(info.value) == (
        f"{path}:3, column 'text': this cell holds a NUL byte (character 3), which no text "
        "has: the file is damaged or not text; remove it"
    )


# -- other formats --------------------------------------------------------------------------------


def test_a_parquet_file_cut_short_says_so(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"text": ["a long enough text"] * 50, "label": ["x"] * 50}), whole)
    cut = _csv(tmp_path, whole.read_bytes()[:-100], "cut.parquet")
    with pytest.raises(DataError) as info:
        load_text_dataset(cut)
    assert str(info.value) == (
        f"{cut}: not a complete Parquet file: its footer is missing (cut short while copied or "
        "written, or another format named .parquet); write or copy it again"
    )
    assert info.value.exit_code == 2


def test_a_jsonl_line_that_is_json_but_not_an_object_names_its_line(tmp_path):
    path = _csv(tmp_path, b'{"text": "a", "label": "x"}\n["b", "y"]\n', "d.jsonl")
    with pytest.raises(DataError, match=r"d.jsonl:2: expected a JSON object, found list$"):
        load_text_dataset(path)


def test_an_empty_sheet_says_it_is_the_sheet_that_has_no_rows(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Data"
    book.create_sheet("Blank")
    book["Data"].append(["text", "label"])
    book["Data"].append(["hello", "a"])
    path = tmp_path / "d.xlsx"
    book.save(path)
    with pytest.raises(DataError) as info:
        load_text_dataset(f"{path}#Blank")
    assert str(info.value) == (
        f"{path}#Blank: the sheet 'Blank' has no data rows; the sheets are: 'Data', 'Blank'"
    )
