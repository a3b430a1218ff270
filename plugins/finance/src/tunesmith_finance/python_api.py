"""The plugin from Python: score headlines, store a stream, read its trends and alerts.

Each function runs what its command runs (``finance score``, ``ingest``, ``trends``,
``alerts``) and returns what the command's ``--json`` prints, as plain dicts and lists (a
list of records is a table: ``pandas.DataFrame(records)``). A mistake is the
:class:`~tunesmith.errors.UserInputError` line the command prints after ``Error:``. Nothing
heavy is imported until a function runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.python_data import is_path, keyword_errors

PathLike = str | Path

#: Errors name this API's keywords, not the commands' flags.
_keywords = keyword_errors(
    {
        "--sink": "sinks",
        "--text": "texts",
        "--explain": "explain=True",
        "--dry-run": "dry_run=True",
        "--vacuum": "vacuum=True",
        "--for": "duration",
        "--mute": "mute",
        "--by topic": "by='topic'",
        "--by ticker": "by='ticker'",
        "`--mutes` lists the mutes": "Monitor.mutes() lists them",
        "`finance alerts --list --state all` lists them": "Monitor.stored_alerts() lists them",
    }
)


@_keywords
def load(path: PathLike, *, quantize: str | None = None, device: str = "auto") -> Any:
    """The sentiment model at ``path`` (from ``finance train``; a seed ensemble with its
    members), loaded once for many :func:`score` and :meth:`Monitor.ingest` calls, as
    ``tunesmith.load`` loads a core model; ``quantize="int8"``: the faster int8 copy (on the
    CPU); ``device``: where it runs."""
    from tunesmith.devices import check_device
    from tunesmith_finance.scoring import SentimentModel

    check_device(device, quantize=quantize)
    return SentimentModel.load(Path(path), quantize=quantize, device=device)


@_keywords
def load_model(path: PathLike, *, quantize: str | None = None, device: str = "auto") -> Any:
    """:func:`load` under its earlier name, kept for the code that calls it."""
    return load(path, quantize=quantize, device=device)


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


@_keywords
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

    ``model``: a model folder, or a model from :func:`load` (loaded once for many calls);
    ``rules``: a topic and ticker rules file (``.toml`` or ``.json``)."""
    from tunesmith.python_api import text_list
    from tunesmith_finance.rules import load_rules

    checked = text_list(texts)  # an empty list gives [], as the core's Model.predict does
    loaded_rules = load_rules(rules)
    if isinstance(model, (str, Path)):
        model = load(model, quantize=quantize, device=device)
    elif not _is_loaded(model):
        raise UserInputError(
            f"model: give a model folder or a model from load(), got {type(model).__name__}"
        )
    if not checked:
        return []
    return score_records(model, checked, loaded_rules, explain=explain)


def _is_loaded(model: object) -> bool:
    """Whether ``model`` is a sentiment model :func:`load` returned (not a folder)."""
    return hasattr(model, "score") and hasattr(model, "loaded") and hasattr(model, "path")


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

    @_keywords
    def ingest(
        self,
        data: Any = None,
        model: PathLike | Any = None,
        *,
        texts: Iterable[str] | None = None,
        files: PathLike | Sequence[PathLike] | None = None,
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
        """Score documents in batches and store them: the report of ``finance ingest --json``.
        Rows that could not be read are counted in ``skipped`` and listed in ``issues``; the
        other rows are stored.

        ``data``: a JSONL, CSV or workbook file or a list of them (resumable and idempotent: a
        file read before adds only its new lines), or the same rows in memory, a pandas
        DataFrame, a list of dicts or a dict of columns (``text``, ``time``, and ``id``,
        ``source``, ``topics``, ``tickers`` when there; the names a file may use), stored as
        the same rows in a JSONL file would be; their issues name ``data`` and the record's
        position from 0 as ``line``. ``texts``: headlines alone, stored at the time of the
        call. ``files``: ``data``'s earlier name. ``model``: a model folder, or a model from
        :func:`load`."""
        from tunesmith.devices import check_device
        from tunesmith_finance.commands.checks import build_ingester
        from tunesmith_finance.ingest import Report
        from tunesmith_finance.sources import check_file
        from tunesmith_finance.storage import discard_if_empty

        data = _one_source(data, texts, files)
        names = _file_list(data) if _names_files(data) else None
        loaded = model if _is_loaded(model) else None
        if model is None:
            raise UserInputError("model: give the sentiment model (a folder, or one from load())")
        if loaded is None and not is_path(model):
            raise UserInputError(
                f"model: give a model folder or a model from load(), got {type(model).__name__}"
            )
        if batch_size < 1 or max_chars < 1 or timeout < 0 or not 0 <= topic_threshold <= 1:
            raise UserInputError(
                "batch_size and max_chars must be at least 1, timeout at least 0 and "
                "topic_threshold from 0 to 1"
            )
        check_device(device, quantize=quantize)
        for name in names or ():
            check_file(name)
        with _documents_file(data) as in_memory:
            created = not self.db.exists()
            ingester = build_ingester(
                self.db,
                Path(model if loaded is None else loaded.path),
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
            if loaded is not None:
                ingester.model = loaded  # scores as the loaded model does, not loaded again
            total = Report()
            try:
                if in_memory is None:
                    for name in names or ():
                        total.merge(ingester.ingest_file(str(name)))
                else:
                    with in_memory.open("rb") as handle:
                        # As a stream, not a file: nothing to resume (a file's progress would
                        # be kept for a path gone after the call); ids still make a second
                        # call add nothing.
                        total.merge(ingester.ingest_stream(handle, name="data", fmt="jsonl"))
            except BaseException:
                if created:
                    discard_if_empty(ingester.db, self.db)
                raise
            finally:
                ingester.db.close()
        report = total.to_dict()
        if in_memory is not None:
            for issue in report["issues"]:  # JSONL line 1 is data[0]
                issue["line"] = None if issue["line"] is None else issue["line"] - 1
        return report

    def _open(self) -> Any:
        from tunesmith_finance.commands.checks import open_existing_db

        return open_existing_db(self.db)

    @_keywords
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

    @_keywords
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
        min_history: int | None = None,
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
                prior=prior,
                min_history=min_history,
                db=store,
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

    @_keywords
    def stored_alerts(
        self,
        *,
        by: str | None = None,
        tz: str | None = None,
        state: str = "all",
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The alerts stored so far, newest window first (only those grouped ``by`` topic,
        ticker or all, when given), each saying whether it was ``sent`` and its triage
        ``state``, ``triage`` and ``muted``: ``finance alerts --list --state all --json``.
        Windows in ``tz``, by default in the zone each was found in.

        ``state``: ``"all"`` (the default), or only the ``open``, ``acknowledged``, ``noise``
        or ``muted`` ones, as ``--list --state`` takes it. Unlike ``--list``, which shows a
        desk the open alerts to act on, every alert by default: a notebook counts and joins
        them (each record says its state), and code written before the triage got every one.
        ``limit``: at most this many, the newest (of that state)."""
        from tunesmith_finance.alerts import list_alerts
        from tunesmith_finance.triage import LIST_STATES

        if state not in LIST_STATES:
            raise UserInputError(f"state {state!r}: expected one of {', '.join(LIST_STATES)}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):  # fmt: skip
            raise UserInputError(f"limit must be a whole number of at least 1, got {limit!r}")
        kind = self._by(by)
        self._check_tz(tz)
        with self._store() as store:
            return list_alerts(store, kind=kind, tz=tz, state=state, limit=limit)

    # -- triage: `finance alerts --ack/--noise/--reopen/--mute/--unmute/--mutes/--noise-report`

    @_keywords
    def ack(
        self,
        ids: str | Iterable[str],
        *,
        who: str | None = None,
        note: str | None = None,
        tz: str | None = None,
    ) -> list[dict[str, Any]]:
        """Acknowledge the alerts ``ids`` (each an id or its first characters, as
        :meth:`stored_alerts` gives them; one or a list, all marked or none): someone has them
        in hand. ``who``: by default ``$TUNESMITH_AGENT``, else your login name; ``note``: kept with the mark. Returns
        the alerts marked, as :meth:`stored_alerts` gives them (``finance alerts --ack ID
        --json``). An alert acknowledged already, or marked noise (:meth:`reopen` it first),
        is refused and nothing is written."""
        return self._mark(ids, "acknowledged", who=who, note=note, tz=tz)

    @_keywords
    def noise(
        self,
        ids: str | Iterable[str],
        *,
        who: str | None = None,
        note: str | None = None,
        tz: str | None = None,
    ) -> list[dict[str, Any]]:
        """Mark the alerts ``ids`` as noise, false alerts (an acknowledged one too: the log
        keeps who acknowledged it); as :meth:`ack` otherwise (``finance alerts --noise ID
        --json``). :meth:`noise_report` counts them."""
        return self._mark(ids, "noise", who=who, note=note, tz=tz)

    @_keywords
    def reopen(
        self,
        ids: str | Iterable[str],
        *,
        who: str | None = None,
        note: str | None = None,
        tz: str | None = None,
    ) -> list[dict[str, Any]]:
        """Undo :meth:`ack` or :meth:`noise` on the alerts ``ids``: open again (muted again,
        one a mute held); as :meth:`ack` otherwise (``finance alerts --reopen ID --json``)."""
        return self._mark(ids, "reopened", who=who, note=note, tz=tz)

    def _mark(
        self, ids: Any, mark: str, *, who: str | None, note: str | None, tz: str | None
    ) -> list[dict[str, Any]]:
        from tunesmith_finance.triage import mark_and_list

        given = [ids] if isinstance(ids, str) else list(ids) if _iterable(ids) else [ids]
        if not given or not all(isinstance(i, str) for i in given):
            raise UserInputError(
                f"ids: give an alert id (or its first characters) or a list of them, got {ids!r}"
            )
        self._check_tz(tz)
        with self._store() as store:
            return mark_and_list(store, given, mark, who=who, note=note, tz=tz)

    @_keywords
    def mute(
        self,
        key: str,
        duration: str | timedelta,
        *,
        by: str | None = None,
        who: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Mute a topic or ticker (``"$TSLA"``; ``by="topic"`` or ``"ticker"`` when the key is
        both or neither) for ``duration`` from now (``"30m"``, ``"6h"``, ``"2d"``, ``"1w"`` or
        a ``timedelta``): its surges are stored as muted alerts and sent to no sink, ever.
        Returns the mute as ``finance alerts --mute KEY --for D --json`` prints it (``kind``,
        ``key``, ``who``, ``note``, ``from``, ``to``, the seconds, and ``replaced``: the mute
        of the key it ended, or None)."""
        from tunesmith_finance.trends import parse_duration
        from tunesmith_finance.triage import mute_key, mute_record, resolve_mute_key

        if isinstance(duration, timedelta):
            seconds = duration.total_seconds()
            if seconds <= 0:
                raise UserInputError(f"duration must be positive, got {duration}")
        elif isinstance(duration, str):
            seconds = parse_duration(duration, "duration")
        else:
            raise UserInputError(
                f"duration: give '2d' or a timedelta, got {type(duration).__name__}"
            )
        self._by(by)
        with self._store() as store:
            kind, stored = resolve_mute_key(store, _key_text(key), by)
            return mute_record(*mute_key(store, kind, stored, seconds, who=who, note=note))

    @_keywords
    def unmute(self, key: str, *, by: str | None = None) -> dict[str, Any]:
        """End the mute of a topic or ticker now (the alerts it held stay muted: they were
        never sent); the mute ended, as ``finance alerts --unmute KEY --json`` prints it. A
        key not muted is refused."""
        from tunesmith_finance.triage import resolve_mute_key, unmute_key

        self._by(by)
        with self._store() as store:
            kind, stored = resolve_mute_key(store, _key_text(key), by)
            return unmute_key(store, kind, stored).to_dict()

    @_keywords
    def mutes(self, *, by: str | None = None) -> list[dict[str, Any]]:
        """The mutes in force, soonest to end first (only topics or tickers with ``by``):
        ``finance alerts --mutes --json``."""
        from tunesmith_finance.triage import active_mutes

        self._by(by)
        with self._store() as store:
            return [m.to_dict() for m in active_mutes(store) if by in (None, m.kind)]

    @_keywords
    def noise_report(
        self,
        *,
        by: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        tz: str = "UTC",
    ) -> dict[str, Any]:
        """How many alerts whose window ends in [``since``, ``until``) were noise, per key and
        overall, with the noise share (1 − precision on the alerts triaged) and noise alerts
        per day: ``finance alerts --noise-report --json``. ``since``/``until``: ISO 8601 text
        or a datetime (without a zone, in ``tz``); by default the stored stream's span."""
        from tunesmith_finance.documents import resolve_zone
        from tunesmith_finance.triage import noise_report

        kind = self._by(by)
        zone = resolve_zone(tz, "tz")
        low, high = _moment(since, "since", zone), _moment(until, "until", zone)
        with self._store() as store:
            return noise_report(store, kind=kind, since=low, until=high)

    @staticmethod
    def _by(by: str | None) -> str | None:
        from tunesmith_finance.trends import BY

        if by is not None and by not in BY:
            raise UserInputError(f"by {by!r}: expected one of {', '.join(BY)}")
        return by

    @staticmethod
    def _check_tz(tz: str | None) -> None:
        if tz is not None:
            from tunesmith_finance.documents import resolve_zone

            resolve_zone(tz, "tz")

    @contextlib.contextmanager
    def _store(self) -> Iterator[Any]:
        store = self._open()
        try:
            yield store
        finally:
            store.close()

    @_keywords
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


def _iterable(value: Any) -> bool:
    """Whether ``value`` is a list of ids (a list, tuple, set or pandas Series), not one."""
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict))


def _key_text(key: Any) -> str:
    """A topic or ticker to mute as text; anything else is one line."""
    if not isinstance(key, str):
        raise UserInputError(f"key: give a topic or ticker such as '$TSLA', got {key!r}")
    return key


def _one_source(data: Any, texts: Iterable[str] | None, files: Any) -> Any:
    """What :meth:`Monitor.ingest` reads: ``data``, ``files`` (its earlier name), or
    ``texts`` as records stamped with the time of the call; exactly one of them."""
    given = [name for name, value in (("data", data), ("texts", texts), ("files", files))
             if value is not None]  # fmt: skip
    if len(given) != 1:
        raise UserInputError(
            "give one of data (files, a DataFrame, records) or texts"
            + (f", not {' and '.join(given)}" if given else "")
        )
    if files is not None:
        return files
    if texts is None:
        return data
    from tunesmith.python_api import text_list

    checked = text_list(texts)
    if not checked:
        raise UserInputError("texts: the list is empty")
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"text": checked, "time": [now] * len(checked)}


def _names_files(data: Any) -> bool:
    """Whether ``data`` names files (a path, or a list of paths), not rows in memory."""
    return is_path(data) or (
        isinstance(data, (list, tuple)) and bool(data) and all(is_path(d) for d in data)
    )


@contextlib.contextmanager
def _documents_file(data: Any) -> Iterator[Path | None]:
    """In-memory rows as the JSONL file :func:`tunesmith.python_data.data_file` writes for
    the block, the columns ingest reads kept; ``None`` for files, read as they are."""
    from tunesmith.python_data import data_file
    from tunesmith_finance.documents import (
        ID_FIELDS,
        TEXT_FIELDS,
        TICKER_FIELDS,
        TIME_FIELDS,
        TOPIC_FIELDS,
    )

    if _names_files(data):
        yield None
        return
    if isinstance(data, (list, tuple)) and not data:
        raise UserInputError("data: the list is empty")
    if isinstance(data, (list, tuple)) and any(is_path(d) for d in data):
        first = next(d for d in data if not is_path(d))
        raise UserInputError(f"data: {first!r} is not a file path")
    optional = (*ID_FIELDS, *TOPIC_FIELDS, *TICKER_FIELDS, "source")
    with data_file(
        data, what="data", columns=(TEXT_FIELDS, TIME_FIELDS), optional=optional
    ) as path:
        yield path


def _file_list(files: PathLike | Sequence[PathLike]) -> list[PathLike]:
    """One file path or several (checked by :func:`_names_files`)."""
    if isinstance(files, (str, Path)):
        return [files]
    return list(files)


def _sink_list(sinks: str | Sequence[str]) -> list[str]:
    """One sink URL or several."""
    chosen = [sinks] if isinstance(sinks, str) else list(sinks)
    for sink in chosen:
        if not isinstance(sink, str):
            raise UserInputError(f"sinks: {sink!r} is not a sink URL such as jsonl:alerts.jsonl")
    return chosen
