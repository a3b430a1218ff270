"""``tunesmith support eval``: retrieval, decisions and calibration measured on labelled
questions, and optionally how follow-ups are read."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tunesmith.devices import check_device, device_option
from tunesmith_support.commands.shared import ANSWER_COL_HELP, KB_OPTION, QUESTION_COL_HELP


def eval_command(
    kb: Path = KB_OPTION,
    data: list[Path] = typer.Option(
        ..., "--data", help="Questions with answer ids (repeat for several files)."
    ),
    question_col: str = typer.Option("question", "--question-col", help=QUESTION_COL_HELP),
    answer_col: str = typer.Option("answer_id", "--answer-col", help=ANSWER_COL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    follow_ups: Path | None = typer.Option(
        None,
        "--follow-ups",
        help="Two-turn conversations (previous,question,answer_id): also measure how "
        "follow-ups are read on them and on the --data questions played as one conversation.",
    ),
    device: str = device_option(),
) -> None:
    """Retrieval (hit@1, hit@5, MRR), decisions and calibration on labelled questions."""
    from tunesmith_support.answer import Answerer
    from tunesmith_support.evaluate import evaluate, follow_up_report
    from tunesmith_support.kbindex import renamed_ids
    from tunesmith_support.learning import read_conversations, read_labelled

    check_device(device)  # before the KB's models load and the questions are read
    answerer = Answerer(kb, device=device)
    known = set(answerer.scorer.position)
    rows = read_labelled(
        data, known, question_col=question_col, answer_col=answer_col, renamed=renamed_ids(kb)
    )
    questions, expected = [r.question for r in rows], [r.answer_id for r in rows]
    result = evaluate(answerer, questions, expected)
    if follow_ups is not None:
        conversations = read_conversations(follow_ups, known)
        result.update(follow_up_report(answerer, questions, expected, conversations))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        typer.echo(f"{key:22s} {value}")
