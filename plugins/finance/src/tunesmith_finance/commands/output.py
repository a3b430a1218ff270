"""How the finance commands print: result lines on stdout, messages on stderr, JSON, reports."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import typer

#: Said when alerts were found by a run without --sink: they stay pending, not lost.
NOT_SENT = (
    "{n} alert(s) stored and not sent (no --sink); the next `finance alerts` or "
    "`finance watch --alerts` with a --sink sends them"
)


def echo_json(data: Any) -> None:
    """``data`` on stdout as one indented JSON document."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def echo_err(message: str) -> None:
    """A message on stderr, control characters escaped."""
    from tunesmith.data.limits import printable

    # Lines quote headlines, topics and tickers of a feed: its escape sequences are shown, not
    # sent to the terminal.
    typer.echo(printable(message), err=True)


def echo_out(line: str) -> None:
    """A line of a human-readable result on stdout, control characters escaped (see echo_err)."""
    from tunesmith.data.limits import printable

    typer.echo(printable(line))


def echo_lines(lines: Iterable[str], chunk: int = 4096) -> None:
    """Lines of a human-readable result on stdout, as :func:`echo_out` writes each, written
    ``chunk`` lines at a time: an echo per line flushes per line, and a desk's 350,000 trend
    rows took 36 s on a terminal or a pipe."""
    from tunesmith.data.limits import printable

    held: list[str] = []
    for line in lines:
        held.append(printable(line))
        if len(held) >= chunk:
            typer.echo("\n".join(held))
            held = []
    if held:
        typer.echo("\n".join(held))


def print_report(report: Any, as_json: bool) -> None:
    """An ingest ``Report``: as JSON on stdout, or its summary and issues on stderr."""
    if as_json:
        echo_json(report.to_dict())
        return
    echo_err(report.summary())
    for issue in report.issues:
        if issue.kind != "changed_text":  # ingest warned about it when it happened
            echo_err(f"  {issue}")
    hidden = report.skipped + report.changed + report.truncated + report.unknown_topics
    if hidden > len(report.issues):
        echo_err(f"  ... {hidden - len(report.issues)} more (all are stored in finance_issues)")
