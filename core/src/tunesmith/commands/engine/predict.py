"""``tunesmith predict``: texts labelled with a model, printed as a table or JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from tunesmith.commands.engine.ensemble_note import say_if_ensemble
from tunesmith.commands.engine.output import echo_json, print_table
from tunesmith.devices import DEVICE_HELP


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _with_top(
    headers: list[str], rows: list[list[str]], records: list[dict[str, Any]], top_k: int | None
) -> tuple[list[str], list[list[str]]]:
    """The table with a ``top k`` column (label and probability, most probable first)."""
    if not top_k:
        return headers, rows
    for row, record in zip(rows, records, strict=True):
        row.append(", ".join(f"{t['label']} {t['score']:.3f}" for t in record["top"]))
    return [*headers, f"top {top_k}"], rows


def _echo_records(records: list[dict[str, Any]], *, one_a_line: bool) -> None:
    """``--json``: one JSON line per record (``--data``), else one JSON document (``--text``:
    an object for one text, a list for several)."""
    if one_a_line:
        for record in records:
            typer.echo(json.dumps(record, ensure_ascii=False))
    else:
        echo_json(records[0] if len(records) == 1 else records)


def _print_predictions(task: str, records: list[dict[str, Any]], top_k: int | None) -> None:
    """The predictions as a table: a tagger's entities, a multi-label classifier's labels with
    their probabilities, a classifier's label and probability (with ``--top-k``, the k most
    probable labels too)."""
    if task == "ner":
        rows = [
            [
                _short(r["text"]),
                "; ".join(f"{e['type']}: {e['text']}" for e in r["entities"]) or "-",
            ]
            for r in records
        ]
        print_table(["text", "entities"], rows)
    elif task == "multilabel":
        rows = [
            [
                _short(r["text"]),
                ", ".join(f"{lab} {s:.3f}" for lab, s in zip(r["labels"], r["scores"], strict=True))
                or "-",
            ]
            for r in records
        ]
        print_table(*_with_top(["text", "labels"], rows, records, top_k))
    else:
        rows = [[_short(r["text"]), r["label"], f"{r['score']:.3f}"] for r in records]
        print_table(*_with_top(["text", "label", "score"], rows, records, top_k))


def predict_command(
    model: Path = typer.Option(
        ..., "--model", "-m", help="A model directory (from `tunesmith train`)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="File of texts to label; '-' reads standard input (see --format)."
    ),
    text: list[str] | None = typer.Option(
        None, "--text", help="A text to label; repeat for several."
    ),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the text."),
    stdin_format: str | None = typer.Option(
        None,
        "--format",
        help="With --data -: how standard input is read: lines (one text a line; the default) "
        "| jsonl | csv | tsv.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="JSON lines for --data; one JSON document for --text."
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Texts per forward pass."),
    quantize: str | None = typer.Option(
        None, "--quantize", help="'int8': int8 linear layers, faster on a CPU."
    ),
    no_calibrate: bool = typer.Option(
        False, "--no-calibrate", help="Raw probabilities, without the fitted temperature."
    ),
    top_k: int | None = typer.Option(
        None, "--top-k", "-k", min=1, help="Also list the k most probable labels."
    ),
    device: str = typer.Option(
        "auto", "--device", help=DEVICE_HELP + " --quantize int8 runs on the CPU."
    ),
) -> None:
    """Label texts with a model: the label, its probability, and every label's probability.

    With --json, --data prints one JSON line per text, in file order; --text prints one JSON
    document (an object for one text, a list for several). --data - reads the texts from
    standard input: one a line, or as --format says.
    """
    from tunesmith.data.readers import STDIN_FORMATS
    from tunesmith.errors import UserInputError

    if data is not None and text:
        raise UserInputError("pass either --data FILE or --text TEXT (not both)")
    if data is None and not text:
        raise UserInputError("pass --data FILE or --text TEXT: the texts to label")
    from_stdin = data is not None and str(data) == "-"
    if stdin_format is not None and not from_stdin:
        raise UserInputError(
            "--format goes with --data - (standard input); a file's format comes from its suffix"
        )
    if stdin_format is not None and stdin_format not in STDIN_FORMATS:
        raise UserInputError(
            f"--format {stdin_format!r} is not valid; expected {' | '.join(STDIN_FORMATS)}"
        )
    from tunesmith.data.limits import cli_texts

    given = cli_texts(text)  # before the model loads: a bad argument costs no time
    for i, value in enumerate(given):
        if not value.strip():  # as --data refuses an empty cell, and explain an empty --text
            raise UserInputError(f"--text number {i + 1} is empty; there is nothing to label")
    texts = given
    if data is not None:  # before the model loads too: a bad file costs no time
        from tunesmith.data.load import read_texts

        texts = read_texts(
            data,
            text_col=text_col,
            stdin_format=(stdin_format or "lines") if from_stdin else None,
        )
    from tunesmith.engine.ensemble import load_ensemble
    from tunesmith.engine.predict import predict_texts

    # A seed ensemble (finance and support train them) is scored as its plugin scores it.
    loaded, *members = load_ensemble(model, quantize=quantize, device=device)
    if top_k is not None and loaded.task == "ner":
        raise UserInputError("--top-k applies to classifiers; a NER model lists its entities")
    say_if_ensemble(model, loaded, members)
    started = time.perf_counter()
    results = predict_texts(
        loaded,
        texts,
        calibrated=not no_calibrate,
        top_k=top_k,
        batch_size=batch_size,
        members=members,
    )
    elapsed = time.perf_counter() - started
    records = [{"text": t, **r} for t, r in zip(texts, results, strict=True)]
    if as_json:
        _echo_records(records, one_a_line=data is not None)
        return
    _print_predictions(loaded.task, records, top_k)
    rate = len(texts) / elapsed if elapsed > 0 else 0.0
    typer.echo(f"{len(texts)} texts in {elapsed:.2f} s ({rate:.0f}/s)", err=True)
