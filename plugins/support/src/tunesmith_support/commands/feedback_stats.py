"""``tunesmith support feedback``, ``export-feedback`` and ``stats``: rate stored answers, turn
the confirmed ones into training rows, and report the rates over time, all from the
conversation database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tunesmith_support.commands.shared import DB_HELP, KB_OPTION, open_service, stored_db


def feedback_command(
    kb: Path = KB_OPTION,
    turn: int = typer.Option(..., "--turn", help="The turn id (shown by ask/chat)."),
    helpful: bool | None = typer.Option(
        None, "--helpful/--not-helpful", help="Whether the answer helped."
    ),
    correct_id: str | None = typer.Option(None, "--correct-id", help="The right entry id."),
    note: str = typer.Option("", "--note", help="A free-text note stored with the feedback."),
    conversation: str | None = typer.Option(
        None, "--conversation", help="Check that the turn is this conversation's."
    ),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Record feedback on an answer: helpful or not, or the right entry picked by an agent."""
    from tunesmith.errors import UserInputError
    from tunesmith_support.kbindex import read_meta

    if helpful is None and correct_id is None:
        # The service's own message names the HTTP API's fields ('helpful'), not these flags.
        raise UserInputError("give --helpful, --not-helpful or --correct-id ID")
    read_meta(kb)
    service = open_service(kb, stored_db(kb, db), None)
    try:
        service.feedback(
            turn,
            helpful=helpful,
            correct_id=correct_id,
            note=note,
            conversation_id=conversation,
            close_handoff=True,
        )
        handoff = service.conversations.handoff(turn) if correct_id else None
    finally:
        service.close()
    typer.echo(f"feedback stored for turn {turn}")
    if handoff is None:
        return
    if handoff["status"] == "resolved" and handoff["entry_id"] == service.renamed().get(
        correct_id, correct_id
    ):
        typer.echo(f"its hand-off is resolved with {handoff['entry_id']}")
    elif handoff["status"] == "waiting":
        # Claimed: the claimer closes it (support handoffs --close), not a correction.
        typer.echo(
            f"note: its hand-off is claimed by {handoff['claimed_by']} and stays in the queue "
            "for them to close; this feedback is stored"
        )
    else:
        # Another agent closed it first: their closure stays, this correction is kept too.
        typer.echo(f"note: {closed_already(turn, handoff)}")


def closed_already(turn: int, handoff: dict[str, Any]) -> str:
    """How the hand-off of ``turn`` was closed before this feedback."""
    from tunesmith_support.conversations import closure_words

    how = closure_words(handoff["status"], handoff["entry_id"], handoff["agent"])
    return (
        f"its hand-off was {how} at {handoff['closed_at']} already, and stays so; "
        "this feedback is stored too"
    )


def export_feedback_command(
    kb: Path = KB_OPTION,
    out: Path = typer.Option(..., "--out", help="CSV to write (question,answer_id)."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> None:
    """Write confirmed (question, answer id) pairs from feedback, for the next `support train`."""
    from tunesmith.io import check_output_file, check_writable_dir
    from tunesmith_support.conversations import Conversations
    from tunesmith_support.kbindex import kb_entries, renamed_ids

    # A folder, or a path under a file, is one line before any work (not a rename traceback);
    # an existing file is kept unless --force (an earlier export, or a hand-edited history
    # CSV, was silently replaced), as every other --out of the CLI does.
    check_output_file(out, "--out")
    check_writable_dir(out, force=force)
    known = {e.id for e in kb_entries(kb)}  # no encoder: nothing is encoded
    log = Conversations.open(stored_db(kb, db))
    try:
        n = log.export_feedback(out, known, renamed_ids(kb))
    finally:
        log.close()
    typer.echo(f"{out}: {n} questions with confirmed answers")


#: What the table's feedback columns count, under it: a reader took `feedback` for pieces of
#: feedback (it counted those, a turn rated three times as three).
FEEDBACK_LEGEND = (
    "feedback: turns given feedback, each once, in the period of its newest; helpful_rate: "
    "of those rated, by each one's newest rating; corrected: of those, the ones an agent "
    "named another entry for; handoffs_waiting: of the period's hand-offs, those still "
    "waiting for a person (support handoffs); kb_gaps: those an agent closed with no entry, "
    "the knowledge base having no answer"
)


def stats_command(
    kb: Path = KB_OPTION,
    by: str = typer.Option("day", "--by", help="day, week or month."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON rows."),
) -> None:
    """Answer rate, hand-off rate and feedback over time (feedback: turns, each once)."""
    from tunesmith_support.conversations import Conversations, check_period
    from tunesmith_support.kbindex import read_meta, renamed_ids
    from tunesmith_support.service import default_db

    read_meta(kb)
    check_period(by)
    path = db or default_db(kb)
    rows: list[dict[str, Any]] = []
    if Path(path).exists():  # a report does not create the database it reports on
        log = Conversations.open(path)
        try:
            rows = log.stats(by, renamed_ids(kb))
        finally:
            log.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no conversations yet")
        return
    headers = [
        "period",
        "turns",
        "small_talk",
        "answer_rate",
        "clarify_rate",
        "handoff_rate",
        "feedback",
        "helpful_rate",
        "corrected",
        "handoffs_waiting",
        "kb_gaps",
    ]
    typer.echo("  ".join(f"{h:>12s}" for h in headers))
    for row in rows:
        cells = ["-" if row[h] is None else str(row[h]) for h in headers]
        typer.echo("  ".join(f"{c:>12s}" for c in cells))
    typer.echo(FEEDBACK_LEGEND)
