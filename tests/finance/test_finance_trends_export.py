"""`finance trends --json` and `--csv` at a desk's scale: written from a template a chunk at a
time (``json.dumps(indent=2)`` per row took 6 s of 12 for 120,000 rows through a pipe, a dict
and ``csv.DictWriter`` per row 2 s), and their text is what it was, byte for byte, for keys
that need escaping and buckets across a clock change."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math

from finance_fakes import clock_change_docs, doc, store_docs

#: Topics a feed can carry that JSON and CSV must escape or quote: accents, CJK, quotes, a
#: backslash, control characters (escape, tab, NUL, DEL), a Unicode line separator, a formula.
KEYS = [
    "café", 'say "no"', "back\\slash", "a\x1b[31mred", "tab\there", "日本", "=cmd", "nul\x00l",
    "del\x7f", "ls\u2028ps", "comma, semi;",
]  # fmt: skip

#: sha256 of `finance trends --tz America/New_York --json` on
#: :func:`finance_fakes.clock_change_docs` as ``json.dumps(indent=2)`` wrote it row by row before.
BEFORE_SHA256 = "2d7775f7b2a72785eb1e53dbab829c126db44d50dbd00209d69f1dee9e2ec032"


def _rows(path, **options):
    from tunesmith_finance import trends
    from tunesmith_finance.storage import open_store

    store = open_store(path)
    try:
        return trends.trends(store, **options)
    finally:
        store.close()


def _dumped(rows) -> str:
    """The rows as `--json` wrote them before: ``json.dumps`` of their dicts, indented."""
    return json.dumps([r.to_dict() for r in rows], indent=2, ensure_ascii=False) + "\n"


def _dict_written(rows) -> str:
    """The rows as `--csv` wrote them before: a dict per row through ``csv.DictWriter``."""
    from tunesmith_finance.trend_export import spreadsheet_text
    from tunesmith_finance.trends import TREND_FIELDS

    out = io.StringIO()
    writer = csv.DictWriter(out, list(TREND_FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: spreadsheet_text(v) for k, v in row.to_dict().items()})
    return out.getvalue()


def test_trends_json_and_csv_are_byte_for_byte_what_they_were_for_keys_needing_escapes(
    cli, tmp_path
):
    from zoneinfo import ZoneInfo

    db = tmp_path / "f.sqlite"
    clock_change_docs(db, KEYS)
    cases = (
        (["--tz", "America/New_York"], ZoneInfo("America/New_York")),
        (["--tz", "Asia/Kolkata", "--bucket", "15m"], ZoneInfo("Asia/Kolkata")),
        (["--by", "all", "--bucket", "1w"], None),
    )
    for n, (options, zone) in enumerate(cases):
        args = ("finance", "trends", "--db", str(db), *options)
        csv_path = tmp_path / f"t{n}.csv"
        result = cli(*args, "--json", "--csv", str(csv_path))
        assert result.exit_code == 0, result.output
        rows = _rows(
            db,
            by="all" if "all" in options else "topic",
            bucket=options[-1] if "--bucket" in options else "1h",
            zone=zone,
        )
        assert result.stdout == _dumped(rows), options
        assert csv_path.read_text(encoding="utf-8") == _dict_written(rows), options
    result = cli("finance", "trends", "--db", str(db), "--tz", "America/New_York", "--json")
    assert hashlib.sha256(result.stdout.encode()).hexdigest() == BEFORE_SHA256
    # One of them in full: a quote, a backslash and an escape character escaped, the hour
    # after the clocks went forward with its new offset.
    assert (
        '  {\n    "key": "a\\u001b[31mred",\n'
        '    "bucket_start": "2026-03-08T03:00:00-04:00",\n    "ts": 1772953200.0,\n'
        '    "count": 1,\n    "negatives": 0,\n    "negative_share": 0.0,\n'
        '    "share_low": 0.0,\n    "share_high": 0.7935,\n    "mean_score": 0.0,\n'
        '    "tz": "America/New_York"\n  },\n'
    ) in result.stdout
    assert '"key": "say \\"no\\"",' in result.stdout
    assert '"key": "back\\\\slash",' in result.stdout


def test_trends_json_writes_what_json_dumps_does_for_values_the_template_cannot():
    """A NaN (``repr`` says ``nan``, JSON ``NaN``), an infinity, a text that reads like one,
    no row at all."""
    from tunesmith_finance.trend_export import write_json
    from tunesmith_finance.trends import TrendRow

    def row(key, mean):
        return TrendRow(key, "2026-11-02T00:00:00Z", 1.8e9, 2, 1, 0.5, 0.09, 0.91, mean)

    cases = [
        [row("a", math.nan), row("b", -0.25)],
        [row("a", math.inf), row("b", -math.inf)],
        [row('x": nan,', -0.0), row("y", 1e-5)],
        [],
    ]
    for rows in cases:
        out = io.StringIO()
        write_json(rows, out, chunk=1)
        assert out.getvalue() == _dumped(rows)
        out = io.StringIO()
        write_json(rows, out)
        assert out.getvalue() == _dumped(rows)


def _desk(path, tickers=50, hours=100) -> int:
    rows = [
        doc(i, f"$TK{i % tickers:02d} shares drift {i}",
            f"2026-11-{2 + i // tickers // 24:02d}T{i // tickers % 24:02d}:10:00Z")
        for i in range(tickers * hours)
    ]  # fmt: skip
    store_docs(path, rows)
    return len(rows)


def test_trends_json_writes_thousands_of_rows_in_a_few_writes_not_one_per_row(
    cli, tmp_path, monkeypatch
):
    import sys

    db = tmp_path / "f.sqlite"
    n = _desk(db)
    writes = []

    class Counted(io.StringIO):
        def write(self, text):
            writes.append(len(text))
            return super().write(text)

    out = Counted()
    monkeypatch.setattr(sys, "stdout", out)
    from tunesmith_finance.commands.trends import trends_command

    trends_command(
        db=db, by="ticker", bucket="1h", key=None, since=None, until=None, tz="UTC",
        as_json=True, csv_out=None, chart=None, top=6, force=False,
    )  # fmt: skip
    assert len(json.loads(out.getvalue())) == n
    # A write per row is a flush per row on a terminal.
    assert len(writes) <= 4, len(writes)


def test_trends_json_and_csv_build_no_dict_per_row(cli, tmp_path, monkeypatch):
    from tunesmith_finance.trends import TrendRow

    db = tmp_path / "f.sqlite"
    n = _desk(db, tickers=20, hours=10)

    def refused(self):
        raise AssertionError("a dict per row: most of --json's and --csv's time")

    monkeypatch.setattr(TrendRow, "to_dict", refused)
    out = tmp_path / "t.csv"
    result = cli(
        "finance", "trends", "--db", str(db), "--by", "ticker", "--json", "--csv", str(out)
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == n
    assert len(out.read_text(encoding="utf-8").splitlines()) == n + 1
