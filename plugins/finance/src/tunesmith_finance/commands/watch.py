"""``tunesmith finance watch``: ingest a folder, then what arrives; ``--alerts`` after each pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tunesmith.devices import check_device, device_option
from tunesmith_finance.commands.checks import build_detector, build_ingester, sinks_from_flag
from tunesmith_finance.commands.options import (
    BATCH_SIZE,
    BUCKET,
    BY,
    COOLDOWN,
    DB_HELP,
    HALF_LIFE,
    LOCK_TIMEOUT,
    MAX_CHARS,
    MIN_HISTORY,
    MIN_LIFT,
    MIN_VOLUME,
    MODEL_HELP,
    NAIVE_TZ,
    P_VALUE,
    QUANTIZE,
    RULES,
    STORED_PRIOR,
    TOPIC_MODEL,
    TOPIC_THRESHOLD,
    TZ,
    WINDOW,
)
from tunesmith_finance.commands.output import NOT_SENT, echo_err, print_report


def watch_command(
    folder: Path = typer.Argument(
        ..., help="Folder to watch for .jsonl and .csv files (workbooks: use ingest)."
    ),
    model: Path = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    rules: Path | None = RULES,
    batch_size: int = BATCH_SIZE,
    max_chars: int = MAX_CHARS,
    naive_tz: str = NAIVE_TZ,
    quantize: str | None = QUANTIZE,
    topic_model: Path | None = TOPIC_MODEL,
    topic_threshold: float = TOPIC_THRESHOLD,
    timeout: float = LOCK_TIMEOUT,
    alerts: bool = typer.Option(False, "--alerts", help="Run the alert detector after each pass."),
    sink: list[str] | None = typer.Option(None, "--sink", help="Event sink for --alerts."),
    once: bool = typer.Option(False, "--once", help="Ingest what is there now, then exit."),
    by: str = BY,
    bucket: str = BUCKET,
    window: int = WINDOW,
    half_life: str | None = HALF_LIFE,
    min_volume: int = MIN_VOLUME,
    min_lift: float = MIN_LIFT,
    p_value: float = P_VALUE,
    cooldown: str | None = COOLDOWN,
    prior: float | None = STORED_PRIOR,
    min_history: int | None = MIN_HISTORY,
    tz: str = TZ,
    device: str = device_option("--quantize int8 runs on the CPU."),
) -> None:
    """Ingest every file in a folder, then new files and appended lines as they arrive.

    Restarted, it resumes each file where its last committed batch ended. Stop with Ctrl-C.
    With --alerts, the detector (the same flags as `finance alerts`) runs after each pass.
    """
    from tunesmith.errors import UserInputError
    from tunesmith.signals import stopped_note
    from tunesmith_finance.documents import resolve_zone
    from tunesmith_finance.trends import BY as KINDS
    from tunesmith_finance.watch import watch_folder

    if sink and not alerts:
        raise UserInputError("--sink sends alerts: add --alerts")
    check_device(device, quantize=quantize)  # before the folder is read
    if not folder.is_dir():  # before the model loads and the database is created
        raise UserInputError(f"{folder}: no such folder")
    if by not in KINDS:
        raise UserInputError(f"--by {by!r}: expected one of {', '.join(KINDS)}")
    resolve_zone(tz, "--tz")  # before the model loads
    sinks = sinks_from_flag(sink)
    settings = {
        "bucket": bucket,
        "window": window,
        "half_life": half_life,
        "min_volume": min_volume,
        "min_lift": min_lift,
        "p_value": p_value,
        "cooldown": cooldown,
        "min_history": min_history,
    }
    build_detector(**settings, prior=prior)  # a bad setting is an error now, not after a pass
    ingester = build_ingester(
        db,
        model,
        rules,
        batch_size=batch_size,
        max_chars=max_chars,
        naive_tz=naive_tz,
        quantize=quantize,
        topic_model=topic_model,
        topic_threshold=topic_threshold,
        timeout=timeout,
        device=device,
    )

    def after_pass(report: Any) -> None:
        if report.read:
            print_report(report, False)
        if alerts:
            from tunesmith_finance.alerts import (
                AlertOptions,
                alert_message,
                run_alerts,
            )

            found = run_alerts(
                ingester.db,
                detector=build_detector(**settings, prior=prior, db=ingester.db),
                options=AlertOptions(by=by, tz=tz),
                model=ingester.model,
                sinks=sinks,
            )
            for alert in found:
                echo_err(alert_message(alert))
            if found and not sinks:
                echo_err(NOT_SENT.format(n=len(found)))

    try:
        watch_folder(ingester, folder, on_pass=after_pass, once=once, log=echo_err)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM/SIGHUP (tunesmith.signals): exit 0
        echo_err(stopped_note())
    finally:
        ingester.db.close()


def register(app: typer.Typer) -> None:
    """Add ``watch`` to ``app``."""
    app.command("watch")(watch_command)
