"""``tunesmith events list | tail | retry | prune``: show the event outbox, re-send what failed,
and remove what was delivered long ago."""

from __future__ import annotations

import itertools
import json
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer

from tunesmith.errors import TunesmithError, UserInputError

group = typer.Typer(
    no_args_is_help=True,
    help=(
        "Show the event outbox (every event emitted, per sink) and re-send failed deliveries."
        "\n\nSinks, as the commands that emit take them (--sink): stdout, jsonl:FILE.jsonl, "
        "webhook:https://..., env:NAME (the sink that environment variable holds, so a "
        "webhook's token is on no command line). Each event is recorded in the outbox first. A "
        "failed delivery is tried 3 times, 0.2 s then 0.4 s apart; a webhook has 3 s to take "
        "the connection and 5 s to answer (redirects are not followed), and one that times out "
        "is not tried again. After a timeout, or 3 failed deliveries in a row, the sink is held "
        "for 30 s (doubled at each hold, at most 10 minutes): deliveries to it are kept as "
        "failed without trying, for `events retry`. See docs/cli.md, Events."
    ),
)

OUTBOX_HELP = "The outbox database (default $TUNESMITH_HOME/events.sqlite)."
STATUS_HELP = "Only deliveries in this status: pending, delivered or failed."
SINCE_HELP = (
    "Only events created since then: an age (12h, 7d, 4w) or an ISO 8601 time (UTC without a zone)."
)


def _since(text: str | None) -> Any:
    """``--since`` as a UTC datetime, checked before the outbox is opened."""
    from tunesmith.events.ages import parse_moment

    return None if text is None else parse_moment(text, "--since")


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


def _show(deliveries: Iterable[Any], as_json: bool) -> None:
    """The deliveries as JSON (sink names whole, for scripts and `retry --allow-sink`) or as a
    table whose webhook URLs hide the path and query, where services keep their token: a
    terminal is often shared on a screen or pasted into a ticket.

    Written as they are read, so a year's outbox is never held whole; the table's columns are
    as wide as the first rows need (:data:`WIDTH_ROWS`), later wider values push the rest."""
    if as_json:
        said = False
        for d in deliveries:
            item = textwrap.indent(json.dumps(d.to_dict(), indent=2, ensure_ascii=False), "  ")
            typer.echo(("[\n" if not said else ",\n") + item, nl=False)
            said = True
        typer.echo("\n]" if said else "[]")
        return
    rows = iter(_table_row(d) for d in deliveries)
    first = list(itertools.islice(rows, WIDTH_ROWS))
    if not first:
        typer.echo("no events", err=True)
        return
    headers = ["created_at", "event", "kind", "sink", "status", "attempts", "last_error"]
    widths = [max(len(h), *(len(row[i]) for row in first)) for i, h in enumerate(headers)]
    for row in itertools.chain([headers], first, rows):
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


#: Rows of a table whose values set its columns' widths.
WIDTH_ROWS = 1000


def _table_row(d: Any) -> list[str]:
    """One delivery as the table shows it (a webhook URL without its path and query)."""
    from tunesmith.events import shown_sink

    return [
        d.event.created_at,
        d.event.id[:12],
        d.event.kind,
        shown_sink(d.sink),
        d.status,
        str(d.attempts),
        (d.last_error or "").replace("\n", " ")[:120],
    ]


#: The tables hide a webhook URL's path and query (its token); the JSON keeps the whole sink.
JSON_HELP = "Print one JSON list of deliveries (sinks whole: the table hides a webhook's path)."


@group.command("list")
def list_command(
    outbox: Path | None = typer.Option(None, "--outbox", help=OUTBOX_HELP),
    status: str | None = typer.Option(None, "--status", help=STATUS_HELP),
    since: str | None = typer.Option(None, "--since", help=SINCE_HELP),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="At most this many deliveries, the oldest first."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Every delivery in the outbox, oldest first: event, sink, status, attempts, last error.

    The table hides a webhook URL's path and query, where services keep their token; --json
    shows the whole sink, as `events retry --allow-sink` takes it. On a large outbox, --since
    and --limit keep it short (and `events tail` shows the newest)."""
    from tunesmith.events import iter_deliveries

    _check_status(status)
    start = _since(since)
    path = _outbox(outbox)
    _show(iter_deliveries(path, status=status, since=start, limit=limit) if path else [], as_json)
    _say_holds(path)


@group.command("tail")
def tail_command(
    lines: int = typer.Option(10, "-n", "--lines", min=1, help="How many deliveries to show."),
    outbox: Path | None = typer.Option(None, "--outbox", help=OUTBOX_HELP),
    status: str | None = typer.Option(None, "--status", help=STATUS_HELP),
    since: str | None = typer.Option(None, "--since", help=SINCE_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The newest deliveries (default 10), oldest of them first."""
    from tunesmith.events import list_deliveries

    _check_status(status)
    start = _since(since)
    path = _outbox(outbox)
    found = list_deliveries(path, status=status, since=start, newest=lines) if path else []
    _show(found, as_json)
    _say_holds(path)


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
    A sink held after failing is tried now, cool-down or not: its oldest delivery, then the
    rest if that one arrives (which lifts the hold for every process emitting to it).
    """
    from tunesmith.events import STATUSES, RetryPolicy, retry

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
    skipped = sum(len(r.skipped) for r in reports)
    if as_json:
        payload = [
            {
                "event_id": r.event_id,
                "delivered": r.delivered,
                "failed": r.errors,
                "skipped": r.skipped,
            }
            for r in reports
        ]
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        untried = f" ({skipped} of them not tried: their sink kept failing)" if skipped else ""
        typer.echo(f"re-sent {delivered} deliveries; {len(failed)} still failing{untried}")
        _say_failures(failed)
    if path is not None and failed:
        _say_holds(path)
    if failed:
        noun = "delivery" if len(failed) == 1 else "deliveries"
        raise TunesmithError(f"{len(failed)} {noun} still failing; see `{_list_failed(path)}`")


@group.command("prune")
def prune_command(
    delivered_before: str = typer.Option(
        ...,
        "--delivered-before",
        help="Remove the events delivered to every sink before this: an age (30d, 12w; at "
        "least a day) or an ISO 8601 time (UTC without a zone).",
    ),
    outbox: Path | None = typer.Option(None, "--outbox", help=OUTBOX_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; change nothing."),
    batch_size: int = typer.Option(
        1000, "--batch-size", min=1, help="Events removed per transaction."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the plan or report as JSON."),
    vacuum: bool = typer.Option(
        False,
        "--vacuum",
        help="Then give the freed space back to the disk, in short transactions that emits "
        "hardly wait for. An outbox made before this was possible needs --full once.",
    ),
    full: bool = typer.Option(
        False,
        "--full",
        help="With --vacuum, on an outbox made before it could give space back bit by bit: "
        "one full VACUUM that rewrites it and switches that on. Stop the services emitting "
        "into it first: it holds the lock they need.",
    ),
) -> None:
    """Remove events delivered long ago, with their deliveries; never a pending or failed one.

    In short transactions, so a service emitting into the same outbox waits at most one batch.
    The freed space stays in the file, and new events fill it: an outbox pruned daily stops
    growing; --vacuum gives it back to the disk."""
    from tunesmith.events import plan_prune, prune, prune_cutoff

    if full and not vacuum:
        raise UserInputError("--full goes with --vacuum (a full VACUUM of an older outbox)")
    cutoff = prune_cutoff(delivered_before)
    path = _outbox(outbox)
    if dry_run or path is None:
        plan = plan_prune(path, cutoff)
        if as_json:
            typer.echo(json.dumps(plan.to_dict(), indent=2))
            return
        if path is None and not dry_run:
            # "would remove 0" read as if --dry-run had been given.
            typer.echo("no outbox yet (nothing was emitted): nothing to remove")
            return
        oldest = f", the oldest created {plan.oldest}" if plan.oldest else ""
        typer.echo(
            f"would remove {plan.events:,} event(s) and {plan.deliveries:,} delivery(ies) "
            f"delivered before {cutoff}{oldest}"
        )
        _say_kept(plan)
        return
    report = prune(
        path,
        cutoff,
        batch=batch_size,
        on_batch=None if as_json else _progress(),
        vacuum=vacuum,
        full=full,
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        _say_not_vacuumed(report, path, delivered_before)
        return
    typer.echo(
        f"removed {report.events:,} event(s) and {report.deliveries:,} delivery(ies) delivered "
        f"before {cutoff} in {report.seconds:.1f} s"
    )
    _say_kept(report.plan)
    if report.vacuum in ("incremental", "full"):
        typer.echo(
            f"{path}: {report.plan.file_bytes / 1e6:,.1f} MB -> {report.file_bytes / 1e6:,.1f} "
            f"MB ({report.vacuum} vacuum, {report.vacuum_seconds:.1f} s)"
        )
        return
    hint = " (--vacuum gives them back to the disk)" if report.vacuum == "none" else ""
    typer.echo(
        f"{path}: {report.file_bytes / 1e6:,.1f} MB, {report.free_bytes / 1e6:,.1f} MB of it "
        f"free pages that new events fill{hint}"
    )
    _say_not_vacuumed(report, path, delivered_before)


def _say_not_vacuumed(report: Any, path: Path, delivered_before: str) -> None:
    """On stderr, in one line: --vacuum left an older outbox as it was, and how to switch it
    (a full VACUUM would have held every emit's lock for the whole rewrite)."""
    if report.vacuum != "skipped":
        return
    typer.echo(
        f"{path}: space not given back: this outbox was made before it could be done while "
        "services emit; stop them, then run `tunesmith events prune --outbox "
        f"{path} --delivered-before {delivered_before} --vacuum --full` once",
        err=True,
    )


def _say_kept(plan: Any) -> None:
    """What a prune keeps, in one line."""
    typer.echo(
        f"kept {plan.kept_events:,} event(s), {plan.kept_unsettled:,} of them older than the "
        "cut-off with a delivery pending, failed or delivered since"
    )


def _progress(every: int = 50_000) -> Any:
    """A callback saying on stderr how far a long prune got, every ``every`` events."""
    said = [0]

    def tell(done: int) -> None:
        if done - said[0] >= every:
            said[0] = done
            typer.echo(f"  {done:,} events removed...", err=True)

    return tell


def _list_failed(path: Path | None) -> str:
    """The command that lists what still fails in ``path``, naming ``--outbox`` as
    :func:`tunesmith.events.retry_command` does (a bare one read the default outbox, empty for
    a KB's or a finance database's)."""
    from tunesmith.events import retry_command as retry_line

    if path is None:
        return "tunesmith events list --status failed"
    return retry_line(path).replace("events retry", "events list --status failed", 1)


def _say_holds(path: Path | None) -> None:
    """On stderr (stdout stays the table or one JSON document): each sink held after failing,
    until when, and that emits keep its deliveries untried until then."""
    from tunesmith.events import list_holds, shown_sink
    from tunesmith.events import retry_command as retry_line

    for hold in list_holds(path) if path is not None else []:
        when = (
            f"cool-down over since {hold.held_until}: the next emit sends one trial delivery"
            if hold.over
            else f"until {hold.held_until}: emits keep its deliveries as failed without trying"
        )
        typer.echo(
            f"held: {shown_sink(hold.sink)} ({hold.why}) {when}; `{retry_line(path)}` tries it now",
            err=True,
        )


#: Failing deliveries said one per line for each sink; the rest are counted.
SHOWN_PER_SINK = 3


def _say_failures(failed: list[tuple[str, str, str]]) -> None:
    """The deliveries still failing on stderr, a few per sink and then a count: a sink down
    for a day left 500 lines of the same error."""
    from tunesmith.events import shown_sink

    per_sink: dict[str, int] = {}
    for event, sink, error in failed:
        per_sink[sink] = per_sink.get(sink, 0) + 1
        if per_sink[sink] <= SHOWN_PER_SINK:
            # The sink as the table shows it; a refusal's error names it whole, for
            # --allow-sink (the user's consent to exactly that URL).
            typer.echo(f"  {event[:12]} {shown_sink(sink)}: {error}", err=True)
    for sink, count in per_sink.items():
        if count > SHOWN_PER_SINK:
            typer.echo(f"  ... and {count - SHOWN_PER_SINK} more to {shown_sink(sink)}", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``events`` group to ``app``."""
    app.add_typer(group, name="events")
