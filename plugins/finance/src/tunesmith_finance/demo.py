"""The finance dashboard: the suite's "Finance sentiment" tab and ``tunesmith finance demo``.

Nothing heavy happens when the tab is built. The sample set-up (a small sentiment model trained
once on the sample sentences, cached under ``demo_models_dir()``, and the sample stream replayed
into a database there) starts when the user asks for it, or at once when a model is given or
cached. A timer refreshes the chart and the alert list as documents arrive, whoever writes them
(this page's replay, or a `finance ingest` / `finance watch` on the same database).
"""

from __future__ import annotations

import functools
import re
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tunesmith.ui.markdown import markdown_box
from tunesmith.ui.markdown import plain_markdown as _plain
from tunesmith_finance.trends import FEW_DOCUMENTS

TITLE = "Finance sentiment"
DESCRIPTION = "Score finance news, follow per-topic sentiment trends, see surges explained."
INTRO = (
    "### Finance sentiment\n"
    "Score financial news (P(positive) − P(negative)), follow **per-topic sentiment trends** and "
    "ticker trends, and see negative surges alerted and explained."
)
#: Said under :data:`INTRO` when the page shows the sample database, and only then.
SAMPLE_NOTE = (
    " The sample stream is fictional: 435 headlines over five days with a banking scare on day "
    "four."
)
#: The longest example text an alert's details show (a stored document may have 5,000).
EXAMPLE_CHARS = 280
REFRESH_SECONDS = 2.0
#: The bucket sizes and zones whose counts a dashboard holds (:meth:`Dashboard.live_counts`):
#: the alert checks' and the chart's few; at a million documents the hourly ticker counts
#: are some 300,000 buckets.
LIVE_CACHES = 4
#: The key-box choice that charts six keys: those alerted (newest alert first), then those with
#: the most documents.
TOP = "top 6"
#: The alert states that put a key first in the key box and the top-six chart: not those
#: marked noise or muted (`finance alerts --noise`, `--mute`).
IN_HAND = ("open", "acknowledged")
#: What the page can group documents by, and so what alerts are detected for.
GROUPS = ("topic", "ticker")
#: The bucket sizes the page offers, smallest first, after :data:`AUTO`.
BUCKETS = ("1h", "3h", "6h", "1d", "1w")
#: The bucket box's first choice: the bucket :func:`auto_bucket` picks for the keys shown.
AUTO = "auto"
#: The documents :data:`AUTO` wants in a typical bucket (the median of those with documents)
#: of every key the chart shows: at 10 a negative share of 0.2 has a Wilson 95 % interval of
#: 0.06-0.51, while a bucket of one or two documents jumps between 0 and 1.
MIN_PER_BUCKET = FEW_DOCUMENTS  # the chart draws smaller buckets faint, off their line
#: The fewest buckets :data:`AUTO` cuts the data's span into: a quarter's keys may want a week,
#: but five days drawn as one or two points show no trend at all.
MIN_BUCKETS = 8
#: The most buckets :data:`AUTO` cuts the data's span into (when an offered size allows it).
MAX_BUCKETS = 100
#: Time zones offered in the page's zone box (any IANA name can be typed in it).
ZONES = (
    "UTC", "America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London",
    "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney",
)  # fmt: skip


def demo_paths() -> tuple[Path, Path]:
    """Where the demo keeps its sample model and database."""
    from tunesmith.ui.core_demos import demo_models_dir

    root = demo_models_dir()
    return root / "finance_sentiment", root / "finance_demo.sqlite"


def auto_bucket(
    span: float,
    rows_for: Callable[[str], list[Any]],
    keys: Sequence[str] | None = None,
    prefer: str | None = None,
) -> tuple[str, list[Any], bool]:
    """The smallest of :data:`BUCKETS` whose typical bucket holds :data:`MIN_PER_BUCKET`
    documents for each of ``keys`` (the keys the chart shows; by default every key of the
    rows), among the sizes that cut ``span`` seconds (first to last document) into at most
    :data:`MAX_BUCKETS` and at least :data:`MIN_BUCKETS` buckets; when none does, the largest
    of those. ``prefer`` (the alert checks' bucket, any size) comes first when it meets both
    rules: the chart's points are then the detector's buckets. ``rows_for(size)``: the trend
    rows in buckets of that size. Returns the size, its rows, and whether the keys got their
    documents per bucket.

    Counting buckets alone gave two weeks of tweets 6h buckets of one or two documents per key,
    whose share jumps between 0 and 1, and never offered a week to a quarter of data."""
    from tunesmith_finance.trends import parse_duration

    if prefer is not None and MIN_BUCKETS <= span / parse_duration(prefer) <= MAX_BUCKETS:
        rows = rows_for(prefer)
        if _enough_per_bucket(rows, keys):
            return prefer, rows, True
    sizes = [b for b in BUCKETS if span / parse_duration(b) >= MIN_BUCKETS] or [BUCKETS[0]]
    fitting = [b for b in sizes if span / parse_duration(b) <= MAX_BUCKETS] or sizes[-1:]
    rows = []
    for size in fitting:
        rows = rows_for(size)
        if _enough_per_bucket(rows, keys):
            return size, rows, True
    return fitting[-1], rows, False


def _enough_per_bucket(rows: list[Any], keys: Sequence[str] | None) -> bool:
    """Whether each of ``keys`` (default: every key of the rows) has :data:`MIN_PER_BUCKET`
    documents in its typical bucket (the median of its buckets with documents)."""
    import statistics

    counts: dict[str, list[int]] = {}
    for row in rows:
        counts.setdefault(row.key, []).append(row.count)
    wanted = [k for k in (keys or counts) if k in counts]
    return all(statistics.median(counts[k]) >= MIN_PER_BUCKET for k in wanted)


def train_sample_model(out: Path, base_model: str = "default") -> Path:
    """Train (once) a head-only sentiment model on the sample sentences, with ``finance train``'s
    lexical share; returns its directory."""
    if (out / "config.json").exists():
        return out
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.train import train
    from tunesmith_finance.sample import EVAL, TRAIN
    from tunesmith_finance.training import LEXICAL_SHARE

    run = RunConfig(
        data=str(TRAIN),
        eval_data=str(EVAL),
        out=str(out),
        model=base_model,
        strategy="head",
        lexical=LEXICAL_SHARE,
        force=True,
    )
    return Path(train(run))


class Dashboard:
    """The state behind one dashboard: model, database, a background set-up and replay.

    ``tz``: the zone whose wall clock cuts the buckets of the trends, of the alerts detected
    and of the sample replay, as ``--tz`` does for `finance trends` and `finance alerts` (an
    IANA name; default UTC); a page may show the trends in another (:meth:`snapshot`).
    ``detector_settings``: the :class:`SurgeDetector` fields of `finance alerts`' flags
    (:data:`~tunesmith_finance.alerts.DETECTOR_FLAGS`; default: its defaults) and ``prior``
    its ``--prior`` (default: the database's negative share at each check), which the page's
    alert checks and the sample replay use."""

    def __init__(
        self,
        model: str | None = None,
        db: str | None = None,
        rules: str | None = None,
        tz: str = "UTC",
        topic_model: str | None = None,
        topic_threshold: float = 0.5,
        detector_settings: dict[str, Any] | None = None,
        prior: float | None = None,
    ) -> None:
        from tunesmith_finance.deferred import DeferredTopicModel
        from tunesmith_finance.documents import resolve_zone
        from tunesmith_finance.rules import load_rules
        from tunesmith_finance.sample import RULES
        from tunesmith_finance.trends import zone_name

        # Resolved now, so that a mistyped zone is one error before the page starts.
        self.zone = resolve_zone(tz, "--tz")
        self.tz = zone_name(self.zone)
        self.detector_settings = dict(detector_settings or {})
        self.prior = prior
        default_model, default_db = demo_paths()
        # The topics and tickers a scored text is shown with: the user's own rules file (the one
        # their database was filled with), else the sample's. Loaded now, so that a bad file is
        # one error before the page starts, not one per scored text.
        self.rules_path = Path(rules) if rules else RULES
        self.rules = load_rules(self.rules_path)
        # The analyst's own topic classifier, as `finance ingest --topic-model` used it: a
        # scored text is shown with the topics its documents are stored with. Loaded at the
        # first scored text.
        self.topic_model = (
            DeferredTopicModel(topic_model, threshold=topic_threshold) if topic_model else None
        )
        self.model_dir = Path(model) if model else default_model
        self.db_path = Path(db) if db else default_db
        self.explicit = model is not None
        # Only the sample's own database is filled with the fictional sample stream: an empty
        # (or mistyped) --db of the user's got 435 invented headlines mixed into its trends.
        self.sample_db = self.db_path.resolve() == default_db.resolve()
        #: Where the model came from, said in the intro for a database of the user's.
        self.model_origin = "given" if model else "sample"
        if model is None and not self.sample_db:
            self._use_recorded_model()
        self.status = f"Not started: press **{self.start_label}**."
        self.error: str | None = None
        self._model: Any = None
        self._db: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # What the last alert check was run on (LiveCounts.mark): a document count alone missed
        # a prune of as many documents as had arrived.
        self._last_mark: Any = None
        self._last_failure = ""  # the last alert check that failed for a bug, said once
        # Bucket counts read once and then extended by the documents stored since, per bucket
        # size and zone (:meth:`live_counts`): reading them again took seconds per refresh.
        self._live: dict[tuple[float, str], Any] = {}
        self._live_lock = threading.Lock()

    def _use_recorded_model(self) -> None:
        """Without ``--model``, a database of the user's is explained and its texts scored by
        the model `finance ingest` scored it with, as `finance alerts` explains it: the sample
        model (450 fictional sentences) gave the same alert other words. A database without
        documents has none yet: the page waits for the one its first ingest records."""
        from tunesmith_finance.storage import has_documents, recorded_model

        recorded = recorded_model(self.db_path)
        if recorded is None:
            # Empty, it got the sample model, trained for a minute and then used for the
            # alerts of the documents the analyst's own model scored, without a word.
            self.model_origin = "unrecorded" if has_documents(self.db_path) else "waiting"
            return
        if (Path(recorded) / "config.json").exists():
            self.model_dir, self.explicit, self.model_origin = Path(recorded), True, "recorded"
        else:
            self.model_origin = f"gone:{recorded}"

    # -- set-up ---------------------------------------------------------------------------------

    @property
    def start_label(self) -> str:
        """The start button's text: it only sets up the sample when the page uses it."""
        return "Start with the sample data" if self.sample_db else "Start"

    @property
    def intro(self) -> str:
        """The page's opening paragraph: the sample stream is described only when shown."""
        if self.sample_db:
            return INTRO + SAMPLE_NOTE
        intro = INTRO + f" Database: {_plain(self.db_path.name)}."
        if self.model_origin == "recorded":
            return intro + f" Model: {_plain(self.model_dir.name)}, the one it was scored with."
        if self.model_origin.startswith("gone:"):
            gone = _plain(self.model_origin.removeprefix("gone:"))
            return intro + (
                f" The model it was scored with ({gone}) is gone: alert words and scored texts "
                "come from the sample model; `--model` names another."
            )
        if self.model_origin == "waiting":
            return intro + (
                " It has no documents yet, so no model: texts are scored and alerts explained "
                "with the model `finance ingest` records when it fills the database (`--model` "
                "names another)."
            )
        if self.model_origin == "unrecorded":
            return intro + (
                " It records no model: alert words and scored texts come from the sample model; "
                "`--model` names another."
            )
        return intro

    @property
    def ready(self) -> bool:
        return self._model is not None and self._db is not None

    def should_autostart(self) -> bool:
        waiting = self.model_origin == "waiting"  # nothing to train: the page only follows
        return self.explicit or waiting or (self.model_dir / "config.json").exists()

    def start(self) -> str:
        """Start the background set-up once, or again after it failed; returns the status line."""
        with self._lock:
            failed = self._thread is not None and not self._thread.is_alive()
            if self._thread is None or failed:
                self.error = None
                self.status = "Starting..."
                self._thread = threading.Thread(target=self._prepare, daemon=True)
                self._thread.start()
        return self.status

    def _prepare(self) -> None:
        from tunesmith_finance.ingest import Ingester
        from tunesmith_finance.rules import load_rules
        from tunesmith_finance.sample import RULES, STREAM
        from tunesmith_finance.scoring import SentimentModel
        from tunesmith_finance.storage import count_documents, open_store

        try:
            # A model the user named is only loaded: a mistyped path is an error, not a folder
            # to train the sample model into. An empty database of the user's waits for the
            # model its first ingest records (:meth:`_follow_recorded_model`).
            if self.model_origin != "waiting":
                if not self.explicit and not (self.model_dir / "config.json").exists():
                    self.status = (
                        "Training a small sentiment model on the sample sentences (once)..."
                    )
                    train_sample_model(self.model_dir)
                self.status = "Loading the model..."
                self._model = SentimentModel.load(self.model_dir)
            self._db = open_store(self.db_path)
            # Marked until the replay has ended: one cut short (the server stopped, a failed
            # step) is finished at the next start, where the documents already stored kept it
            # from running again and the page showed half the sample stream for good.
            unfinished = self.db_path.with_name(self.db_path.name + ".replaying")
            if self.sample_db and (count_documents(self._db) == 0 or unfinished.exists()):
                self.status = "Replaying the sample stream..."
                unfinished.touch()
                self._replay(
                    Ingester(self._db, self._model, load_rules(RULES), warn=lambda _m: None), STREAM
                )
                unfinished.unlink()
            self.status = "Ready."
            self._monitor()
        except Exception as exc:  # shown in the tab instead of a silent thread death
            self.error = f"{type(exc).__name__}: {exc}"
            self.status = f"Set-up failed: {_plain(self.error)}"

    def _replay(self, ingester: Any, stream: Path) -> None:
        from tunesmith_finance.alerts import EMPTY_PRIOR, AlertOptions
        from tunesmith_finance.detector import SurgeDetector, min_history_for
        from tunesmith_finance.replay import replay

        prior = EMPTY_PRIOR if self.prior is None else self.prior
        replay(
            ingester,
            stream,
            # As `finance replay` starts: from an empty database, so from its default prior;
            # with the page's settings, so that its checks afterwards find the same alerts.
            detector=SurgeDetector(
                prior=prior,
                **{"min_history": min_history_for(self.prior), **self.detector_settings},
            ),
            options=AlertOptions(tz=self.tz),
            explain=True,
            echo=lambda _l: None,
            speed=0.02,
        )

    def detector(self, live: Any = None) -> Any:
        """The detector of the page's alert checks: `finance alerts`' with the page's settings
        (its defaults unless `finance demo` was given its flags), its baseline starting from
        ``--prior``, else the database's negative share now (``live``: the checks' counts,
        brought up to date already). A fixed 0.2 prior made the bar
        stricter on a database at 6 % negatives, and surges `finance alerts` found were never
        shown; fixed settings showed other alerts than those tuned on the command line."""
        from tunesmith_finance.alerts import EMPTY_PRIOR, default_detector
        from tunesmith_finance.detector import min_history_for

        prior = self.prior
        if prior is None:
            # The database's negative share, as `finance alerts` reads it, from the held counts
            live = live or self.live_counts(self.checks_size(), self.zone)
            share = live.negative_share()
            prior = EMPTY_PRIOR if share is None else share
        # the page's own prior decides the wait, not the database's share computed above
        settings = {"min_history": min_history_for(self.prior), **self.detector_settings}
        return default_detector(self._db, prior=prior, **settings)

    def checks_size(self) -> float:
        """The bucket of the page's alert checks, in seconds."""
        from tunesmith_finance.detector import SurgeDetector

        return float(self.detector_settings.get("bucket") or SurgeDetector.bucket)

    def live_counts(self, size: float, zone: Any) -> Any:
        """The bucket counts of ``size`` seconds on ``zone``'s clock, brought up to date with
        the documents stored since the last call (:class:`~tunesmith_finance.live_counts.
        LiveCounts`; the whole history at the first, summed from the alert checks' buckets
        on the same clock when they add up to ``size``). The last :data:`LIVE_CACHES` sizes
        and zones asked for are kept."""
        from tunesmith_finance.live_counts import LiveCounts, divides
        from tunesmith_finance.trends import zone_name

        name = (float(size), zone_name(zone))
        checks = self.checks_size()
        source = None
        if float(size) != checks and divides(checks, float(size)):
            # The first chart read the whole history once per bucket size (a week, then a day:
            # 12 s at a million documents); the hours the checks hold add up to both.
            source = functools.partial(self.live_counts, checks, zone)
        with self._live_lock:
            live = self._live.pop(name, None) or LiveCounts(self._db, size, zone, source)
            self._live[name] = live  # the most recent last
            while len(self._live) > LIVE_CACHES:
                self._live.pop(next(iter(self._live)))
        live.update()
        return live

    def _monitor(self) -> None:
        """Run the detector whenever other writers add documents to the database."""
        while True:
            self._follow_recorded_model()
            self.check_alerts()
            time.sleep(REFRESH_SECONDS * 2)

    def _follow_recorded_model(self) -> None:
        """An empty database's page, once `finance ingest` filled it: load the model it
        recorded, before the first alert check explains anything with it."""
        if self.model_origin != "waiting":
            return
        from tunesmith_finance.scoring import SentimentModel
        from tunesmith_finance.storage import get_meta

        recorded = get_meta(self._db, "model")
        if not recorded:
            return
        if not (Path(recorded) / "config.json").exists():
            # As `finance alerts` does then: its alerts carry no words (said in the status).
            self.model_origin = f"gone:{recorded}"
            return
        self.status = "Loading the model `finance ingest` scored the database with..."
        self._model = SentimentModel.load(Path(recorded))
        self.model_dir, self.model_origin = Path(recorded), "recorded"

    def check_alerts(self) -> None:
        """Detect and store the alerts of new documents, per topic and per ticker (the page
        charts either).

        A failed check (the database locked by another process's long write) is said in the
        status and done again at the next one: raised, it ended the monitor for good, and the
        page said "Set-up failed" about a set-up that had worked."""
        from tunesmith_finance.alerts import AlertOptions, run_alerts, stored_window_ends

        try:
            live = self.live_counts(self.checks_size(), self.zone)
            mark = live.mark()
            if mark != self._last_mark:
                # One prior for both groups, from the counts detected over: what a full
                # `finance alerts` reads
                detector = self.detector(live)
                for by in GROUPS:
                    # Only the keys with a window that may alert beyond the stored alerts'
                    # cool-downs: the detector finds nothing in the others
                    quiet = stored_window_ends(self._db, detector, by)
                    run_alerts(
                        self._db,
                        detector=detector,
                        options=AlertOptions(by=by, tz=self.tz),
                        model=self._model,
                        counts=live.rows(by, live.could_alert(by, detector, quiet)),
                    )
                self._last_mark = mark  # only once checked: a failed check is redone
            self.status = "Ready."
        except Exception as exc:
            from tunesmith.errors import TunesmithError

            if not isinstance(exc, TunesmithError):
                # Not a user's or a store's trouble but a bug: its traceback on the server's
                # terminal, once per change of message, where it can be reported.
                if str(exc) != self._last_failure:
                    traceback.print_exc()
                self._last_failure = str(exc)
            self.status = (
                f"Ready, but the alert check failed ({type(exc).__name__}: {_plain(exc)}); "
                "it is tried again in a few seconds."
            )

    # -- views ----------------------------------------------------------------------------------

    def score(self, text: str) -> tuple[dict[str, float], Any, str]:
        """Probabilities, highlighted words and a one-line note for a pasted text."""
        from tunesmith.data.limits import text_problem
        from tunesmith.explain.attribute import explain_loaded
        from tunesmith.ui.highlight import explanation_to_highlights, words_summary
        from tunesmith_finance.documents import DEFAULT_MAX_CHARS

        if not text or not text.strip():
            raise ValueError("Paste a headline or a sentence to score.")
        if self._model is None:
            raise ValueError(self._no_model())
        cut = ""
        if len(text) > DEFAULT_MAX_CHARS:
            # As `finance ingest` does by default (--max-chars): a pasted book would otherwise
            # be drawn word by word, thousands of them, with nothing said.
            cut = (
                f" The text had {len(text):,} characters; only the first "
                f"{DEFAULT_MAX_CHARS:,} were scored, as `finance ingest` does."
            )
            text = text[:DEFAULT_MAX_CHARS]
        problem = text_problem(text)  # a lone surrogate: the tokenizer's TypeError otherwise
        if problem is not None:
            raise ValueError(f"The text cannot be scored: {problem}.")
        score = self._model.score([text])[0]
        target = self._model.model_label(score.label)  # the label shown, not the transformer's
        explanation = explain_loaded(
            self._model.loaded, [text], target=target, members=self._model.members
        )[0]
        extra = self.topic_model.topics([text])[0] if self.topic_model is not None else []
        found = self.rules.assign(text, topic=extra)
        keys = ", ".join(found.topics + ["$" + t for t in found.tickers]) or "none"
        named = _plain(self.rules_path.name)
        if self.topic_model is not None:
            named += f" and {_plain(self.topic_model.path.name)}"
        highlights = explanation_to_highlights(explanation)
        # The colours in words: "Why" alone said nothing to a screen reader.
        said = words_summary(highlights)
        note = (
            f"Score **{score.score:+.3f}** (P(positive) − P(negative)); predicted "
            f"**{score.label}**. Topics and tickers ({named}): {keys}. "
            "Highlighted words pushed towards "
            "the predicted label (positive) or away from it (negative)."
            + (f" {said}" if said else "")
            + cut
        )
        probs = {
            "negative": score.p_negative,
            "neutral": score.p_neutral,
            "positive": score.p_positive,
        }
        return probs, highlights, note

    def _no_model(self) -> str:
        """Why there is no model to score a text with, and what gives one."""
        if self.model_origin == "waiting":
            return (
                "No model yet: the database has no documents. Texts are scored with the model "
                "`finance ingest` records when it fills it (or start the page with --model)."
            )
        if self.model_origin.startswith("gone:") and self._db is not None:
            gone = self.model_origin.removeprefix("gone:")
            return (
                f"The model the database was scored with ({gone}) is gone; start the page with "
                "--model to score texts and explain alerts."
            )
        return "The model is not ready yet; start the sample set-up first."

    def signature(self, by: str, bucket: str, key: str, tz: str | None = None) -> tuple[Any, ...]:
        """What the page shows depends on: status, selection, document and alert counts, the
        newest document.

        Cheap (two counts and the last rowid), so each page's timer can ask every two seconds
        and redraw only when it changed."""
        from tunesmith_finance.storage import count_documents

        seen: tuple[Any, ...] = (self.status, by, bucket, key, tz)
        if self._db is not None:
            alerts = self._db.query("SELECT COUNT(*) AS n FROM finance_alerts")[0]["n"]
            # The newest document too: a prune of as many documents as arrived kept the count.
            newest = self._db.query("SELECT id FROM finance_documents ORDER BY rowid DESC LIMIT 1")
            seen += (count_documents(self._db), alerts, newest[0]["id"] if newest else None)
            # The marks and mutes too: an alert acknowledged here or by `finance alerts --ack`
            # in a terminal kept its old state in the table until a document arrived.
            triaged = self._db.query(
                "SELECT (SELECT MAX(id) FROM finance_alert_marks) AS marks, "
                "(SELECT COUNT(*) || ':' || TOTAL(until) FROM finance_mutes) AS mutes"
            )[0]
            seen += (triaged["marks"], triaged["mutes"])
        return seen

    def checks_bucket(self) -> str:
        """The bucket of the page's alert checks, as `finance alerts --bucket` writes it."""
        from tunesmith_finance.trends import duration_text

        return duration_text(self.checks_size())

    def bucket_choices(self) -> list[str]:
        """The Bucket box: :data:`AUTO`, then :data:`BUCKETS` with the alert checks' bucket
        among them by size (a `--bucket 2h` page could not chart its own buckets by hand)."""
        from tunesmith_finance.trends import parse_duration

        sizes = dict.fromkeys([*BUCKETS, self.checks_bucket()])
        return [AUTO, *sorted(sizes, key=parse_duration)]

    def snapshot(self, by: str, bucket: str, key: str, tz: str | None = None) -> dict[str, Any]:
        """Status, chart, alert table and alert details for the current selection; ``key`` is
        the key the chart shows: the one asked for, or "top 6" when it is not a key of ``by``
        (a topic left selected after switching to tickers); ``choices``: the key box's
        ``(label, key)`` pairs, each label with the key's document count. ``bucket``:
        :data:`AUTO` (or empty) picks one that gives the keys charted enough documents per
        bucket (:func:`auto_bucket`), and the status and the chart's title say which;
        ``bucket`` in the result is the one drawn.
        ``tz``: the zone the buckets are cut in and the times shown in (default the
        dashboard's); ``zone`` is the one used (the dashboard's, and the status says so, when
        ``tz`` is no known zone). With no documents of ``by``, the chart is a message, not an
        empty axis. ``chart_words``: the chart's text equivalent (Markdown, :func:`chart_words`;
        the message when there is no row); ``chart_name``: its image's alt text."""
        from tunesmith.errors import UserInputError
        from tunesmith.ui.markdown import code_span
        from tunesmith_finance.alerts import list_alerts
        from tunesmith_finance.demo_triage import alert_choices, mutes_line
        from tunesmith_finance.documents import resolve_zone
        from tunesmith_finance.storage import count_documents
        from tunesmith_finance.trends import (
            describe,
            parse_duration,
            plot,
            stored_key,
            top_keys,
            trend_rows,
            zone_name,
        )

        zone, unknown = self.zone, ""
        if tz and tz.strip():
            try:
                zone = resolve_zone(tz.strip(), "Time zone")
            except UserInputError as exc:
                unknown = f" {_plain(exc)}; shown in {_plain(self.tz)}."
        shown = zone_name(zone)
        if self._db is None:
            return {
                "status": self.status + unknown,
                "figure": None,
                "rows": [],
                "details": "",
                "keys": [],
                "choices": [],
                "key": TOP,
                "zone": shown,
                "bucket": bucket,
                "chart_words": "",
                "chart_name": "",
                "said": None,  # no alerts to speak of before the set-up
                "alert_choices": [],
            }
        count = count_documents(self._db)
        automatic = not bucket or bucket == AUTO

        def rows_for(size: str, only: set[str] | None = None) -> list[Any]:
            # Cut on the zone's wall clock, as `finance trends --tz` cuts them: in UTC, a 1d
            # bucket of a New York desk ran from 7 or 8 pm to 7 or 8 pm. From the held counts:
            # `trends` read the whole history again at every refresh.
            seconds = parse_duration(size)
            held = self.live_counts(seconds, zone).rows(by, only)
            return trend_rows(held, seconds, zone)

        # With "auto", the keys are chosen first (which keys and how many documents each has
        # does not depend on the bucket), then the bucket for them.
        rows = rows_for(BUCKETS[-1] if automatic else bucket)
        alerts = [a for a in list_alerts(self._db, tz=shown) if a["kind"] == by]
        # The alerted keys first, in the box and in the top-six chart: a surge on a small topic
        # or ticker (a few documents a day among hundreds of cashtags) was counted in the status
        # and listed below, but neither listed in the box nor drawn. Only alerts still in hand
        # (open or acknowledged): on a desk's 500 tickers the months' noise and muted alerts
        # took every place of the chart from the biggest names.
        stored = {r.key for r in rows}
        alerted = list(
            dict.fromkeys(a["key"] for a in alerts if a["key"] in stored and a["state"] in IN_HAND)
        )
        keys = list(dict.fromkeys([*alerted, *top_keys(rows, 50)]))
        chosen, missing, shown_key = None, "", TOP
        if key and key.strip() and key != TOP:
            # As `finance trends --key` reads it: "$TSLA" or "tsla" is the ticker TSLA, and any
            # key of the database, not only the 50 the box lists (those fell back to the top 6
            # without a word). A box label copied as typed ("AAPL (312)") is its key too.
            wanted = stored_key(by, key.strip())
            labelled = _LABELLED.match(key.strip())
            if wanted not in stored and labelled:
                wanted = stored_key(by, labelled.group(1))
            if wanted in stored:
                chosen = [wanted]
                shown_key = wanted
                if wanted not in keys:
                    keys.append(wanted)
            elif not any(_is_key(self._db, other, key) for other in GROUPS if other != by):
                # Typed, and no key at all: kept in the box and said. Reset to the top six, the
                # box's change redrew the page at once without the note.
                shown_key = key
                missing = f" No {by} '{_plain(key.strip())}' in this database; showing the {TOP}."
        if chosen is None:
            chosen = list(dict.fromkeys([*alerted, *top_keys(rows, 6)]))[:6]
        # A key's documents are the same in any bucket size: counted now, over every key
        totals: dict[str, int] = {}
        for row in rows:
            totals[row.key] = totals.get(row.key, 0) + row.count
        # From here only the keys charted: the 300 tickers' daily rows made into trend rows
        # were half of a refresh, and the chart and its words draw the chosen keys alone.
        drawn = set(chosen)
        rows = [row for row in rows if row.key in drawn]
        auto = ""
        if automatic:
            span = self._db.query(
                "SELECT MIN(ts) AS first, MAX(ts) AS last FROM finance_documents"
            )[0]
            # The alert checks' bucket first: on other buckets a daily alert's triangle sat on
            # a 3h point, and a surge of three hours was smoothed away in a day.
            checks = self.checks_bucket()
            bucket, rows, enough = auto_bucket(
                (span["last"] or 0) - (span["first"] or 0),
                lambda size: rows_for(size, drawn),
                chosen,
                prefer=checks,
            )
            auto = f" Buckets: {bucket} (auto: " + (
                f"the alert checks' bucket, with at least {MIN_PER_BUCKET} documents in a "
                "typical bucket of each key shown)."
                if enough and bucket == checks
                else f"the smallest with at least {MIN_PER_BUCKET} documents in a typical bucket "
                "of each key shown)."
                if enough
                else f"the largest that still cuts the data's span into {MIN_BUCKETS} or more; "
                f"some key shown has fewer than {MIN_PER_BUCKET} documents in a typical bucket)."
            )
        # The chart code `finance trends --chart` draws with: each alert's triangle on its key's
        # line, and a message in place of an empty (1970) time axis when there is no row.
        title = f"Negative share per {by}, {bucket} buckets{' (auto)' if auto else ''} ({shown})"
        empty = (
            "No documents yet."
            if count == 0
            else f"None of the {count} documents stored has a {by}."
        )
        figure = plot(
            rows,
            alerts=alerts,
            keys=chosen,
            limit=6,
            title=title,
            bucket=parse_duration(bucket),
            zone=zone,
            empty=empty,
        )
        said = describe(rows, alerts=alerts, keys=chosen, limit=6, bucket=parse_duration(bucket))
        table = [
            [
                a["window"],
                a["key"],
                a["n"],
                # In percent, as the details below write them (0.1558 there read "16%").
                round(100 * a["share"], 1),
                round(100 * a["baseline"], 1),
                ", ".join(w["word"] for w in a["words"][:6]),
                _bucket_of(a),
                a["state"],
                a["id"],  # what `finance alerts --ack` takes, and what a row's click chooses
            ]
            for a in alerts
        ]
        details = (
            "\n\n".join(_alert_markdown(a, zone) for a in alerts[:5]) or f"No alerts by {by} yet."
        )
        # Said under the alerts, so that an analyst comparing the page with `finance alerts`
        # knows which settings the page's checks use.
        details += "\n\n" + detector_note(self.detector(), self.tz, given_prior=self.prior)
        details += "\n\n" + mutes_line(self._db)
        status = f"{self.status} {count} documents stored, {len(alerts)} alert(s) by {by}."
        if count == 0 and not self.sample_db:
            fill = code_span(f"tunesmith finance ingest FILE --model M --db {self.db_path}")
            status += f" No documents yet: {fill} (or `finance watch`) fills it; the page follows."
        elif self._model is None:
            status += " " + self._no_model()
        return {
            "status": status + (auto if rows else "") + missing + unknown,
            "figure": figure,
            "rows": table,
            "details": details,
            "keys": keys,
            "choices": [(f"{k} ({totals.get(k, 0):,})", k) for k in keys],
            "key": shown_key,
            "zone": shown,
            "bucket": bucket,
            "chart_words": chart_words(title, said) if rows else _plain(empty),
            "chart_name": f"{title}, in words under the chart;" if rows else empty,
            "said": alerts_status(len(alerts), by),
            "alert_choices": alert_choices(alerts),
        }


def scored_status(note: str) -> str:
    """The live status once a text is scored: "Scored negative (-0.812).", or the refusal in
    the note."""
    found = re.match(r"Score \*\*([+-]\d\.\d+)\*\*.*?predicted \*\*([^*]+)\*\*", note or "")
    return f"Scored {found.group(2)} ({found.group(1)})." if found else note


def alerts_status(count: int, by: str) -> str:
    """What a screen reader hears by itself when the alerts change (the page's live status):
    "3 alerts by topic." It holds no document count, which changes with every refresh while
    documents arrive: the same text is not read again."""
    if count == 0:
        return f"No alerts by {_plain(by)}."
    return f"{count} alert{'' if count == 1 else 's'} by {_plain(by)}."


def chart_words(title: str, sentences: list[str]) -> str:
    """The chart's text equivalent under it, as Markdown: its title, then what it draws
    (:func:`~tunesmith_finance.trends.describe`) as a list."""
    lines = [f"**The chart in words** ({_plain(title)}):", ""]
    return "\n".join(lines + [f"- {_plain(s)}" for s in sentences])


def detector_note(detector: Any, tz: str = "UTC", given_prior: float | None = None) -> str:
    """One paragraph saying how the page finds its alerts: the `finance alerts` command that
    finds the same ones (with the flags `finance demo` was given), and where the baseline
    starts (``given_prior``: its ``--prior``, else the database's negative share now)."""
    from tunesmith.ui.markdown import code_span
    from tunesmith_finance.alerts import duration_text, settings_flags
    from tunesmith_finance.detector import SurgeDetector, min_history_for

    # The flags beyond --bucket that differ from `finance alerts`' defaults for this bucket and
    # window (the half-life and cool-down defaults follow those two).
    usual = SurgeDetector(bucket=detector.bucket, window=detector.window)
    changed = {
        name: getattr(detector, name)
        for name in ("window", "half_life", "min_volume", "min_lift", "p_value", "cooldown")
        if getattr(detector, name) != getattr(SurgeDetector() if name == "window" else usual, name)
    }
    if given_prior is not None:
        changed["prior"] = given_prior
    wait = SurgeDetector(min_history=min_history_for(given_prior)).min_history
    if getattr(detector, "min_history", wait) != wait:  # `finance demo --min-history N`
        changed["min_history"] = detector.min_history
    command = "tunesmith finance alerts --db DB --by topic|ticker " + settings_flags(
        {"bucket": detector.bucket, **changed}
    )
    if tz != "UTC":
        command += f" --tz {tz}"
    start = (
        f"`--prior` ({detector.prior:.1%})"
        if given_prior is not None
        else f"the database's negative share ({detector.prior:.1%} now)"
    )
    return (
        f"*Alerts are checked whenever documents arrive, as {code_span(command)} finds them "
        f"with its other defaults: a window of "
        f"{detector.window} buckets, at least {detector.min_volume} documents, a share "
        f"{100 * detector.min_lift:g} points above the baseline, p < {detector.p_value:g}, a "
        f"half-life of {duration_text(detector.half_life)}, a cool-down of "
        f"{duration_text(detector.cooldown)}; the baseline starts from {start}.*"
    )


#: A key box label as the page writes it, "AAPL (1,312)": group 1 is the key.
_LABELLED = re.compile(r"^(.+?) \([\d,]+\)$")


def _example_time(value: Any, zone: Any) -> str:
    """A stored example's time (UTC) in the page's zone, as the window above it is written;
    a value that is no time is shown as stored."""
    from tunesmith.errors import TunesmithError
    from tunesmith_finance.documents import parse_time
    from tunesmith_finance.trends import iso

    try:
        return iso(parse_time(value).timestamp(), zone)
    except (TunesmithError, ValueError, TypeError):  # shown as stored, not a failed redraw
        return str(value)


def _short(text: str, limit: int = EXAMPLE_CHARS) -> str:
    """``text`` on one line, cut at ``limit`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _is_key(db: Any, by: str, key: str) -> bool:
    """True when ``key`` is a stored key of the kind ``by`` (``topic`` or ``ticker``)."""
    from tunesmith_finance.trends import stored_key

    found = db.query(
        "SELECT 1 FROM finance_keys WHERE kind = ? AND key = ? LIMIT 1",
        [by, stored_key(by, key.strip())],
    )
    return bool(found)


def found_with(alert: dict[str, Any]) -> str:
    """The detector settings a stored alert was found with, as `finance alerts` flags: alerts
    of the page's checks and of command-line runs with other settings share one list."""
    from tunesmith.ui.markdown import code_span
    from tunesmith_finance.alerts import settings_flags

    flags = settings_flags(alert.get("settings"))
    return code_span(flags) if flags else "settings not recorded (an alert stored before)"


def _bucket_of(alert: dict[str, Any]) -> str:
    """The bucket an alert was found with (the table's column), "" when not recorded."""
    from tunesmith_finance.alerts import duration_text

    settings = alert.get("settings") or {}
    return duration_text(settings["bucket"]) if settings.get("bucket") else ""


def state_sentence(alert: dict[str, Any]) -> str:
    """An alert's triage state in words: "Open.", "Noise, marked by ana at T: note.", "Muted
    (by ana until T), not sent." (`finance alerts --ack`, `--noise`, `--mute`)."""
    mark, mute = alert.get("triage"), alert.get("muted")
    if mark:
        note = f": {_plain(mark['note'])}" if mark.get("note") else ""
        return (
            f"{alert['state'].capitalize()}, marked by {_plain(mark['by'])} at {mark['at']}{note}."
        )
    if mute:
        return f"Muted (by {_plain(mute['who'])} until {mute['to']}), not sent."
    return "Open."


def _alert_markdown(alert: dict[str, Any], zone: Any = None) -> str:
    """One alert's details; example times in ``zone`` (default: as stored, UTC)."""
    from tunesmith.ui.markdown import code_span

    words = ", ".join(f"**{_plain(w['word'])}**" for w in alert["words"][:8]) or "(no explanation)"
    lines = [
        f"#### {_plain(alert['kind'])} {_plain(alert['key'])}: {alert['negatives']}/{alert['n']} "
        f"negative ({alert['share']:.0%}, baseline {alert['baseline']:.0%})",
        f"Window {_plain(alert['window'])}. Words behind the negative scores: {words}.",
        f"Found with {found_with(alert)}.",
        state_sentence(alert) + (f" Id {code_span(alert['id'])}." if alert.get("id") else ""),
    ]
    if alert["examples"]:
        lines.append("\nExamples (score = P(positive) − P(negative), time, text):\n")
    lines += [
        f"- {e['score']:+.2f} · {_plain(_example_time(e['time'], zone))} · "
        f"{_plain(_short(e['text']))}"
        for e in alert["examples"]
    ]
    return "\n".join(lines)


def score_text(board: Dashboard, text: str) -> tuple[Any, Any, str]:
    """The Score button: ``(probabilities, highlighted words, note)``. An empty text or a model
    not ready yet is said in the note (and a toast), with the last result cleared: raising
    ``gr.Error`` would print a traceback in the terminal and leave a red "Error" in both panels."""
    from tunesmith.errors import TunesmithError
    from tunesmith.ui.markdown import refused

    try:
        return board.score(text)
    except (ValueError, TunesmithError) as exc:
        return None, None, refused(exc, "Not scored")


def score_view(board: Dashboard, text: str) -> tuple[str, Any, str]:
    """What the Score button shows: :func:`score_text` with its probabilities as the
    playground's table (column headers, percents, bars hidden from screen readers)."""
    from tunesmith.ui.core_demos import Classified, scores_html

    probabilities, words, note = score_text(board, text)
    if probabilities is None:
        return "", words, note
    return scores_html(Classified(probabilities, words, note, "classification")), words, note


def named_plot(chart: Any, figure: Any, name: str) -> Any:
    """``figure`` as ``chart`` (a ``gr.Plot``) sends it, with ``name`` as its image's alt text:
    Gradio's own read "undefined plot visualising provided data" (it writes ``chart`` before
    "plot visualising provided data", and a matplotlib figure has none). Closes the figure."""
    if figure is None:
        return None
    data = chart.postprocess(figure)  # closes it: pyplot's registry stays small
    return _named_plot_data()(type=data.type, plot=data.plot, chart=name)


@functools.cache
def _named_plot_data() -> type:
    """Gradio's plot payload with the ``chart`` field its page writes into the alt text."""
    from gradio.components.plot import PlotData

    class NamedPlotData(PlotData):
        chart: str

    return NamedPlotData


def alert_headers(zone: str) -> list[str]:
    """The alert table's column names; the windows are in ``zone``."""
    return [
        f"window ({zone})",
        "key",
        "documents",
        "negative share (%)",
        "baseline (%)",
        "words",
        "bucket",
        "state",
        "id",
    ]


def build_demo(
    model: str | None = None,
    db: str | None = None,
    autostart: bool | None = None,
    rules: str | None = None,
    tz: str = "UTC",
    topic_model: str | None = None,
    topic_threshold: float = 0.5,
    detector_settings: dict[str, Any] | None = None,
    prior: float | None = None,
) -> Any:
    """The Gradio Blocks of the dashboard (gradio imported here, when the UI starts);
    ``rules``: the topic and ticker rules of scored texts (default: the sample's); ``tz``: the
    zone whose wall clock cuts the buckets (see :class:`Dashboard`), the page's first choice;
    ``topic_model``: the topic classifier whose topics a scored text is shown with, beside the
    rules' (``--topic-model``); ``detector_settings`` and ``prior``: the alert checks'
    settings, `finance alerts`' flags (see :class:`Dashboard`)."""
    import gradio as gr

    from tunesmith.ui.a11y import live_status
    from tunesmith.ui.highlight import highlight_component
    from tunesmith.ui.textbox import text_box
    from tunesmith_finance.demo_triage import picked, triage_panel

    board = Dashboard(
        model,
        db,
        rules,
        tz=tz,
        topic_model=topic_model,
        topic_threshold=topic_threshold,
        detector_settings=detector_settings,
        prior=prior,
    )
    with gr.Blocks() as blocks:
        markdown_box(board.intro)
        with gr.Row():
            start = gr.Button(board.start_label, variant="secondary")
            status = markdown_box(board.status)
        # Heard by itself: the alerts when they change ("3 alerts by topic."), a scored text.
        live = live_status("finance-status")
        with gr.Tab("Trends and alerts"):
            with gr.Row():
                by = gr.Dropdown(list(GROUPS), value="topic", label="Group by")
                # "auto" picks the size that gives the keys charted enough documents per
                # bucket (the page says which); a size the user picks stays until they pick
                # another.
                bucket = gr.Dropdown(board.bucket_choices(), value=AUTO, label="Bucket")
                key = gr.Dropdown(
                    [TOP], value=TOP, label="Topic or ticker", allow_custom_value=True
                )
                zone = gr.Dropdown(
                    list(dict.fromkeys([board.tz, *ZONES])),
                    value=board.tz,
                    label="Time zone (buckets and times)",
                    allow_custom_value=True,  # any IANA name
                )
            # The chart draws the interval band for one chosen key only (six bands hid the lines).
            chart_label = (
                "Negative share (95% band for one chosen key); alerts as red marks on the "
                "bucket their window ends in: filled triangles those found with the chart's "
                "bucket, hollow marks those of other buckets (the legend says which)"
            )
            # Said above the chart, its label badge hidden: the badge sat over the left end of
            # the chart's own title.
            markdown_box(chart_label + ".")
            chart = gr.Plot(label=chart_label, show_label=False)
            # The chart in words (its keys, their latest share, the alerts marked): an image
            # says nothing to a screen reader, and its legend was unreadable at 200 % zoom.
            chart_text = markdown_box(elem_id="finance-chart-words")
            table = gr.Dataframe(
                headers=alert_headers(board.tz),
                label="Alerts",
                interactive=False,
                elem_id="finance-alerts",
            )
            details = markdown_box()
            # Acknowledge, mark as noise, reopen, mute: `finance alerts --ack ...` on the page
            triage = triage_panel(board)
        with gr.Tab("Score a text"):
            # Enter scores, as in the other demos' boxes; Shift+Enter breaks a line.
            text = text_box(
                "Headline or sentence", placeholder="Helix Bank shares plunge on deposit worries"
            )
            go = gr.Button("Score", variant="primary")
            note = markdown_box()
            # The playground's table, not gr.Label: its rows were three buttons that did
            # nothing (three more Tab stops) and read bare meter values.
            probabilities = gr.HTML(label="Probabilities", show_label=True, container=True)
            words = highlight_component(label="Why")

        def refresh(
            by_value: str,
            bucket_value: str,
            key_value: str,
            zone_value: str,
            pick_value: Any,
            shown: Any,
        ) -> tuple[Any, ...]:
            seen = list(board.signature(by_value, bucket_value, key_value, zone_value))
            # per page (gr.State), so every open page gets its own redraw; its last item is
            # what the live status last said of the alerts
            if shown is not None and shown[:-1] == seen:
                return (gr.skip(),) * 9
            view = board.snapshot(by_value, bucket_value, key_value, zone_value)
            choices = view["alert_choices"]
            return (
                view["status"],
                named_plot(chart, view["figure"], view["chart_name"]),
                {"data": view["rows"], "headers": alert_headers(view["zone"])},
                view["details"],
                # The key the chart shows: a topic left selected after switching to tickers
                # would otherwise stay in the box over a chart of the top six tickers.
                # Labelled with their document counts ("AAPL (312)"); the value stays the key.
                gr.update(choices=[TOP, *view["choices"]], value=view["key"]),
                [*seen, view["said"]],
                view["chart_words"],
                # The table's alerts to triage, the one chosen kept while listed
                # (a value is sent only to clear one gone: a timer's redraw that read none
                # chosen cleared the alert the analyst was choosing at that moment)
                gr.update(choices=choices)
                if pick_value is None or picked(pick_value, choices)
                else gr.update(choices=choices, value=None),
                # Unmarked (not live.said), and only when it says something new: read when
                # the alerts change, not at every refresh while documents arrive, nor again
                # after a triage result (an alert acknowledged redraws the table).
                view["said"]
                if view["said"] and view["said"] != (shown or [None])[-1]
                else gr.skip(),
            )

        def on_start() -> tuple[str, None]:
            # The status shown changes here, not through the timer: forget what the timer drew,
            # or a set-up that fails again (the same status as before) would never be redrawn.
            return board.start(), None

        shown = gr.State(None)
        # The chart's words, then the live status, last: the handler's first six outputs are
        # older than them.
        outputs = [status, chart, table, details, key, shown, chart_text, triage.pick, live.text]
        start.click(on_start, outputs=[status, shown])
        for event in (go.click, text.submit):  # Enter in the text box too
            scored = event(
                lambda value: score_view(board, value),
                inputs=text,
                outputs=[probabilities, words, note],
            )
            live.announce(scored, scored_status, [note])
        inputs = [by, bucket, key, zone, triage.pick, shown]
        for control in (by, bucket, key, zone):
            control.change(refresh, inputs=inputs, outputs=outputs)

        def redraw_quietly(*values: Any) -> tuple[Any, ...]:
            # After a triage action: its own result is what the live status says next.
            return refresh(*values)[:-1]

        triage.wire(
            table,
            live,
            lambda event: event.then(
                redraw_quietly, inputs=inputs, outputs=outputs[:-1], show_progress="hidden"
            ),
        )
        gr.Timer(REFRESH_SECONDS).tick(refresh, inputs=inputs, outputs=outputs)
        if autostart if autostart is not None else board.should_autostart():
            blocks.load(on_start, outputs=[status, shown])
    return blocks
