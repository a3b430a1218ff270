"""``tunesmith finance prune``: keep a long-running database to the last N days."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tunesmith_finance.commands.checks import open_existing_db
from tunesmith_finance.commands.options import LOCK_TIMEOUT, READ_DB_HELP
from tunesmith_finance.commands.output import echo_err, echo_json, echo_out

if TYPE_CHECKING:
    from tunesmith_finance.retention import PrunePlan


def prune_command(
    db: Path = typer.Option(..., "--db", help=READ_DB_HELP),
    older_than: str | None = typer.Option(
        None, "--older-than", help="Delete documents older than this, from now: 90d, 12w, ..."
    ),
    before: str | None = typer.Option(
        None, "--before", help="Delete documents before this time (ISO 8601; UTC without a zone)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; change nothing."),
    vacuum: bool = typer.Option(
        False, "--vacuum", help="Give the freed space back to the disk (see docs/finance.md)."
    ),
    batch_size: int = typer.Option(
        2000, "--batch-size", min=1, help="Documents deleted per transaction."
    ),
    timeout: float = LOCK_TIMEOUT,
    as_json: bool = typer.Option(False, "--json", help="Print the plan or report as JSON."),
) -> None:
    """Delete documents older than a cut-off (their topics, tickers and issues too); keep alerts."""
    from tunesmith_finance import retention

    cutoff = retention.prune_cutoff(older_than, before)
    store = open_existing_db(db, timeout=timeout)
    try:
        if dry_run:
            plan = retention.plan_prune(store, cutoff)
            if as_json:
                echo_json(plan.to_dict())
            else:
                _say_plan(plan, db)
            return
        report = retention.prune(
            store,
            cutoff,
            batch=batch_size,
            vacuum=vacuum,
            on_batch=None if as_json else _progress(report_every=50_000),
        )
    finally:
        store.close()
    if as_json:
        echo_json(report.to_dict())
        return
    echo_err(
        f"deleted {report.documents:,} document(s) older than {retention.iso(cutoff)}, "
        f"{report.issues:,} issue(s), {report.progress} progress record(s) of files gone from "
        f"disk; kept {report.plan.kept_documents:,} document(s) and every alert "
        f"({report.plan.alerts_kept} about windows before the cut-off) in {report.seconds:.1f} s"
    )
    echo_err(_space(report.file_bytes, report.free_bytes, report.vacuum))


def _say_plan(p: PrunePlan, db: Path) -> None:
    """The dry run's lines: what would go, what stays."""
    from tunesmith_finance.retention import iso

    oldest = f", the oldest from {iso(p.oldest)}" if p.oldest is not None else ""
    echo_out(
        f"would delete {p.documents:,} document(s) older than {iso(p.cutoff)}{oldest}, "
        f"with {p.keys:,} topic/ticker row(s)"
    )
    echo_out(f"would delete {p.issues:,} issue(s) (of those documents, or recorded before it)")
    for path in p.progress:
        echo_out(f"would delete the progress record of {path} (the file is gone)")
    echo_out(
        f"would keep {p.kept_documents:,} document(s) and every alert "
        f"({p.alerts_kept} about windows before the cut-off)"
    )
    echo_out(f"{db}: {p.file_bytes / 1e6:,.1f} MB, {p.free_bytes / 1e6:,.1f} MB of it free pages")


def _space(size: int, free: int, vacuum: str) -> str:
    """What happened to the space, in one line."""
    if vacuum != "none":
        return f"the database is now {size / 1e6:,.1f} MB ({vacuum} vacuum)"
    return (
        f"the database is {size / 1e6:,.1f} MB, {free / 1e6:,.1f} MB of it free pages that new "
        "documents fill (--vacuum gives them back to the disk)"
    )


def _progress(report_every: int) -> Any:
    """A callback saying on stderr how far a long prune got, every ``report_every`` documents."""
    said = [0]

    def tell(done: int) -> None:
        if done - said[0] >= report_every:
            said[0] = done
            echo_err(f"  {done:,} documents deleted...")

    return tell


def register(app: typer.Typer) -> None:
    """Add ``prune`` to ``app``."""
    app.command("prune")(prune_command)
