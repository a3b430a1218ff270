"""``tunesmith support handoffs``: the queue of hand-offs waiting for a person, oldest first,
and ``--close`` to close one (resolved by an entry, or with none: a gap in the KB)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import typer

from tunesmith.agent import AGENT_ENV, env_agent
from tunesmith_support.commands.shared import DB_HELP, KB_OPTION, open_service, stored_db
from tunesmith_support.handoff_pages import DEFAULT_LIMIT, MAX_LIMIT

SINCE_HELP = "Only hand-offs made since then: an age (2h, 7d) or an ISO 8601 time (UTC)."


def default_agent(agent: str) -> str:
    """``agent``, else ``$TUNESMITH_AGENT`` (:func:`tunesmith.agent.env_agent`), else ``""``.
    Never ``$USER``: on a shared support machine or in a container it is the account's
    ("support", "root"), and a wrong name in the log of who closed what is worse than none (a
    claim or reopening without one asks)."""
    return agent or env_agent()


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
    conversation before it, the candidates, who holds it and, once closed, how."""
    from tunesmith_support.handoff_claims import ago

    verb = "waiting" if item["status"] == "waiting" else "waited"
    lines = [
        f"turn {item['turn_id']}  {verb} {waited_text(item['waited_seconds'])}  "
        f"({item['reason']}, confidence {item['confidence']:.2f})  "
        f"conversation {item['conversation_id']}  since {item['created_at']}",
    ]
    earlier = item.get("earlier_waiting") or []
    if earlier:
        turns = ", ".join(str(e["turn_id"]) for e in earlier)
        lines.append(
            f"  {len(earlier) + 1} questions waiting in this conversation, the first since "
            f"{item['waiting_since']} (earlier turns {turns} close with this one)"
        )
    if item.get("claimed_by") and item["status"] == "waiting":
        lines.append(f"  claimed by {item['claimed_by']} {ago(item['claimed_at'])}")
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
    elif item["status"] == "superseded":
        lines.append(f"  closed with turn {item['closed_with']}" + _closed_by(item))
    return lines


def _closed_by(item: dict[str, Any]) -> str:
    by = f" by {item['agent']}" if item["agent"] else ""
    claimed = item.get("claimed_by")
    held = f" (claimed by {claimed})" if claimed and claimed != item["agent"] else ""
    note = f": {item['note']}" if item["note"] else ""
    return f"{by}{held} at {item['closed_at']}{note}"


def _turns(ids: list[int]) -> str:
    return ("turn " if len(ids) == 1 else "turns ") + ", ".join(map(str, ids))


def handoffs_command(
    kb: Path = KB_OPTION,
    show_all: bool = typer.Option(False, "--all", help="Closed hand-offs too."),
    since: str | None = typer.Option(None, "--since", help=SINCE_HELP),
    per_turn: bool = typer.Option(
        False,
        "--per-turn",
        help="One item per hand-off turn (default: one per conversation, its newest question).",
    ),
    limit: int | None = typer.Option(
        None,
        "--limit",
        min=1,
        max=MAX_LIMIT,
        help=f"The most items to list (at most {MAX_LIMIT}). Default: every waiting one; with "
        f"--all, {DEFAULT_LIMIT}. The last line says how to list the next ones (--after).",
    ),
    after: int | None = typer.Option(
        None,
        "--after",
        min=0,
        help="List the items after this position: the number the previous listing named.",
    ),
    close: int | None = typer.Option(
        None,
        "--close",
        help="Close the hand-off of this turn (with --entry or --no-answer), and its "
        "conversation's earlier waiting ones with it.",
    ),
    entry: str | None = typer.Option(
        None, "--entry", help="With --close: the entry id that answers it (a training row)."
    ),
    no_answer: bool = typer.Option(
        False, "--no-answer", help="With --close: the KB has no answer (counted as a gap)."
    ),
    this_turn_only: bool = typer.Option(
        False,
        "--this-turn-only",
        help="With --close: leave the conversation's earlier hand-offs waiting.",
    ),
    claim: int | None = typer.Option(
        None, "--claim", help="Claim the hand-off of this turn for --agent (others see it taken)."
    ),
    release: int | None = typer.Option(
        None, "--release", help="Release the claim on the hand-off of this turn."
    ),
    reopen: int | None = typer.Option(
        None, "--reopen", help="Put the closed hand-off of this turn back in the queue."
    ),
    history: int | None = typer.Option(
        None,
        "--history",
        help="The history of the hand-off of this turn: handed off, then who claimed, "
        "released, closed and reopened it, when, with what note.",
    ),
    agent: str = typer.Option(
        "",
        "--agent",
        help=f"Who claims, releases, closes or reopens it (default: ${AGENT_ENV}).",
        show_default=False,
    ),
    note: str = typer.Option("", "--note", help="With --close or --reopen: a note kept with it."),
    force: bool = typer.Option(
        False, "--force", help="Claim, release or close over another agent's claim."
    ),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Hand-offs waiting for a person, one per conversation, oldest first; --claim, --release,
    --close and --reopen TURN act on one, --history TURN says what was done with it."""
    from tunesmith.errors import UserInputError

    actions = {
        "--close": close,
        "--claim": claim,
        "--release": release,
        "--reopen": reopen,
        "--history": history,
    }
    chosen = [flag for flag, turn in actions.items() if turn is not None]
    if len(chosen) > 1:
        raise UserInputError(f"{' and '.join(chosen)}: one action at a time")
    action = chosen[0] if chosen else None
    if action != "--close" and (entry is not None or no_answer or this_turn_only):
        raise UserInputError("--entry, --no-answer and --this-turn-only go with --close TURN")
    if action is None:
        if agent or note or force:
            raise UserInputError(
                "--agent, --note and --force go with --claim, --release, --close or --reopen TURN"
            )
        _show(kb, db, Listing(show_all, since, per_turn, limit, after), as_json)
        return
    if show_all or since is not None or per_turn or limit is not None or after is not None:
        raise UserInputError(
            f"--all, --since, --per-turn, --limit and --after list hand-offs; not with {action}"
        )
    if note and action in ("--claim", "--release", "--history"):
        raise UserInputError(f"--note goes with --close or --reopen, not {action}")
    if force and action in ("--reopen", "--history"):
        raise UserInputError(f"--force goes with --claim, --release or --close, not {action}")
    if action == "--history":
        if agent:
            raise UserInputError("--agent goes with --claim, --release, --close or --reopen")
        _history(kb, db, int(history or 0), as_json)
        return
    # Only now: a listing or a history with $TUNESMITH_AGENT set is not an action's mistake.
    agent = default_agent(agent)
    if action == "--close":
        _close(kb, db, close, entry, no_answer, agent, note, force, this_turn_only, as_json)
        return
    _act(kb, db, action, int(actions[action] or 0), agent, note, force, as_json)


def _close(
    kb: Path,
    db: Path | None,
    turn: Any,
    entry: str | None,
    no_answer: bool,
    agent: str,
    note: str,
    force: bool,
    this_turn_only: bool,
    as_json: bool,
) -> None:
    from tunesmith.errors import UserInputError

    if (entry is None) == (not no_answer):
        raise UserInputError("--close needs --entry ID (the answer) or --no-answer, one of them")
    service = open_service(kb, stored_db(kb, db), None)
    try:
        closed = service.close_handoff(
            turn,
            entry_id=entry,
            agent=agent,
            note=note,
            force=force,
            with_earlier=not this_turn_only,
        )
    finally:
        service.close()
    if as_json:
        typer.echo(json.dumps(closed, indent=2, ensure_ascii=False))
        return
    if closed["status"] == "resolved":
        said = f"hand-off of turn {turn} resolved with {closed['entry_id']}"
    else:
        said = f"hand-off of turn {turn} closed with no entry (a gap in the knowledge base)"
    if closed.get("closed_with_it"):
        said += (
            f"; closed with it: {_turns(closed['closed_with_it'])}, the conversation's earlier "
            "hand-offs (no training row, not gaps)"
        )
    typer.echo(said)


def _act(
    kb: Path,
    db: Path | None,
    action: str,
    turn: int,
    agent: str,
    note: str,
    force: bool,
    as_json: bool,
) -> None:
    """``--claim``, ``--release`` or ``--reopen`` TURN, without loading the KB's encoder."""
    from tunesmith_support import handoff_actions
    from tunesmith_support.conversations import Conversations
    from tunesmith_support.handoff_claims import ago
    from tunesmith_support.kbindex import read_meta

    read_meta(kb)
    log = Conversations.open(stored_db(kb, db))
    try:
        if action == "--claim":
            item = handoff_actions.claim(log, turn, agent, force=force)
        elif action == "--release":
            before = log.handoff(turn)  # who held it, for the line below
            held = before.get("claimed_by") if before else None
            item = handoff_actions.release(log, turn, agent, force=force)
        else:
            item = handoff_actions.reopen(log, turn, agent, note)
    finally:
        log.close()
    if as_json:
        typer.echo(json.dumps(item, indent=2, ensure_ascii=False))
    elif action == "--claim":
        typer.echo(
            f"turn {turn}'s hand-off claimed by {item['claimed_by']} {ago(item['claimed_at'])}"
        )
    elif action == "--release":
        # "released" for one nobody held read as if a claim had been taken away
        typer.echo(
            f"turn {turn}'s hand-off released from {held}'s claim: unclaimed, waiting"
            if held
            else f"turn {turn}'s hand-off was not claimed: nothing to release; it is waiting"
        )
    else:
        others = [t for t in item["reopened"] if t != turn]
        with_it = f" with {_turns(others)}, closed with it," if others else ""
        typer.echo(
            f"turn {turn}'s hand-off reopened{with_it} waiting and unclaimed; its closure is kept "
            "in the log, and an entry it named is no longer a training row"
        )


def history_lines(history: dict[str, Any]) -> list[str]:
    """A hand-off's history for an agent's terminal: a line saying where it stands, then one
    line per entry, oldest first."""
    from tunesmith_support.handoff_history import entry_words

    lines = [
        f"turn {history['turn_id']}'s hand-off ({history['status']}), "
        f"conversation {history['conversation_id']}:"
    ]
    lines += [f"  {entry['at']}  {entry_words(entry)}" for entry in history["history"]]
    return lines


def _history(kb: Path, db: Path | None, turn: int, as_json: bool) -> None:
    """``--history TURN``: read without loading the KB's encoder, nor creating a database."""
    from tunesmith.data.limits import printable
    from tunesmith_support import handoff_actions
    from tunesmith_support.conversations import Conversations
    from tunesmith_support.kbindex import read_meta

    read_meta(kb)
    log = Conversations.open(stored_db(kb, db))
    try:
        found = handoff_actions.history(log, turn)
    finally:
        log.close()
    if as_json:
        typer.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    # Names and notes are what agents typed: no escape sequence reaches the terminal.
    typer.echo(printable("\n".join(history_lines(found)), lines=True))


class Listing(NamedTuple):
    """What ``support handoffs`` lists: its flags as given."""

    show_all: bool
    since: str | None
    per_turn: bool
    limit: int | None
    after: int | None

    def flags(self, kb: Path, db: Path | None) -> str:
        """The command that lists the same, ``--after`` left for the caller to add."""
        from shlex import join

        named = ["--kb", str(kb)] + (["--db", str(db)] if db is not None else [])
        named += ["--all"] if self.show_all else []
        named += ["--since", self.since] if self.since is not None else []
        named += ["--per-turn"] if self.per_turn else []
        named += ["--limit", str(self.limit)] if self.limit is not None else []
        return join(["tunesmith", "support", "handoffs", *named])


def _show(kb: Path, db: Path | None, listing: Listing, as_json: bool) -> None:
    """Print one page of the queue (``--all``: every hand-off) made since ``--since``, one item
    per conversation unless ``--per-turn``, and how to list the next page."""
    from tunesmith.events.ages import parse_moment
    from tunesmith_support.conversations import Conversations
    from tunesmith_support.kbindex import read_meta
    from tunesmith_support.service import default_db

    show_all = listing.show_all
    # Both checked before the database is read: one line for a typo.
    moment = None if listing.since is None else parse_moment(listing.since, "--since")
    read_meta(kb)
    path = db or default_db(kb)
    page: dict[str, Any] = {"handoffs": [], "next_after": None}
    if Path(path).exists():  # a listing does not create the database it lists
        log = Conversations.open(stored_db(kb, db))
        try:
            page = log.handoff_page(
                waiting_only=not show_all,
                since=moment,
                per_turn=listing.per_turn,
                # Closed hand-offs grow without end; the waiting queue is whole unless asked.
                limit=DEFAULT_LIMIT if listing.limit is None and show_all else listing.limit,
                after=listing.after,
            )
        finally:
            log.close()
    elif db is not None:
        stored_db(kb, db)  # a mistyped --db is one line, not an empty queue
    items = page["handoffs"]
    more = (
        None
        if page["next_after"] is None
        else f"more: {listing.flags(kb, db)} --after {page['next_after']}"
    )
    if as_json:
        typer.echo(json.dumps(items, indent=2, ensure_ascii=False))
        if more:  # stdout stays the list it always was
            typer.echo(more, err=True)
        return
    if not items:
        typer.echo("no hand-offs" if show_all else "no hand-offs waiting")
        return
    for item in items:
        typer.echo("\n".join(handoff_lines(item)))
        typer.echo("")
    waiting = [item for item in items if item["status"] == "waiting"]
    turns = sum(item["waiting_turns"] for item in waiting)
    counted = f"{len(waiting)} waiting" + (
        f" ({turns} hand-off turns)" if turns != len(waiting) else ""
    )
    named = "" if default_agent("") else " --agent NAME"  # $TUNESMITH_AGENT names them
    how = (
        f"; claim one with: tunesmith support handoffs --kb {kb} --claim TURN{named}; "
        "close it with --close TURN --entry ID | --no-answer"
        if waiting
        else ""  # nothing left to close
    )
    paged = "" if listing.limit is None and listing.after is None and not more else " on this page"
    typer.echo(
        counted + (f", {len(items) - len(waiting)} closed" if show_all else "") + paged + how
    )
    if more:
        typer.echo(more)
