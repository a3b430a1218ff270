"""What several support commands share: their common options and help texts, the KB's run
lock, the service that answers, and the check that a conversation database exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

KB_OPTION = typer.Option(..., "--kb", help="Knowledge-base directory (from `support index`).")
DB_HELP = "Conversation database (default: KB/conversations.sqlite)."
QUESTION_COL_HELP = "Column holding the question."
ANSWER_COL_HELP = "Column of the right entry id (empty: out of scope)."
SINK_HELP = (
    "Where hand-offs go (repeatable): jsonl:PATH, stdout, webhook:URL, env:NAME (the sink held "
    "in that environment variable: a webhook's token kept off the command line) "
    "(default: jsonl:KB/handoffs.jsonl)."
)


def kb_writer(kb: Path) -> Any:
    """Hold the KB's run lock (``tunesmith.locks``) while a command rewrites it: two trainings
    at once tuned into one ``encoders/gN`` folder and removed each other's new index, and an
    ``index`` beside a ``train`` wrote back a ``kb.json`` naming the index it had removed.
    A missing folder is not locked (the command says what is wrong with it)."""
    from tunesmith.locks import writing_into

    return writing_into(kb, [], flag="--kb")


def open_service(
    kb: Path,
    db: Path | None,
    sinks: list[str] | None,
    *,
    background_delivery: bool = False,
    device: str = "cpu",
) -> Any:
    """The KB's service; its model loads at the first question, except for ``serve``
    (``background_delivery``), whose first customer should not wait for it. ``device``: the
    ``--device`` its models run on, checked now (one line before anything is read). A folder
    that is not a KB is refused before the conversation database is opened: opening it first
    made ``typo/conversations.sqlite`` (a folder the user never meant) and only then failed."""
    from tunesmith.devices import check_device
    from tunesmith_support.kbindex import read_meta

    check_device(device)
    read_meta(kb)
    from tunesmith_support.service import SupportService

    return SupportService(
        kb,
        db=db,
        sinks=sinks or None,
        background_delivery=background_delivery,
        lazy=not background_delivery,
        device=device,
    )


def stored_db(kb: Path, db: Path | None) -> Path:
    """The conversation database a command reads or rates turns in, which must exist: opening
    a mistyped ``--db`` would create an empty database there, and `export-feedback` would then
    write 0 rows as if nobody had given feedback."""
    from tunesmith.errors import UserInputError
    from tunesmith_support.service import default_db

    path = Path(db or default_db(kb))
    if not path.is_file():
        raise UserInputError(
            f"{path}: no conversation database (nothing asked yet with this KB, or another "
            "--db was meant)"
        )
    return path
