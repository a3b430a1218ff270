"""``tunesmith finance alerts``: detect, explain, store and send negative surges, or ``--list``
the stored ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tunesmith.devices import check_device, device_option
from tunesmith_finance.commands import alert_triage as tri
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
    state: str | None = tri.STATE,
    ack: list[str] | None = tri.ACK,
    noise: list[str] | None = tri.NOISE,
    reopen: list[str] | None = tri.REOPEN,
    note: str | None = tri.NOTE,
    who: str | None = tri.WHO,
    mute: str | None = tri.MUTE,
    for_: str | None = tri.FOR,
    unmute: str | None = tri.UNMUTE,
    mutes: bool = tri.MUTES,
    noise_report: bool = tri.REPORT,
    since: str | None = tri.SINCE,
    until: str | None = tri.UNTIL,
) -> None:
    """Find negative surges over a rolling baseline, explain them, store and send them.

    Only alerts not stored yet are sent, so it is safe to run again (e.g. from cron). Triage
    the stored ones: --list (the open ones), --ack or --noise an alert, --mute a key --for a
    while, --noise-report.
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
    triage = tri.Triage(
        ack=list(ack or []), noise=list(noise or []), reopen=list(reopen or []), note=note,
        who=who, mute=mute, duration=for_, unmute=unmute, mutes=mutes, report=noise_report,
        since=since, until=until,
    )  # fmt: skip
    triage.check(list_only)
    shown_state = tri.check_state(state, list_only)
    if triage.actions():
        store = open_existing_db(db)
        try:
            tri.run_triage(store, triage, by=by, tz=tz, as_json=as_json)
        finally:
            store.close()
        return
    # --list sends nothing, so only a run that may send alerts has the two on stdout.
    refuse_stdout_sink_with_json(sink, as_json and not list_only)
    sinks = sinks_from_flag(sink)
    store = open_existing_db(db)
    stored: list[Any] = []
    try:
        if list_only:
            stored = list_alerts(store, kind=by, tz=tz)
            found = [a for a in stored if shown_state in ("all", a["state"])]
            if len(found) < len(stored):  # said, so that no alert is hidden without a word
                echo_err(_hidden(stored, shown_state))
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
        kind = f" by {by}" if by else ""
        held = f" {shown_state}" if list_only and stored else ""  # some, in other states
        echo_err("no new alerts" if not list_only else f"no{held} alerts stored{kind}")
    for alert in found:
        _print_alert(alert, listing=list_only)


def _hidden(stored: list[dict[str, Any]], shown: str) -> str:
    """The line saying which alerts `--list --state` left out: "not shown: 2 noise, 1 muted
    (--state all lists every one)"."""
    from collections import Counter

    counts = Counter(a["state"] for a in stored if a["state"] != shown)
    told = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return f"not shown: {told} (--state all lists every one)"


def _print_alert(alert: dict[str, Any], *, listing: bool = False) -> None:
    from tunesmith_finance.alerts import alert_message, settings_flags

    echo_out(alert_message(alert))
    if listing and not alert["sent"] and alert["state"] != "muted":
        # found without a sink, or stored before it was sent; a muted one is never sent
        echo_out(
            "    not sent yet: the next `finance alerts` or `watch --alerts` with a --sink sends it"
        )
    if listing:  # its id, to --ack it, and its state
        echo_out(tri.state_line(alert))
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
