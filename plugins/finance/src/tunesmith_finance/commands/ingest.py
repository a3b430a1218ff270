"""``tunesmith finance ingest``: score files (or standard input) in batches and store them."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from tunesmith.devices import check_device, device_option
from tunesmith_finance.commands.checks import build_ingester, check_inputs
from tunesmith_finance.commands.options import (
    BATCH_SIZE,
    DB_HELP,
    LOCK_TIMEOUT,
    MAX_CHARS,
    MODEL_HELP,
    NAIVE_TZ,
    QUANTIZE,
    RULES,
    TOPIC_MODEL,
    TOPIC_THRESHOLD,
)
from tunesmith_finance.commands.output import print_report


def ingest_command(
    files: list[str] = typer.Argument(
        ...,
        help="JSONL, CSV or .xlsx files (book.xlsx#Sheet for a sheet); '-' reads standard input.",
    ),
    model: Path = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    rules: Path | None = RULES,
    fmt: str = typer.Option("jsonl", "--format", help="Format of standard input: jsonl | csv."),
    batch_size: int = BATCH_SIZE,
    max_chars: int = MAX_CHARS,
    naive_tz: str = NAIVE_TZ,
    quantize: str | None = QUANTIZE,
    topic_model: Path | None = TOPIC_MODEL,
    topic_threshold: float = TOPIC_THRESHOLD,
    timeout: float = LOCK_TIMEOUT,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    device: str = device_option("--quantize int8 runs on the CPU."),
) -> None:
    """Score documents in batches and store them; safe to run again and to kill.

    Each document needs a time and a text (id, source, topic and tickers optional). A file is
    resumed where its last committed batch ended; a known id adds nothing (the first stored
    text stays). Skipped rows are reported with file and line, and make the exit status 2
    (the other rows are stored).
    """
    from tunesmith.errors import DataError
    from tunesmith_finance.ingest import Report
    from tunesmith_finance.storage import discard_if_empty

    check_device(device, quantize=quantize)  # before the files are read
    check_inputs(files)
    created = not db.exists()
    ingester = build_ingester(
        db,
        model,
        rules,
        batch_size=batch_size,
        max_chars=max_chars,
        naive_tz=naive_tz,
        quantize=quantize,
        topic_model=topic_model,
        topic_threshold=topic_threshold,
        timeout=timeout,
        device=device,
    )
    total = Report()
    try:
        for name in files:
            if name == "-":
                report = ingester.ingest_stream(sys.stdin.buffer, fmt=fmt)
            else:
                report = ingester.ingest_file(name)
            total.merge(report)
    except BaseException:
        if created:
            discard_if_empty(ingester.db, db)
        raise
    finally:
        ingester.db.close()
    print_report(total, as_json)
    if total.skipped:
        # The readable rows are stored; a script still has to notice the ones that were not.
        where = "in the JSON report's issues" if as_json else "above"
        raise DataError(
            f"{total.skipped} row(s) skipped (listed {where} with file and line; all are stored "
            "in finance_issues)"
        )


def register(app: typer.Typer) -> None:
    """Add ``ingest`` to ``app``."""
    app.command("ingest")(ingest_command)
