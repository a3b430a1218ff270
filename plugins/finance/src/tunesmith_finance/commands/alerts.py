"""``tunesmith finance alerts``: detect, explain, store and send negative surges, or ``--list``
the stored ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tunesmith.devices import check_device, device_option
from tunesmith_finance.commands.checks import build_detector, open_existing_db, sinks_from_flag
from tunesmith_finance.commands.options import (
    BUCKET,
    COOLDOWN,
    HALF_LIFE,
    MIN_HISTORY,
    MIN_LIFT,
    MIN_VOLUME,
    P_VALUE,
    READ_DB_HELP,
    STORED_PRIOR,
    TZ_HELP,
    WINDOW,
)
from tunesmith_finance.commands.output import NOT_SENT, echo_err, echo_json, echo_out


def alerts_command(
    db: Path = typer.Option(..., "--db", help=READ_DB_HELP),
    model: Path | None = typer.Option(
        None, "--model", "-m", help="Model for the explanations (default: the one ingest used)."
    ),
    by: str | None = typer.Option(
        None,
        "--by",
        help="topic | ticker | all (default topic; with --list, only that kind, else every kind).",
    ),
    bucket: str = BUCKET,
    window: int = WINDOW,
    half_life: str | None = HALF_LIFE,
    min_volume: int = MIN_VOLUME,
    min_lift: float = MIN_LIFT,
    p_value: float = P_VALUE,
    cooldown: str | None = COOLDOWN,
    prior: float | None = STORED_PRIOR,
    min_history: int | None = MIN_HISTORY,
    sink: list[str] | None = typer.Option(
        None,
        "--sink",
        help="Event sink, e.g. jsonl:alerts.jsonl, stdout, webhook:URL, env:NAME (the sink held "
        "in that environment variable: a webhook's token kept off the command line).",
    ),
    explain: bool = typer.Option(True, "--explain/--no-explain", help="Explain each alert."),
    max_explain: int = typer.Option(
        100, "--max-explain", min=0, help="Most documents explained (0: none)."
    ),
    list_only: bool = typer.Option(False, "--list", help="Only list the stored alerts."),
    as_json: bool = typer.Option(False, "--json", help="Print alerts as one JSON list."),
    tz: str | None = typer.Option(
        None,
        "--tz",
        help=TZ_HELP + " (default UTC; with --list, the zone windows are shown in, by default "
        "each alert's own).",
    ),
    device: str = device_option("The model explains the alerts there (loaded for a new one)."),
) -> None:
    """Find negative surges over a rolling baseline, explain them, store and send them.

    Only alerts not stored yet are sent, so it is safe to run again (e.g. from cron).
    """
    from tunesmith.errors import UserInputError
    from tunesmith.events import refuse_stdout_sink_with_json
    from tunesmith_finance.alerts import (
        AlertOptions,
        explaining_model,
        list_alerts,
        run_alerts,
    )
    from tunesmith_finance.documents import resolve_zone
    from tunesmith_finance.trends import BY

    check_device(device)  # before the database is read
    if by is not None and by not in BY:  # before a model is loaded for the explanations
        raise UserInputError(f"--by {by!r}: expected one of {', '.join(BY)}")
    if tz is not None:
        resolve_zone(tz, "--tz")
    # --list sends nothing, so only a run that may send alerts has the two on stdout.
    refuse_stdout_sink_with_json(sink, as_json and not list_only)
    sinks = sinks_from_flag(sink)
    store = open_existing_db(db)
    try:
        if list_only:
            found = list_alerts(store, kind=by, tz=tz)
        else:
            detector = build_detector(
                bucket=bucket,
                window=window,
                half_life=half_life,
                min_volume=min_volume,
                min_lift=min_lift,
                p_value=p_value,
                cooldown=cooldown,
                prior=prior,
                min_history=min_history,
                db=store,
            )
            found = run_alerts(
                store,
                detector=detector,
                options=AlertOptions(by=by or "topic", max_explain=max_explain, tz=tz or "UTC"),
                model=explaining_model(store, model, explain, device, say=echo_err),
                sinks=sinks,
            )
    finally:
        store.close()
    if found and not list_only and not sinks:
        echo_err(NOT_SENT.format(n=len(found)))
    if as_json:
        echo_json(found)
        return
    if not found:
        echo_err(
            "no new alerts" if not list_only else f"no alerts stored{f' by {by}' if by else ''}"
        )
    for alert in found:
        _print_alert(alert, listing=list_only)


def _print_alert(alert: dict[str, Any], *, listing: bool = False) -> None:
    from tunesmith_finance.alerts import alert_message, settings_flags

    echo_out(alert_message(alert))
    if listing and not alert["sent"]:  # found without a sink, or stored before it was sent
        echo_out(
            "    not sent yet: the next `finance alerts` or `watch --alerts` with a --sink sends it"
        )
    # Alerts of several runs (a 6h look beside the hourly cron) share one list: which settings
    # found each one is what tells them apart.
    flags = settings_flags(alert.get("settings"))
    echo_out(
        f"    found with {flags}" if flags else "    found with: not recorded (an older alert)"
    )
    for example in alert["examples"]:
        echo_out(f"    {example['score']:+.3f}  {example['time']}  {example['text'][:90]}")


def register(app: typer.Typer) -> None:
    """Add ``alerts`` to ``app``."""
    app.command("alerts")(alerts_command)
