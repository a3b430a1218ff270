"""``tunesmith finance score``: score texts given on the command line or in a file."""

from __future__ import annotations

import json
from pathlib import Path

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
    from tunesmith_finance.python_api import score_records
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
    # The records the Python API's finance.score returns, built in one place.
    for record in score_records(sentiment, texts, loaded_rules, explain=explain):
        if as_json:
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            top = record.get("words")
            extra = f"  words: {', '.join(w['word'] for w in top)}" if top else ""
            keys = record["topics"] + ["$" + t for t in record["tickers"]]
            echo_out(
                f"{record['score']:+.3f}  {record['label']:<8}  {record['text'][:70]}"
                f"  [{', '.join(keys)}]{extra}"
            )


def register(app: typer.Typer) -> None:
    """Add ``score`` to ``app``."""
    app.command("score")(score_command)
