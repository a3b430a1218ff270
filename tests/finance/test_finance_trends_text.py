"""Plain-text `finance trends` at a desk's scale: the table is written a chunk at a time (a
flushed echo per row took 36 s for 350,000 rows on a terminal or a pipe), and its text is what
it was, byte for byte."""

from __future__ import annotations

from finance_fakes import clock_change_docs, doc, store_docs

TOPICS = ["café", "a\x1b[31mred", "=cmd", "énergie-long-topic-name-here", "tab\there", "日本"]

#: `finance trends --tz America/New_York` on :func:`finance_fakes.clock_change_docs` as the
#: table was written row by row before (the clocks change at 02:00 that day; a key's control characters escaped).
BEFORE = [
    "key          bucket (America/New_York)     n   neg  share        95% CI    mean",
    "=cmd         2026-03-08T00:00:00-05:00     1     0   0.00   0.00-0.79    +0.000",
    "=cmd         2026-03-08T01:00:00-05:00     1     1   1.00   0.21-1.00    -0.750",
    "=cmd         2026-03-08T03:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
    "=cmd         2026-03-08T04:00:00-04:00     1     1   1.00   0.21-1.00    -0.750",
    "=cmd         2026-03-08T05:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
    "a\\x1b[31mred    2026-03-08T00:00:00-05:00     1     0   0.00   0.00-0.79    +0.000",
    "a\\x1b[31mred    2026-03-08T01:00:00-05:00     1     1   1.00   0.21-1.00    -0.750",
    "a\\x1b[31mred    2026-03-08T03:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
    "a\\x1b[31mred    2026-03-08T04:00:00-04:00     1     1   1.00   0.21-1.00    -0.750",
    "a\\x1b[31mred    2026-03-08T05:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
    "café         2026-03-08T00:00:00-05:00     1     0   0.00   0.00-0.79    +0.000",
    "café         2026-03-08T01:00:00-05:00     1     1   1.00   0.21-1.00    -0.750",
    "café         2026-03-08T03:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
    "café         2026-03-08T04:00:00-04:00     1     1   1.00   0.21-1.00    -0.750",
    "café         2026-03-08T05:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
    "tab\\there     2026-03-08T00:00:00-05:00     1     0   0.00   0.00-0.79    +0.000",
    "tab\\there     2026-03-08T01:00:00-05:00     1     1   1.00   0.21-1.00    -0.750",
    "tab\\there     2026-03-08T03:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
    "tab\\there     2026-03-08T04:00:00-04:00     1     1   1.00   0.21-1.00    -0.750",
    "tab\\there     2026-03-08T05:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
    "énergie-long-topic-name-here 2026-03-08T00:00:00-05:00     1     0   0.00   0.00-0.79    +0.000",
    "énergie-long-topic-name-here 2026-03-08T01:00:00-05:00     1     1   1.00   0.21-1.00    -0.750",
    "énergie-long-topic-name-here 2026-03-08T03:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
    "énergie-long-topic-name-here 2026-03-08T04:00:00-04:00     1     1   1.00   0.21-1.00    -0.750",
    "énergie-long-topic-name-here 2026-03-08T05:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
    "日本           2026-03-08T00:00:00-05:00     1     0   0.00   0.00-0.79    +0.000",
    "日本           2026-03-08T01:00:00-05:00     1     1   1.00   0.21-1.00    -0.750",
    "日本           2026-03-08T03:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
    "日本           2026-03-08T04:00:00-04:00     1     1   1.00   0.21-1.00    -0.750",
    "日本           2026-03-08T05:00:00-04:00     1     0   0.00   0.00-0.79    +0.000",
]


def test_plain_trends_text_is_byte_for_byte_the_row_by_row_table(cli, tmp_path):
    db = tmp_path / "f.sqlite"
    clock_change_docs(db, TOPICS)
    result = cli("finance", "trends", "--db", str(db), "--tz", "America/New_York")
    assert result.exit_code == 0, result.output
    assert result.stdout == "\n".join(BEFORE) + "\n"


def test_plain_trends_writes_thousands_of_rows_in_a_few_writes_not_one_per_row(
    cli, tmp_path, monkeypatch
):
    import typer

    db = tmp_path / "f.sqlite"
    rows = [
        doc(
            i,
            f"$TK{i % 50:02d} shares drift {i}",
            f"2026-11-{2 + i // 50 // 24:02d}T{i // 50 % 24:02d}:10:00Z",
        )  # fmt: skip
        for i in range(5000)
    ]
    store_docs(db, rows)
    real, calls = typer.echo, []

    def counted(message=None, *args, **kwargs):
        calls.append(kwargs.get("err", False))
        return real(message, *args, **kwargs)

    monkeypatch.setattr(typer, "echo", counted)
    result = cli("finance", "trends", "--db", str(db), "--by", "ticker")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 5001  # the header and a row per ticker and hour
    # Each echo flushes: one per row made the table's time the terminal's.
    assert calls.count(False) <= 3
