"""``tunesmith support handoffs``: the queue of hand-offs waiting for a person, oldest first,
and ``--close`` to close one (resolved by an entry, or with none: a gap in the KB)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tunesmith_support.commands.shared import DB_HELP, KB_OPTION, open_service, stored_db

SINCE_HELP = "Only hand-offs made since then: an age (2h, 7d) or an ISO 8601 time (UTC)."


def waited_text(seconds: int) -> str:
    """A wait in a few characters: ``45s``, ``12m``, ``3h 05m``, ``2d 4h``."""
    minutes, hours = seconds // 60, seconds // 3600
    if seconds < 60:
        return f"{seconds}s"
    if hours < 1:
        return f"{minutes}m"
    if hours < 24:
        return f"{hours}h {minutes % 60:02d}m"
    return f"{hours // 24}d {hours % 24}h"


def handoff_lines(item: dict[str, Any]) -> list[str]:
    """One hand-off for an agent's terminal: what was asked, why it was handed off, the
    conversation before it, the candidates and, once closed, how."""
    verb = "waiting" if item["status"] == "waiting" else "waited"
    lines = [
        f"turn {item['turn_id']}  {verb} {waited_text(item['waited_seconds'])}  "
        f"({item['reason']}, confidence {item['confidence']:.2f})  "
        f"conversation {item['conversation_id']}  since {item['created_at']}",
    ]
    if item["earlier_turns"] > len(item["conversation"]):
        lines.append(f"  ({item['earlier_turns'] - len(item['conversation'])} earlier turns)")
    for turn in item["conversation"]:
        lines.append(f"  customer: {turn['question']}")
        said = turn["answer"].replace("\n", " ")
        said = said if len(said) <= 100 else said[:99] + "…"
        lines.append(f"  bot ({turn['decision']}): {said}")
    lines.append(f"  customer: {item['question']}")
    if item["candidates"]:
        named = ", ".join(f"{c['id']} ({c.get('title', '')})" for c in item["candidates"][:3])
        lines.append(f"  candidates: {named}")
    if item["status"] == "resolved":
        lines.append(f"  resolved with {item['entry_id']}" + _closed_by(item))
    elif item["status"] == "no_answer":
        lines.append("  closed with no entry (a gap in the knowledge base)" + _closed_by(item))
    return lines


def _closed_by(item: dict[str, Any]) -> str:
    by = f" by {item['agent']}" if item["agent"] else ""
    note = f": {item['note']}" if item["note"] else ""
    return f"{by} at {item['closed_at']}{note}"


def handoffs_command(
    kb: Path = KB_OPTION,
    show_all: bool = typer.Option(False, "--all", help="Closed hand-offs too."),
    since: str | None = typer.Option(None, "--since", help=SINCE_HELP),
    close: int | None = typer.Option(
        None, "--close", help="Close the hand-off of this turn (with --entry or --no-answer)."
    ),
    entry: str | None = typer.Option(
        None, "--entry", help="With --close: the entry id that answers it (a training row)."
    ),
    no_answer: bool = typer.Option(
        False, "--no-answer", help="With --close: the KB has no answer (counted as a gap)."
    ),
    agent: str = typer.Option("", "--agent", help="With --close: who closed it."),
    note: str = typer.Option("", "--note", help="With --close: a note kept with it."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Hand-offs waiting for a person, oldest first; --close TURN closes one."""
    from tunesmith.errors import UserInputError

    if close is None:
        if entry is not None or no_answer or agent or note:
            raise UserInputError("--entry, --no-answer, --agent and --note go with --close TURN")
        _show(kb, db, show_all, since, as_json)
        return
    if show_all or since is not None:
        raise UserInputError("--all and --since list hand-offs; they do not go with --close")
    if (entry is None) == (not no_answer):
        raise UserInputError("--close needs --entry ID (the answer) or --no-answer, one of them")
    service = open_service(kb, stored_db(kb, db), None)
    try:
        closed = service.close_handoff(close, entry_id=entry, agent=agent, note=note)
    finally:
        service.close()
    if as_json:
        typer.echo(json.dumps(closed, indent=2, ensure_ascii=False))
    elif closed["status"] == "resolved":
        typer.echo(f"hand-off of turn {close} resolved with {closed['entry_id']}")
    else:
        typer.echo(f"hand-off of turn {close} closed with no entry (a gap in the knowledge base)")


def _show(kb: Path, db: Path | None, show_all: bool, since: str | None, as_json: bool) -> None:
    """Print the queue (``show_all``: every hand-off) made since ``since``."""
    from tunesmith.events.ages import parse_moment
    from tunesmith_support.conversations import Conversations
    from tunesmith_support.kbindex import read_meta
    from tunesmith_support.service import default_db

    # Both checked before the database is read: one line for a typo.
    moment = None if since is None else parse_moment(since, "--since")
    read_meta(kb)
    path = db or default_db(kb)
    items: list[dict[str, Any]] = []
    if Path(path).exists():  # a listing does not create the database it lists
        log = Conversations.open(stored_db(kb, db))
        try:
            items = log.handoffs(waiting_only=not show_all, since=moment)
        finally:
            log.close()
    elif db is not None:
        stored_db(kb, db)  # a mistyped --db is one line, not an empty queue
    if as_json:
        typer.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    if not items:
        typer.echo("no hand-offs" if show_all else "no hand-offs waiting")
        return
    for item in items:
        typer.echo("\n".join(handoff_lines(item)))
        typer.echo("")
    waiting = sum(item["status"] == "waiting" for item in items)
    how = (
        f"; close one with: tunesmith support handoffs --kb {kb} --close TURN "
        "--entry ID | --no-answer"
        if waiting
        else ""  # nothing left to close
    )
    typer.echo(
        f"{waiting} waiting" + (f", {len(items) - waiting} closed" if show_all else "") + how
    )
