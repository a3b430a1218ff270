"""Checks of the inputs several finance commands share, made before any work, and the objects
built from them: the ingester, the surge detector, the sinks, an existing database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith_finance.commands.output import echo_err


def check_inputs(files: list[str]) -> None:
    """Refuse a missing, empty or unsupported input file before the model loads."""
    from tunesmith_finance.sources import check_file

    for name in files:
        if name != "-":
            check_file(name)


def sinks_from_flag(sink: list[str] | None) -> list[Any]:
    """The ``--sink`` URLs as sinks, refused at once when a scheme is unknown."""
    from tunesmith_finance.alerts import resolve_sinks

    return resolve_sinks(list(sink or []))


def open_existing_db(db: Path, timeout: float | None = None) -> Any:
    """The finance database at ``db``, refused when missing: trends and alerts read it, never
    create it. ``timeout``: seconds to wait for a locked database (the store's default)."""
    from tunesmith.errors import UserInputError
    from tunesmith_finance.storage import open_store

    if not db.is_file():
        raise UserInputError(f"--db {db}: no such database; create it with `finance ingest`")
    return open_store(db, timeout=timeout)


def build_ingester(
    db_path: Path,
    model: Path,
    rules: Path | None,
    *,
    batch_size: int,
    max_chars: int,
    naive_tz: str,
    quantize: str | None,
    topic_model: Path | None,
    topic_threshold: float,
    timeout: float,
    device: str = "cpu",
) -> Any:
    """The ``Ingester`` of ingest, watch and replay; the rules, the zone, the model paths,
    ``--quantize`` and ``--device`` are checked now, the models load (on ``device``) when a
    batch first needs them."""
    from tunesmith.errors import ModelNotFoundError, UserInputError
    from tunesmith_finance.deferred import DeferredModel, DeferredTopicModel
    from tunesmith_finance.documents import resolve_zone
    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.storage import open_store

    zone = resolve_zone(naive_tz)
    loaded_rules = load_rules(rules)
    # Both models load when a batch first has new documents to score (seconds: torch,
    # transformers): a run over files already stored scores nothing. Their paths and
    # --quantize are checked now.
    for flag, path in (("--model", model), ("--topic-model", topic_model)):
        if path is not None and not path.expanduser().exists():
            raise ModelNotFoundError(f"{flag}: model directory {path.expanduser()} does not exist")
    if quantize not in (None, "int8"):
        raise UserInputError(f"--quantize {quantize!r}: the choice is 'int8'")
    sentiment = DeferredModel(model, quantize=quantize, device=device)
    # The topic model is never quantised: int8 keeps the sentiment model on the CPU only.
    topics = (
        DeferredTopicModel(topic_model, threshold=topic_threshold, device=device)
        if topic_model
        else None
    )
    db = open_store(db_path, timeout=timeout)
    return Ingester(
        db,
        sentiment,
        loaded_rules,
        batch_size=batch_size,
        max_chars=max_chars,
        naive_tz=zone,
        topic_model=topics,
        warn=echo_err,
    )


def build_detector(
    *,
    bucket: str,
    window: int,
    half_life: str | None,
    min_volume: int,
    min_lift: float,
    p_value: float,
    cooldown: str | None,
    prior: float | None,
    min_history: int | None = None,
    db: Any = None,
    bucket_flag: str = "--bucket",
) -> Any:
    """The surge detector of alerts, watch --alerts and replay, its settings checked;
    ``bucket_flag`` names the flag the bucket came from (replay's ``--step``).

    ``prior``: the analyst's ``--prior``; None starts the baseline at ``db``'s negative share
    (:data:`EMPTY_PRIOR` without ``db``, or while it is empty). ``min_history`` None: the wait
    that suits the prior (:func:`min_history_for`: 20 documents without ``--prior``, 0 with)."""
    from tunesmith.errors import UserInputError
    from tunesmith_finance.alerts import EMPTY_PRIOR, starting_prior
    from tunesmith_finance.detector import SurgeDetector, min_history_for
    from tunesmith_finance.trends import parse_duration

    if window < 1:
        raise UserInputError("--window must be at least 1 bucket")
    if not 0 < p_value < 1:
        raise UserInputError("--p-value must be between 0 and 1")
    if min_volume < 1:
        raise UserInputError("--min-volume must be at least 1 document")
    if not 0 <= min_lift < 1:
        raise UserInputError("--min-lift must be a share from 0 below 1")
    if min_history is not None and min_history < 0:
        raise UserInputError("--min-history must be at least 0 documents")
    # The wait follows the prior the analyst gave, not the database's share it resolves to:
    # decided on the resolved share, every command but the dashboard tested young keys at once.
    wait = min_history_for(prior) if min_history is None else float(min_history)
    if prior is None and db is not None:
        prior = starting_prior(db)
    return SurgeDetector(
        bucket=parse_duration(bucket, bucket_flag),
        window=window,
        half_life=None if half_life is None else parse_duration(half_life, "--half-life"),
        min_volume=min_volume,
        min_lift=min_lift,
        p_value=p_value,
        cooldown=None if cooldown is None else parse_duration(cooldown, "--cooldown"),
        prior=EMPTY_PRIOR if prior is None else prior,  # an empty database: as the dashboard
        min_history=wait,
    )
