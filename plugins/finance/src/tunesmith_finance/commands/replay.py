"""``tunesmith finance replay``: play a file back in simulated time, alerts firing as they would."""

from __future__ import annotations

from pathlib import Path

import typer

from tunesmith.devices import check_device, device_option
from tunesmith_finance.commands.checks import (
    build_detector,
    build_ingester,
    check_inputs,
    sinks_from_flag,
)
from tunesmith_finance.commands.options import (
    BY,
    COOLDOWN,
    DB_HELP,
    DEFAULT_BATCH,
    HALF_LIFE,
    MIN_LIFT,
    MIN_VOLUME,
    MODEL_HELP,
    NAIVE_TZ,
    P_VALUE,
    RULES,
    TOPIC_MODEL,
    TOPIC_THRESHOLD,
    TZ,
    WINDOW,
)
from tunesmith_finance.commands.output import echo_err, echo_out


def replay_command(
    file: Path = typer.Argument(
        ...,
        help="A JSONL or CSV stream, or a workbook (book.xlsx, 'book.xlsx#Sheet'), to replay in time order.",
    ),
    model: Path = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    rules: Path | None = RULES,
    step: str = typer.Option(
        "1h",
        "--step",
        help="Simulated time per step, also the bucket (1h, 1d, 1w from Monday, ...).",
    ),
    speed: float = typer.Option(
        0.0,
        "--speed",
        min=0.0,
        help="Wall-clock seconds per simulated step (0: as fast as possible).",
    ),
    by: str = BY,
    window: int = WINDOW,
    min_volume: int = MIN_VOLUME,
    min_lift: float = MIN_LIFT,
    p_value: float = P_VALUE,
    cooldown: str | None = COOLDOWN,
    half_life: str | None = HALF_LIFE,
    prior: float = typer.Option(0.2, "--prior", min=0.0, max=1.0, help="Starting baseline rate."),
    min_history: int = typer.Option(
        0,
        "--min-history",
        help="Documents a key must have had before a window for the window to be tested "
        "(default 0: --prior stands for each key's past).",
    ),
    sink: list[str] | None = typer.Option(None, "--sink", help="Event sink for the alerts."),
    explain: bool = typer.Option(True, "--explain/--no-explain", help="Explain each alert."),
    naive_tz: str = NAIVE_TZ,
    tz: str = TZ,
    topic_model: Path | None = TOPIC_MODEL,
    topic_threshold: float = TOPIC_THRESHOLD,
    device: str = device_option("The models score and explain there."),
) -> None:
    """Replay a file with simulated time: ingest step by step and show alerts as they fire."""
    from tunesmith_finance.alerts import AlertOptions
    from tunesmith_finance.documents import resolve_zone
    from tunesmith_finance.replay import replay

    check_device(device)  # before the file is read
    check_inputs([str(file)])
    resolve_zone(tz, "--tz")
    sinks = sinks_from_flag(sink)
    detector = build_detector(
        bucket=step,
        bucket_flag="--step",
        window=window,
        half_life=half_life,
        min_volume=min_volume,
        min_lift=min_lift,
        p_value=p_value,
        cooldown=cooldown,
        prior=prior,
        min_history=min_history,
    )
    ingester = build_ingester(
        db,
        model,
        rules,
        batch_size=DEFAULT_BATCH,
        max_chars=5000,
        naive_tz=naive_tz,
        quantize=None,
        topic_model=topic_model,
        topic_threshold=topic_threshold,
        timeout=5.0,
        device=device,
    )
    try:
        summary = replay(
            ingester,
            file,
            detector=detector,
            options=AlertOptions(by=by, tz=tz),
            explain=explain,
            sinks=sinks,
            speed=speed,
            echo=echo_out,
        )
    finally:
        ingester.db.close()
    echo_err(
        f"replayed {summary['documents']} documents in {summary['steps']} steps; "
        f"{summary['alerts']} alert(s)"
    )


def register(app: typer.Typer) -> None:
    """Add ``replay`` to ``app``."""
    app.command("replay")(replay_command)
