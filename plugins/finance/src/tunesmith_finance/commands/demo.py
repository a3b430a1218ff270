"""``tunesmith finance demo``: serve the finance dashboard on its own."""

from __future__ import annotations

from pathlib import Path

import typer

from tunesmith_finance.commands.options import (
    BUCKET,
    COOLDOWN,
    HALF_LIFE,
    MIN_HISTORY,
    MIN_LIFT,
    MIN_VOLUME,
    P_VALUE,
    RULES_HELP,
    STORED_PRIOR,
    TOPIC_MODEL,
    TOPIC_THRESHOLD,
    TZ_HELP,
    WINDOW,
)


def demo_command(
    model: Path | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Sentiment model (default: the one `finance ingest` scored --db with; for the "
        "sample stream, one trained on the sample data).",
    ),
    db: Path | None = typer.Option(
        None,
        "--db",
        help="A database `finance ingest` or `finance watch` made (default: the sample stream's).",
    ),
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
    # The page's alert checks take `finance alerts`' settings, so that the alerts tuned on the
    # command line are the ones the page shows.
    bucket: str = BUCKET,
    window: int = WINDOW,
    half_life: str | None = HALF_LIFE,
    min_volume: int = MIN_VOLUME,
    min_lift: float = MIN_LIFT,
    p_value: float = P_VALUE,
    cooldown: str | None = COOLDOWN,
    prior: float | None = STORED_PRIOR,
    min_history: int | None = MIN_HISTORY,
) -> None:
    """Start the finance dashboard on its own; its alert checks take `finance alerts`' flags."""
    from tunesmith.errors import ModelNotFoundError, UserInputError
    from tunesmith.ui.launch import check_address, launch
    from tunesmith_finance.alerts import DETECTOR_FLAGS
    from tunesmith_finance.commands.checks import build_detector
    from tunesmith_finance.demo import build_demo
    from tunesmith_finance.documents import resolve_zone

    resolve_zone(tz, "--tz")  # a mistyped zone: one line, before anything starts
    # Checked as `finance alerts` checks them; the page builds its detector at each check, as
    # the prior follows the database's negative share.
    checked = build_detector(
        bucket=bucket,
        window=window,
        half_life=half_life,
        min_volume=min_volume,
        min_lift=min_lift,
        p_value=p_value,
        cooldown=cooldown,
        prior=prior,
        min_history=min_history,
    )
    if topic_model is not None and not topic_model.expanduser().exists():
        raise ModelNotFoundError(
            f"--topic-model: model directory {topic_model.expanduser()} does not exist"
        )
    if db is not None and not db.expanduser().is_file():
        # As `finance trends` and `finance alerts` refuse it: a mistyped path made a stray
        # empty database and an empty page that said nothing of the typo.
        raise UserInputError(
            f"--db {db}: no such database; fill it with `finance ingest FILE --model M --db {db}`"
            " (or `finance watch`), then open the dashboard on it"
        )
    check_address(host, port)  # before the sample model is trained for a server that cannot start
    blocks = build_demo(
        model=str(model) if model else None,
        db=str(db.expanduser()) if db else None,
        rules=str(rules) if rules else None,
        tz=tz,
        topic_model=str(topic_model) if topic_model else None,
        topic_threshold=topic_threshold,
        detector_settings={name: getattr(checked, name) for name in DETECTOR_FLAGS},
        prior=prior,
    )
    launch(blocks, host=host, port=port)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command("demo")(demo_command)
