"""``tunesmith finance score``: score texts given on the command line or in a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tunesmith.devices import check_device, device_option
from tunesmith_finance.commands.options import MODEL_HELP, RULES
from tunesmith_finance.commands.output import echo_out


def score_command(
    model: Path = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    text: list[str] | None = typer.Option(None, "--text", help="A text to score; repeatable."),
    file: Path | None = typer.Option(
        None,
        "--data",
        "--file",
        help="A file of texts: its text column (or headline, or title, as ingest reads).",
    ),
    rules: Path | None = RULES,
    explain: bool = typer.Option(False, "--explain", help="Add the words behind each label."),
    quantize: str | None = typer.Option(None, "--quantize", help="'int8' for a faster model."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines, one per text."),
    device: str = device_option("--quantize int8 runs on the CPU."),
) -> None:
    """Score texts: P(positive) − P(negative), the label, topics and tickers."""
    from tunesmith.errors import UserInputError
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.scoring import SentimentModel

    if (file is None) == (not text):
        raise UserInputError("pass either --text TEXT (repeatable) or --data FILE")
    check_device(device, quantize=quantize)  # before the texts are read
    loaded_rules = load_rules(rules)
    if file is not None:
        from tunesmith.data.load import read_texts
        from tunesmith_finance.documents import TEXT_FIELDS

        # The fields ingest reads, so a feed scores here as it would be stored.
        texts = read_texts(file, text_col=TEXT_FIELDS)
    else:
        texts = [t for t in text or [] if t.strip()]
        if not texts:
            raise UserInputError("--text is empty")
    sentiment = SentimentModel.load(model, quantize=quantize, device=device)
    scores = sentiment.score(texts)
    words: list[Any] = [None] * len(texts)
    if explain:
        from tunesmith.explain.attribute import explain_loaded

        shown = [sentiment.model_label(s.label) for s in scores]  # not the transformer's own
        words = [
            [w.to_dict() for w in sorted(e.tokens, key=lambda t: -t.score)[:5] if w.score > 0]
            for e in explain_loaded(
                sentiment.loaded, texts, target=shown, members=sentiment.members
            )
        ]
    for body, score, top in zip(texts, scores, words, strict=True):
        assignment = loaded_rules.assign(body)
        record = {"text": body, **score.to_dict(), "topics": assignment.topics}
        record["tickers"] = assignment.tickers
        if explain:
            record["words"] = top
        if as_json:
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            extra = f"  words: {', '.join(w['word'] for w in top)}" if explain and top else ""
            echo_out(
                f"{score.score:+.3f}  {score.label:<8}  {body[:70]}"
                f"  [{', '.join(assignment.topics + ['$' + t for t in assignment.tickers])}]{extra}"
            )


def register(app: typer.Typer) -> None:
    """Add ``score`` to ``app``."""
    app.command("score")(score_command)
