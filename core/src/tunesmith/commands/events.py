"""``tunesmith events list | tail | retry``: show the event outbox and re-send what failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tunesmith.errors import TunesmithError, UserInputError

group = typer.Typer(
    no_args_is_help=True,
    help="Show the event outbox (every event emitted, per sink) and re-send failed deliveries.",
)

OUTBOX_HELP = "The outbox database (default $TUNESMITH_HOME/events.sqlite)."
STATUS_HELP = "Only deliveries in this status: pending, delivered or failed."


def _outbox(path: Path | None) -> Path | None:
    """The outbox to read, or None when it does not exist (nothing was emitted yet)."""
    from tunesmith.events import default_outbox_path

    target = path if path is not None else default_outbox_path()
    if not target.exists():
        if path is not None:
            raise UserInputError(f"{target}: no such outbox")
        return None
    return target


def _check_status(status: str | None) -> None:
    """Refuse an unknown ``--status`` also when there is no outbox yet (nothing to filter)."""
    from tunesmith.events import STATUSES

    if status is not None and status not in STATUSES:
        raise UserInputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")


def _show(deliveries: list[Any], as_json: bool) -> None:
    """The deliveries as JSON (sink names whole, for scripts and `retry --allow-sink`) or as a
    table whose webhook URLs hide the path and query, where services keep their token: a
    terminal is often shared on a screen or pasted into a ticket."""
    from tunesmith.events import shown_sink

    if as_json:
        typer.echo(json.dumps([d.to_dict() for d in deliveries], indent=2, ensure_ascii=False))
        return
    if not deliveries:
        typer.echo("no events", err=True)
        return
    headers = ["created_at", "event", "kind", "sink", "status", "attempts", "last_error"]
    rows = [
        [
            d.event.created_at,
            d.event.id[:12],
            d.event.kind,
            shown_sink(d.sink),
            d.status,
            str(d.attempts),
            (d.last_error or "").replace("\n", " ")[:120],
        ]
        for d in deliveries
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


#: The tables hide a webhook URL's path and query (its token); the JSON keeps the whole sink.
JSON_HELP = "Print one JSON list of deliveries (sinks whole: the table hides a webhook's path)."


@group.command("list")
def list_command(
    outbox: Path | None = typer.Option(None, "--outbox", help=OUTBOX_HELP),
    status: str | None = typer.Option(None, "--status", help=STATUS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Every delivery in the outbox, oldest first: event, sink, status, attempts, last error.

    The table hides a webhook URL's path and query, where services keep their token; --json
    shows the whole sink, as `events retry --allow-sink` takes it."""
    from tunesmith.events import list_deliveries

    _check_status(status)
    path = _outbox(outbox)
    _show(list_deliveries(path, status=status) if path else [], as_json)


@group.command("tail")
def tail_command(
    lines: int = typer.Option(10, "-n", "--lines", min=1, help="How many deliveries to show."),
    outbox: Path | None = typer.Option(None, "--outbox", help=OUTBOX_HELP),
    status: str | None = typer.Option(None, "--status", help=STATUS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The newest deliveries (default 10), oldest of them first."""
    from tunesmith.events import list_deliveries

    _check_status(status)
    path = _outbox(outbox)
    _show(list_deliveries(path, status=status, newest=lines) if path else [], as_json)


@group.command("retry")
def retry_command(
    outbox: Path | None = typer.Option(None, "--outbox", help=OUTBOX_HELP),
    status: str = typer.Option(
        "failed",
        "--status",
        help="Re-send deliveries in this status: failed (default), or pending ones a killed "
        "process left behind.",
    ),
    event_id: list[str] = typer.Option(
        [], "--id", help="Only this event (repeat the option for several)."
    ),
    tries: int = typer.Option(3, "--tries", min=1, help="Attempts per delivery."),
    allow_sink: list[str] = typer.Option(
        [],
        "--allow-sink",
        help="Also re-send to this sink though this setup did not record it: an outbox from "
        "another machine or TUNESMITH_HOME. The whole name, as `events list --json` and the "
        "refusal show it. Repeat for several.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list of results."),
) -> None:
    """Re-send failed deliveries to the sinks recorded for them; exit 1 if any still fail.

    Only to sinks this setup recorded them for ($TUNESMITH_HOME/outbox.key marks each one) and
    stdout: a delivery of an outbox made elsewhere stays unsent unless --allow-sink names it.
    """
    from tunesmith.events import STATUSES, RetryPolicy, retry, shown_sink

    if status not in STATUSES or status == "delivered":
        raise UserInputError(f"--status must be failed or pending, got {status!r}")
    path = _outbox(outbox)
    if path is None and event_id:
        # As with an outbox that lacks the id: an event asked for by id that is nowhere.
        from tunesmith.events import default_outbox_path

        raise UserInputError(
            f"no event with id {event_id[0]!r}: the outbox {default_outbox_path()} does not "
            "exist yet (nothing was emitted)"
        )
    reports = (
        retry(
            path,
            status=status,
            event_ids=event_id or None,
            policy=RetryPolicy(tries),
            allow_sinks=allow_sink,
        )
        if path is not None
        else []
    )
    delivered = sum(len(r.delivered) for r in reports)
    failed = [(r.event_id, name, r.errors[name]) for r in reports for name in r.failed]
    if as_json:
        payload = [
            {"event_id": r.event_id, "delivered": r.delivered, "failed": r.errors} for r in reports
        ]
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        typer.echo(f"re-sent {delivered} deliveries; {len(failed)} still failing")
        for event, sink, error in failed:
            # The sink as the table shows it; a refusal's error names it whole, for
            # --allow-sink (the user's consent to exactly that URL).
            typer.echo(f"  {event[:12]} {shown_sink(sink)}: {error}", err=True)
    if failed:
        noun = "delivery" if len(failed) == 1 else "deliveries"
        raise TunesmithError(
            f"{len(failed)} {noun} still failing; see `tunesmith events list --status failed`"
        )


def register(app: typer.Typer) -> None:
    """Add the ``events`` group to ``app``."""
    app.add_typer(group, name="events")
