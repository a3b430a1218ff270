"""``tunesmith support ask`` and ``chat``: answer one question, or hold a conversation in the
terminal (rating each answer as it comes), printing each turn the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tunesmith.devices import device_option
from tunesmith_support.commands.shared import DB_HELP, KB_OPTION, SINK_HELP, open_service


def _print_turn(turn: Any) -> None:
    from tunesmith.data.limits import printable

    # Answers, titles and sources come from the KB's files, which may hold escape sequences.
    a = turn.answer
    for note in a.notes:
        typer.echo(printable(f"Note: {note}"), err=True)
    typer.echo(printable(a.text, lines=True))
    detail = f"[{a.decision}"
    if a.reason:
        detail += f": {a.reason}"
    detail += f", confidence {a.confidence:.2f}"
    if a.entry:
        where = a.entry["source"] + (f" > {a.entry['heading']}" if a.entry["heading"] else "")
        detail += f", source {a.entry['id']} ({where})"
    detail += f", turn {turn.turn_id}]"
    typer.echo(printable(detail), err=True)


def ask_command(
    question: str = typer.Argument(..., help="The customer's question."),
    kb: Path = KB_OPTION,
    conversation: str | None = typer.Option(
        None, "--conversation", help="Continue this conversation (its id)."
    ),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    sink: list[str] | None = typer.Option(None, "--sink", help=SINK_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    device: str = device_option(),
) -> None:
    """Answer one question: the answer, its source, a confidence and the decision."""
    from tunesmith.events import refuse_stdout_sink_with_json

    refuse_stdout_sink_with_json(sink, as_json)
    service = delivering_after(open_service(kb, db, sink, device=device))
    try:
        turn = service.ask(question, conversation, channel="cli")
        if as_json:
            typer.echo(json.dumps(turn.to_dict(), indent=2, ensure_ascii=False))
        else:
            _print_turn(turn)
    finally:
        # The answer is out; the hand-off event is delivered before the command ends, or it
        # would stay pending in the outbox until someone ran `events retry`.
        service.close(drain=True)


def delivering_after(service: Any) -> Any:
    """``service`` sending its hand-off events from a thread of its own, so that a webhook that
    hangs (5 s, once per hold) does not hold the customer's answer back; ``close(drain=True)``
    waits for them."""
    service.background_delivery = True
    return service


def is_rating(text: str) -> bool:
    """Whether a chat line rates the last answer (``+``, ``-`` or ``=ID``) instead of asking."""
    return text in ("+", "-") or text.startswith("=")


def _rate_last_answer(service: Any, last: int | None, text: str) -> None:
    """Store a chat line's rating (``+``, ``-`` or ``=ID``) of the turn ``last``, or say on
    stderr why it cannot be."""
    from tunesmith.errors import UserInputError

    if last is None:
        # Asked as a question, "+" would be handed off to a person, and a later "=ID"
        # would turn it into a training row.
        typer.echo("Error: no answer to rate yet; ask a question first", err=True)
        return
    helpful = {"+": True, "-": False}.get(text)
    correct = text[1:].strip() if text.startswith("=") else None
    if correct == "":
        typer.echo("Error: '=' needs the right entry's id, e.g. =shp-01", err=True)
        return
    try:
        service.feedback(last, helpful=helpful, correct_id=correct)
        typer.echo("thanks, feedback stored")
    except UserInputError as exc:
        typer.echo(f"Error: {exc}", err=True)


def chat_command(
    kb: Path = KB_OPTION,
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    sink: list[str] | None = typer.Option(None, "--sink", help=SINK_HELP),
    device: str = device_option(),
) -> None:
    """A multi-turn conversation in the terminal (empty line or Ctrl-D ends it).

    After an answer, type '+' (helpful), '-' (not helpful) or '=ID' (the right entry).
    """
    from tunesmith.errors import UserInputError

    service = delivering_after(open_service(kb, db, sink, device=device))
    conversation = None
    last = None
    typer.echo("Ask a question (empty line to stop; + / - / =ID rate the last answer).")
    try:
        while True:
            try:
                line = input("you> ")
            except EOFError:
                break
            if not line.strip():
                break
            text = line.strip()
            if is_rating(text):
                _rate_last_answer(service, last, text)
                continue
            try:
                turn = service.ask(line, conversation, channel="chat")
            except UserInputError as exc:
                typer.echo(f"Error: {exc}", err=True)
                continue
            conversation = turn.conversation_id
            if turn.answer.reason != "small_talk":
                # "+" after "thanks!" rates the answer thanked for, not the "You're welcome".
                last = turn.turn_id
            _print_turn(turn)
    finally:
        service.close(drain=True)
