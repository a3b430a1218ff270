"""``tunesmith support index``: import FAQ files and documents into a knowledge base."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from tunesmith.devices import check_device, device_option

#: From this many entries to encode, a run whose stderr is no terminal (a nightly job's log)
#: gets a line at every tenth of the way: before, it printed nothing for the hours a large
#: first index takes.
LOG_PROGRESS_FROM = 2000


def _progress_bar(total_label: str) -> Any:
    """A tqdm bar on stderr for terminals, lines in a log otherwise; a callable
    ``(done, total)``."""
    from tqdm import tqdm

    state: dict[str, Any] = {"logged": -1}

    def update(done: int, total: int) -> None:
        if not sys.stderr.isatty():
            tenth = 10 * done // max(1, total)
            if total >= LOG_PROGRESS_FROM and tenth > state["logged"]:
                state["logged"] = tenth
                typer.echo(f"{total_label}: {done:,} of {total:,} entries", err=True)
            return
        if "bar" not in state:
            state["bar"] = tqdm(
                total=total, desc=total_label, unit="entry", file=sys.stderr, leave=False
            )
        state["bar"].n = done
        state["bar"].refresh()
        if done >= total:
            state["bar"].close()

    return update


def index_command(
    kb: Path = typer.Option(..., "--kb", help="FAQ file, document or directory of both."),
    out: Path = typer.Option(..., "--out", help="Knowledge-base directory to create or update."),
    question_col: str | None = typer.Option(
        None,
        "--question-col",
        help="FAQ question column (default 'question', or the one the KB was built with).",
    ),
    answer_col: str | None = typer.Option(
        None,
        "--answer-col",
        help="FAQ answer column (default 'answer', or the one the KB was built with).",
    ),
    id_col: str | None = typer.Option(
        None,
        "--id-col",
        help="FAQ id column (default: the KB's, else 'id' when present, else ids from questions).",
    ),
    category_col: str | None = typer.Option(
        None,
        "--category-col",
        help="FAQ category/intent column (default: the KB's, else 'category' if present).",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Encoder: 'default' or a model directory (default: the KB's own).",
    ),
    language: list[str] | None = typer.Option(
        None,
        "--language",
        help="The KB's language code, repeatable, the first the default of the bot's own texts "
        "(kept in KB/language.json; default: the KB's, else en).",
    ),
    device: str = device_option(
        "Only new and changed entries are encoded; the device is not part of the KB."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import FAQ files and documents into a knowledge base; re-running updates only changes.

    In a folder, an empty file (an FAQ with no rows, a document with no text) is skipped and
    named in the report."""
    from tunesmith.io import check_output_folder
    from tunesmith.locks import run_lock
    from tunesmith_support.kbindex import build_index, faq_columns
    from tunesmith_support.languages import (
        check_language_codes,
        english_model_note,
        read_language_config,
    )

    check_device(device)  # before kb.json or any source is read
    # A flag not given keeps the column the KB was built with (kb.json records them).
    columns = faq_columns(
        out, question=question_col, answer=answer_col, id=id_col, category=category_col
    )
    check_output_folder(out, "--out")  # before the lock file is put beside it
    # A bad --language or KB/language.json is said before anything is encoded.
    check_language_codes(language or [])
    read_language_config(out)
    with run_lock(out):  # one writer of a KB at a time (see shared.kb_writer)
        report = build_index(
            kb,
            out,
            columns=columns,
            model=model,
            progress=_progress_bar("encoding"),
            device=device,
            languages=language or None,
            log=lambda line: typer.echo(line, err=True),
        )
    note = english_model_note(out)
    if note:
        typer.echo(f"note: {note}", err=True)
    if as_json:
        typer.echo(json.dumps({"kb": str(out), **report.to_dict()}, indent=2, ensure_ascii=False))
        return
    typer.echo(f"{out}: {report.summary()}")
