"""``tunesmith finance demo``: serve the finance dashboard on its own."""

from __future__ import annotations

from pathlib import Path

import typer

from tunesmith_finance.commands.options import RULES_HELP, TOPIC_MODEL, TOPIC_THRESHOLD, TZ_HELP


def demo_command(
    model: Path | None = typer.Option(
        None, "--model", "-m", help="Sentiment model (default: one trained on the sample data)."
    ),
    db: Path | None = typer.Option(None, "--db", help="Database (default: the sample stream's)."),
    rules: Path | None = typer.Option(
        None, "--rules", help=RULES_HELP + " For scored texts (default: the sample's)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(7860, "--port", help="Port to listen on (0: any free port)."),
    tz: str = typer.Option(
        "UTC",
        "--tz",
        help=TZ_HELP + "; for the trends, the alerts detected and the sample replay, as in "
        "`finance trends` and `finance alerts` (the page can show another).",
    ),
    topic_model: Path | None = TOPIC_MODEL,
    topic_threshold: float = TOPIC_THRESHOLD,
) -> None:
    """Start the finance dashboard on its own."""
    from tunesmith.errors import ModelNotFoundError
    from tunesmith.ui.launch import check_address, launch
    from tunesmith_finance.demo import build_demo
    from tunesmith_finance.documents import resolve_zone

    resolve_zone(tz, "--tz")  # a mistyped zone: one line, before anything starts
    if topic_model is not None and not topic_model.expanduser().exists():
        raise ModelNotFoundError(
            f"--topic-model: model directory {topic_model.expanduser()} does not exist"
        )
    check_address(host, port)  # before the sample model is trained for a server that cannot start
    blocks = build_demo(
        model=str(model) if model else None,
        db=str(db) if db else None,
        rules=str(rules) if rules else None,
        tz=tz,
        topic_model=str(topic_model) if topic_model else None,
        topic_threshold=topic_threshold,
    )
    launch(blocks, host=host, port=port)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command("demo")(demo_command)
