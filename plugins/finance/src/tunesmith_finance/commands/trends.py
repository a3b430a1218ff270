"""``tunesmith finance trends``: counts, negative share and mean score per key and time bucket."""

from __future__ import annotations

import sys
from itertools import chain
from pathlib import Path
from typing import Any

import typer

from tunesmith_finance.commands.checks import open_existing_db
from tunesmith_finance.commands.options import READ_DB_HELP, TZ
from tunesmith_finance.commands.output import echo_err, echo_lines


def trends_command(
    db: Path = typer.Option(..., "--db", help=READ_DB_HELP),
    by: str = typer.Option("topic", "--by", help="topic | ticker | all."),
    bucket: str = typer.Option(
        "1h",
        "--bucket",
        help="Bucket size: 15m, 1h, 1d, 1w, ... (cut on the --tz clock; weeks from Monday).",
    ),
    key: str | None = typer.Option(None, "--key", help="Only this topic or ticker."),
    since: str | None = typer.Option(
        None, "--since", help="From this time (ISO 8601; without a zone, in --tz)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Before this time (ISO 8601; without a zone, in --tz)."
    ),
    tz: str = TZ,
    as_json: bool = typer.Option(False, "--json", help="Print the rows as one JSON list."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Also write the rows as CSV."),
    chart: Path | None = typer.Option(
        None, "--chart", help="Also draw a PNG chart (alerts marked)."
    ),
    top: int = typer.Option(6, "--top", min=1, help="Keys on the chart (most documents first)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --csv or --chart file."),
) -> None:
    """Count, negative share (Wilson 95 % interval) and mean score per key and time bucket."""
    from tunesmith.errors import UserInputError
    from tunesmith_finance import trend_export
    from tunesmith_finance import trends as trend_mod
    from tunesmith_finance.documents import parse_moment, resolve_zone

    if key is not None and by == "all":
        raise UserInputError("--key picks a topic or ticker: use it with --by topic or ticker")
    zone = resolve_zone(tz, "--tz")
    _check_outputs({"--csv": csv_out, "--chart": chart}, force=force)
    low, high = parse_moment(since, "--since", zone), parse_moment(until, "--until", zone)
    store = open_existing_db(db)
    try:
        rows = trend_mod.trends(
            store, by=by, bucket=bucket, key=key, since=low, until=high, zone=zone
        )
        alerts: list[dict[str, Any]] = []
        if chart is not None:
            from tunesmith_finance.alerts import list_alerts

            # Only the alerts whose window meets the charted --since/--until range: one after
            # it was drawn on the range's last point, as if it had fired there.
            alerts = [
                a
                for a in list_alerts(store)
                if a["kind"] == by
                and (low is None or a["window_end"] > low)
                and (high is None or a["window_start"] < high)
            ]
    finally:
        store.close()
    if csv_out is not None:
        trend_export.write_csv(rows, csv_out)
        echo_err(f"wrote {csv_out}")
    if chart is not None:
        # The key as stored, as the rows and alerts name it: as typed ("$aapl") it drew nothing.
        keys = [trend_mod.stored_key(by, key)] if key else None
        # No row: the chart says so (an empty time axis read 1970), as the dashboard's does.
        what = f"of {by} {keys[0]}" if keys else ("" if by == "all" else f"with a {by}")
        within = " in the --since/--until range" if since or until else ""
        # A desk's 1,400 tickers are drawn as the top few: the title and a line say how many
        # were left out, so the chart is not read as the whole book.
        title = "Negative share per bucket (95% Wilson interval)"
        every = len({r.key for r in rows})
        if not keys and every > top:
            title += f"\n{top} of {every} {by}s, most documents first"
            echo_err(
                f"the chart draws the {top} of {every} {by}s with the most documents "
                "(--top N for more, --key K for one)"
            )
        trend_mod.save_chart(
            rows,
            chart,
            alerts=alerts,
            keys=keys,
            limit=top,
            title=title,
            bucket=trend_mod.parse_duration(bucket),
            zone=zone,
            empty=" ".join(f"No documents {what}{within}".split()) + ".",
        )
        echo_err(f"wrote {chart}")
    if as_json:
        trend_export.write_json(rows, sys.stdout)
        return
    label = f"bucket ({trend_mod.zone_name(zone)})"
    width = max(21 if trend_mod.is_utc(zone) else 25, len(label))  # ...Z, or ...+05:30
    header = (
        f"{'key':<12} {label:<{width}} {'n':>5} {'neg':>5} {'share':>6} {'95% CI':>13} {'mean':>7}"
    )
    body = (
        f"{r.key:<12} {r.bucket_start:<{width}} {r.count:>5} {r.negatives:>5} "
        f"{r.negative_share:>6.2f} {r.share_low:>6.2f}-{r.share_high:<6.2f} {r.mean_score:>+7.3f}"
        for r in rows
    )
    echo_lines(chain([header], body))


def _check_outputs(outputs: dict[str, Path | None], *, force: bool) -> None:
    """Refuse, before any work, an output that is a folder, two outputs that are one file, and
    an existing file without ``--force`` (as ``train --out`` and the core's ``--out`` do)."""
    from tunesmith.errors import OutputExistsError, UserInputError
    from tunesmith.io import check_output_file

    given = {flag: path for flag, path in outputs.items() if path is not None}
    for flag, path in given.items():
        check_output_file(path, flag)  # a folder first: --force cannot replace it with a file
        if path.exists() and not force:
            raise OutputExistsError(f"{flag} {path} exists already; pass --force to replace it")
    seen: dict[Path, str] = {}
    for flag, path in given.items():
        where = path.resolve()
        if where in seen:
            raise UserInputError(
                f"{seen[where]} and {flag} are both {path}; one would overwrite the other: "
                "give two files"
            )
        seen[where] = flag


def register(app: typer.Typer) -> None:
    """Add ``trends`` to ``app``."""
    app.command("trends")(trends_command)
