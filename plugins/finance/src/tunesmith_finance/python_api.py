"""The plugin from Python: score headlines, store a stream, read its trends and alerts.

Each function runs what its command runs (``finance score``, ``ingest``, ``trends``,
``alerts``) and returns what the command's ``--json`` prints, as plain dicts and lists (a
list of records is a table: ``pandas.DataFrame(records)``). A mistake is the
:class:`~tunesmith.errors.UserInputError` line the command prints after ``Error:``. Nothing
heavy is imported until a function runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError

PathLike = str | Path


def load_model(path: PathLike, *, quantize: str | None = None, device: str = "auto") -> Any:
    """The sentiment model at ``path`` (from ``finance train``; a seed ensemble with its
    members), loaded once for many :func:`score` calls; ``quantize="int8"``: the faster int8
    copy (on the CPU)."""
    from tunesmith.devices import check_device
    from tunesmith_finance.scoring import SentimentModel

    check_device(device, quantize=quantize)
    return SentimentModel.load(Path(path), quantize=quantize, device=device)


def score_records(
    sentiment: Any, texts: list[str], rules: Any, *, explain: bool = False
) -> list[dict[str, Any]]:
    """One ``finance score --json`` record per text: ``text``, ``label``, ``score``, the three
    probabilities, the ``rules``' ``topics`` and ``tickers``, and with ``explain`` the five
    words that most raised the label shown (``words``). ``sentiment``: a loaded
    :class:`~tunesmith_finance.scoring.SentimentModel`."""
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
    records = []
    for body, score, top in zip(texts, scores, words, strict=True):
        assignment = rules.assign(body)
        record = {"text": body, **score.to_dict(), "topics": assignment.topics}
        record["tickers"] = assignment.tickers
        if explain:
            record["words"] = top
        records.append(record)
    return records


def score(
    texts: str | Iterable[str],
    model: PathLike | Any,
    *,
    rules: PathLike | None = None,
    explain: bool = False,
    quantize: str | None = None,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Score texts (one string, or a list or pandas Series of them; an empty one gives
    ``[]``): a record per text, in order, as ``finance score
    --json`` prints them (``label``, ``score`` = P(positive) − P(negative), ``p_negative``,
    ``p_neutral``, ``p_positive``, ``topics``, ``tickers``; ``words`` with ``explain``).

    ``model``: a model folder, or a model from :func:`load_model` (loaded once for many
    calls); ``rules``: a topic and ticker rules file (``.toml`` or ``.json``)."""
    from tunesmith.python_api import text_list
    from tunesmith_finance.rules import load_rules

    checked = text_list(texts)  # an empty list gives [], as the core's Model.predict does
    loaded_rules = load_rules(rules)
    if isinstance(model, (str, Path)):
        model = load_model(model, quantize=quantize, device=device)
    elif not hasattr(model, "score") or not hasattr(model, "loaded"):
        raise UserInputError(
            f"model: give a model folder or a model from load_model(), got {type(model).__name__}"
        )
    if not checked:
        return []
    return score_records(model, checked, loaded_rules, explain=explain)


def _moment(value: str | datetime | None, what: str, zone: Any) -> float | None:
    """``since``/``until`` as a Unix time: ISO 8601 text or a datetime, either read in
    ``zone`` when it has no zone of its own."""
    if value is None or isinstance(value, str):
        from tunesmith_finance.documents import parse_moment

        return parse_moment(value, what, zone)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()
    raise UserInputError(f"{what}: give ISO 8601 text or a datetime, got {type(value).__name__}")


class Monitor:
    """A finance database (SQLite): documents scored and stored by :meth:`ingest`, read back as
    trends and alerts. Each call opens the database and closes it again, as each command does,
    so nothing needs closing and other processes (``finance watch``) may write beside it."""

    def __init__(self, db: PathLike) -> None:
        """The database at ``db``; :meth:`ingest` creates it, the other methods refuse a
        missing one (a mistyped path would read as an empty stream)."""
        self.db = Path(db)

    def __repr__(self) -> str:
        return f"Monitor({str(self.db)!r})"

    def ingest(
        self,
        files: PathLike | Sequence[PathLike],
        model: PathLike,
        *,
        rules: PathLike | None = None,
        batch_size: int = 1024,
        max_chars: int = 5000,
        naive_tz: str = "UTC",
        quantize: str | None = None,
        topic_model: PathLike | None = None,
        topic_threshold: float = 0.5,
        timeout: float = 5.0,
        device: str = "auto",
    ) -> dict[str, Any]:
        """Score the documents of JSONL, CSV or workbook files in batches and store them
        (resumable and idempotent: a file read before adds only its new lines): the report of
        ``finance ingest --json``. Rows that could not be read are counted in ``skipped`` and
        listed in ``issues`` with file and line; the other rows are stored."""
        from tunesmith.devices import check_device
        from tunesmith_finance.commands.checks import build_ingester
        from tunesmith_finance.ingest import Report
        from tunesmith_finance.sources import check_file
        from tunesmith_finance.storage import discard_if_empty

        names = _file_list(files)
        if batch_size < 1 or max_chars < 1 or timeout < 0 or not 0 <= topic_threshold <= 1:
            raise UserInputError(
                "batch_size and max_chars must be at least 1, timeout at least 0 and "
                "topic_threshold from 0 to 1"
            )
        check_device(device, quantize=quantize)
        for name in names:
            check_file(name)
        created = not self.db.exists()
        ingester = build_ingester(
            self.db,
            Path(model),
            None if rules is None else Path(rules),
            batch_size=batch_size,
            max_chars=max_chars,
            naive_tz=naive_tz,
            quantize=quantize,
            topic_model=None if topic_model is None else Path(topic_model),
            topic_threshold=topic_threshold,
            timeout=timeout,
            device=device,
        )
        total = Report()
        try:
            for name in names:
                total.merge(ingester.ingest_file(str(name)))
        except BaseException:
            if created:
                discard_if_empty(ingester.db, self.db)
            raise
        finally:
            ingester.db.close()
        return total.to_dict()

    def _open(self) -> Any:
        from tunesmith_finance.commands.checks import open_existing_db

        return open_existing_db(self.db)

    def trends(
        self,
        *,
        by: str = "topic",
        bucket: str = "1h",
        key: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        tz: str = "UTC",
    ) -> list[dict[str, Any]]:
        """Count, negatives, negative share with its Wilson 95 % interval and mean score per
        key (topic, ticker, or ``all``) and bucket (``15m``, ``1h``, ``1d``, ``1w`` ...) on the
        ``tz`` clock: the rows of ``finance trends --json``. ``since``/``until``: ISO 8601
        text or a datetime (without a zone, in ``tz``)."""
        from tunesmith_finance import trends as trend_mod
        from tunesmith_finance.documents import resolve_zone

        if key is not None and by == "all":
            raise UserInputError("key picks a topic or ticker: use it with by='topic' or 'ticker'")
        zone = resolve_zone(tz, "tz")
        low, high = _moment(since, "since", zone), _moment(until, "until", zone)
        store = self._open()
        try:
            rows = trend_mod.trends(
                store, by=by, bucket=bucket, key=key, since=low, until=high, zone=zone
            )
        finally:
            store.close()
        return [r.to_dict() for r in rows]

    def alerts(
        self,
        *,
        model: PathLike | None = None,
        by: str = "topic",
        bucket: str = "1h",
        window: int = 3,
        half_life: str | None = None,
        min_volume: int = 8,
        min_lift: float = 0.15,
        p_value: float = 0.001,
        cooldown: str | None = None,
        prior: float | None = None,
        sinks: Sequence[str] = (),
        explain: bool = True,
        max_explain: int = 100,
        tz: str = "UTC",
        device: str = "auto",
    ) -> list[dict[str, Any]]:
        """Find the negative surges not stored yet, explain them, store them and send them to
        ``sinks`` (``jsonl:PATH``, ``stdout``, ``webhook:URL``; stored alerts no sink has had
        yet are sent first): the new alerts, as ``finance alerts --json`` prints them. Safe to
        run again. ``model``: the model whose words explain them (default: the one ingest
        used); the detector's settings are those of the command's flags."""
        from tunesmith.devices import check_device
        from tunesmith_finance.alerts import (
            AlertOptions,
            explaining_model,
            run_alerts,
            starting_prior,
        )
        from tunesmith_finance.commands.checks import build_detector, sinks_from_flag
        from tunesmith_finance.documents import resolve_zone
        from tunesmith_finance.trends import BY

        check_device(device)
        if by not in BY:
            raise UserInputError(f"by {by!r}: expected one of {', '.join(BY)}")
        if max_explain < 0 or (prior is not None and not 0 <= prior <= 1):
            raise UserInputError("max_explain must be at least 0 and prior from 0 to 1")
        resolve_zone(tz, "tz")
        chosen = _sink_list(sinks)
        resolved = sinks_from_flag(chosen)
        store = self._open()
        try:
            detector = build_detector(
                bucket=bucket,
                window=window,
                half_life=half_life,
                min_volume=min_volume,
                min_lift=min_lift,
                p_value=p_value,
                cooldown=cooldown,
                prior=starting_prior(store, prior),
            )
            return run_alerts(
                store,
                detector=detector,
                options=AlertOptions(by=by, max_explain=max_explain, tz=tz),
                model=explaining_model(store, model, explain, device),
                sinks=resolved,
            )
        finally:
            store.close()

    def stored_alerts(
        self, *, by: str | None = None, tz: str | None = None
    ) -> list[dict[str, Any]]:
        """The alerts stored so far, newest window first (only those grouped ``by`` topic,
        ticker or all, when given), each saying whether it was ``sent``: ``finance alerts
        --list --json``. Windows in ``tz``, by default in the zone each was found in."""
        from tunesmith_finance.alerts import list_alerts
        from tunesmith_finance.documents import resolve_zone
        from tunesmith_finance.trends import BY

        if by is not None and by not in BY:
            raise UserInputError(f"by {by!r}: expected one of {', '.join(BY)}")
        if tz is not None:
            resolve_zone(tz, "tz")
        store = self._open()
        try:
            return list_alerts(store, kind=by, tz=tz)
        finally:
            store.close()

    def prune(
        self,
        *,
        older_than: str | None = None,
        before: str | datetime | None = None,
        dry_run: bool = False,
        vacuum: bool = False,
        batch_size: int = 2000,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Delete the documents older than ``older_than`` (from now: ``90d``, ``12w``) or
        ``before`` (ISO 8601 text, UTC without a zone, or a datetime), with their topics,
        tickers and issues, in transactions of ``batch_size`` documents; every alert is kept:
        the report of ``finance prune --json``. ``dry_run``: change nothing and return the plan
        (``finance prune --dry-run --json``); ``vacuum``: give the freed space back to the
        disk; ``timeout``: seconds to wait for a database another process is writing."""
        from tunesmith_finance import retention
        from tunesmith_finance.commands.checks import open_existing_db

        if isinstance(before, datetime):
            # a datetime without a zone is UTC, as the command reads --before
            zoned = before if before.tzinfo else before.replace(tzinfo=UTC)
            before = zoned.isoformat()
        elif before is not None and not isinstance(before, str):
            raise UserInputError(
                f"before: give ISO 8601 text or a datetime, got {type(before).__name__}"
            )
        if older_than is not None and not isinstance(older_than, str):
            raise UserInputError(
                f"older_than: give a duration such as '90d', got {type(older_than).__name__}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise UserInputError(
                f"batch_size must be a whole number of at least 1, got {batch_size!r}"
            )
        if timeout < 0:
            raise UserInputError(f"timeout must be at least 0, got {timeout!r}")
        cutoff = retention.prune_cutoff(older_than, before, names=("older_than", "before"))
        store = open_existing_db(self.db, timeout=timeout)
        try:
            if dry_run:
                return retention.plan_prune(store, cutoff).to_dict()
            return retention.prune(store, cutoff, batch=batch_size, vacuum=vacuum).to_dict()
        finally:
            store.close()


def _file_list(files: PathLike | Sequence[PathLike]) -> list[PathLike]:
    """One file path or several. Anything else is refused by its type: ``list()`` of a
    DataFrame would give its column names, read as files ("id: unsupported file type")."""
    if isinstance(files, (str, Path)):
        return [files]
    if not isinstance(files, (list, tuple)):
        raise UserInputError(
            f"files: give a file path or a list of them, got {type(files).__name__}; "
            "write a DataFrame to one first (df.to_json(PATH, orient='records', lines=True))"
        )
    if not files:
        raise UserInputError("files: the list is empty")
    for name in files:
        if not isinstance(name, (str, Path)):
            raise UserInputError(f"files: {name!r} is not a file path")
    return list(files)


def _sink_list(sinks: str | Sequence[str]) -> list[str]:
    """One sink URL or several."""
    chosen = [sinks] if isinstance(sinks, str) else list(sinks)
    for sink in chosen:
        if not isinstance(sink, str):
            raise UserInputError(f"sinks: {sink!r} is not a sink URL such as jsonl:alerts.jsonl")
    return chosen
