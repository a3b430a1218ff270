"""``finance replay``: a stored stream played back in simulated time, alerts firing as they would.

The file's documents are sorted by time and ingested one step (bucket) at a time; after each
step the detector runs over everything stored so far, so an alert appears at the step where a
live system would have raised it.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tunesmith_finance.alerts import AlertOptions, alert_message, run_alerts
from tunesmith_finance.documents import RowError, check_columns, resolve_zone, to_document
from tunesmith_finance.sources import (
    WORKBOOK,
    check_file,
    iter_csv,
    iter_jsonl,
    read_header,
    read_workbook,
)
from tunesmith_finance.trends import bucket_index, bucket_start, iso


def read_stream(
    path: str | Path, *, naive_tz: Any = None
) -> tuple[list[tuple[float, int, dict]], int]:
    """Every readable record of a file with its UTC time and line, in time order; and how many
    were not."""
    path = Path(path)
    kind = check_file(path)
    records: list[tuple[float, int, dict]] = []
    bad = 0
    with ExitStack() as opened:
        if kind == WORKBOOK:  # read whole, its rows numbered as Excel shows them
            rows = iter(read_workbook(path).rows)
        elif kind == "csv":
            handle = opened.enter_context(path.open("rb"))
            header, size, lines = read_header(handle, name=str(path))
            if header:
                check_columns(header, str(path))
            rows = iter_csv(handle, header, offset=size, line=lines)
        else:
            rows = iter_jsonl(opened.enter_context(path.open("rb")))
        for row in rows:
            if row.value is None:
                bad += 1
                continue
            try:
                doc = to_document(row.value, **({"naive_tz": naive_tz} if naive_tz else {}))
            except RowError:
                bad += 1
                continue
            records.append((doc.ts, row.line, row.value))
    records.sort(key=lambda item: item[0])
    return records, bad


def replay(
    ingester: Any,
    path: str | Path,
    *,
    detector: Any,
    options: AlertOptions | None = None,
    explain: bool = True,
    sinks: list[str] | None = None,
    speed: float = 0.0,
    echo: Callable[[str], None] = print,
) -> dict[str, int]:
    """Replay ``path`` step by step (``detector.bucket`` seconds each); returns counts."""
    options = options or AlertOptions()
    records, bad = read_stream(path, naive_tz=ingester.naive_tz)
    if bad:
        echo(f"{bad} unreadable row(s) in {path} left out (`finance ingest` reports them by line)")
    if not records:
        return {"documents": 0, "steps": 0, "alerts": 0}
    step = detector.bucket
    # Steps are the alerts' buckets, cut on the wall clock of options.tz (trends.py).
    zone = resolve_zone(options.tz, "--tz")
    first = bucket_index(records[0][0], step, zone)
    last = bucket_index(records[-1][0], step, zone)
    model = ingester.model if explain else None
    cursor = 0
    alerts = 0
    for index in range(first, last + 1):
        end = bucket_start(index + 1, step, zone)
        batch, lines = [], []
        while cursor < len(records) and records[cursor][0] < end:
            lines.append(records[cursor][1])
            batch.append(records[cursor][2])
            cursor += 1
        if batch:
            # With their lines in the file: a changed text, an unknown topic or a truncation is
            # reported where it is, not at its place in this step's batch.
            ingester.ingest_records(batch, name=str(path), lines=lines)
        fired = run_alerts(
            ingester.db, detector=detector, options=options, model=model, sinks=sinks, until=end
        )
        line = f"{iso(bucket_start(index, step, zone), zone)}  +{len(batch):<3} documents"
        if fired:
            line += f"  ALERT x{len(fired)}"
        echo(line)
        for alert in fired:
            alerts += 1
            echo("  " + alert_message(alert))
        if speed > 0:
            _time.sleep(speed)
    return {"documents": cursor, "steps": last - first + 1, "alerts": alerts}
