"""``tunesmith finance``: train, score, ingest, watch, trends, alerts, replay, demo.

Heavy libraries are imported inside the commands, so ``tunesmith --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="Financial news sentiment: score a stream, store it, follow trends per topic and "
    "ticker, alert on negative surges and explain them.",
    no_args_is_help=True,
)

MODEL_HELP = "Sentiment model directory (from `tunesmith finance train`)."
DB_HELP = "The finance database (SQLite; created when missing)."
#: trends and alerts refuse a missing database rather than create an empty one.
READ_DB_HELP = "The finance database (SQLite) that `finance ingest` filled."
RULES_HELP = "Topic and ticker rules (.toml or .json): keywords, cashtags, aliases, regexes."
NAIVE_TZ = typer.Option("UTC", "--naive-tz", help="Zone of times without one.")
#: ingest.DEFAULT_BATCH (not imported here: the CLI starts without the ingest module).
DEFAULT_BATCH = 1024
BATCH_SIZE = typer.Option(
    DEFAULT_BATCH,
    "--batch-size",
    min=1,
    help="Documents scored together and stored in one transaction.",
)
TOPIC_MODEL = typer.Option(
    None,
    "--topic-model",
    help="A topic classifier (`finance train --topics`); its labels become topics beside the "
    "rules'.",
)
TOPIC_THRESHOLD = typer.Option(
    0.5,
    "--topic-threshold",
    min=0.0,
    max=1.0,
    help="Least probability of a --topic-model label to become a topic (0 to 1).",
)

# The surge detector's settings, the same flags for alerts, watch --alerts and replay.
BY = typer.Option("topic", "--by", help="topic | ticker | all.")
BUCKET = typer.Option(
    "1h", "--bucket", help="Step of the rolling window: 15m, 1h, 1d, 1w (from Monday), ..."
)
WINDOW = typer.Option(3, "--window", help="Window length in buckets.")
HALF_LIFE = typer.Option(
    None,
    "--half-life",
    help="Half-life of the EWMA baseline (default: 24 buckets, 24h with --bucket 1h, 24d with 1d).",
)
MIN_VOLUME = typer.Option(8, "--min-volume", help="Fewest documents in a window.")
MIN_LIFT = typer.Option(0.15, "--min-lift", help="Least share above the baseline.")
P_VALUE = typer.Option(0.001, "--p-value", help="One-sided binomial test level.")
COOLDOWN = typer.Option(
    None,
    "--cooldown",
    help="Quiet time per key after an alert (default: the window's length, at least 6h).",
)
TZ_HELP = (
    "Time zone whose wall clock cuts the buckets (IANA name: UTC, America/New_York, ...); a 1d "
    "bucket is a local day"
)
TZ = typer.Option("UTC", "--tz", help=TZ_HELP + ".")
STORED_PRIOR = typer.Option(
    None,
    "--prior",
    min=0.0,
    max=1.0,
    help="Starting baseline rate (default: the stored negative share).",
)


#: Said when alerts were found by a run without --sink: they stay pending, not lost.
_NOT_SENT = (
    "{n} alert(s) stored and not sent (no --sink); the next `finance alerts` or "
    "`finance watch --alerts` with a --sink sends them"
)


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _err(message: str) -> None:
    from tunesmith.data.limits import printable

    # Lines quote headlines, topics and tickers of a feed: its escape sequences are shown, not
    # sent to the terminal.
    typer.echo(printable(message), err=True)


def _out(line: str) -> None:
    """A line of a human-readable result on stdout, control characters escaped (see _err)."""
    from tunesmith.data.limits import printable

    typer.echo(printable(line))


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        _echo_json(report.to_dict())
        return
    _err(report.summary())
    for issue in report.issues:
        if issue.kind != "changed_text":  # ingest warned about it when it happened
            _err(f"  {issue}")
    hidden = report.skipped + report.changed + report.truncated + report.unknown_topics
    if hidden > len(report.issues):
        _err(f"  ... {hidden - len(report.issues)} more (all are stored in finance_issues)")


def _check_inputs(files: list[str]) -> None:
    """Refuse a missing, empty or unsupported input file before the model loads."""
    from tunesmith_finance.sources import check_file

    for name in files:
        if name != "-":
            check_file(name)


def _sinks(sink: list[str] | None) -> list[Any]:
    """The ``--sink`` URLs as sinks, refused at once when a scheme is unknown."""
    from tunesmith_finance.alerts import resolve_sinks

    return resolve_sinks(list(sink or []))


def _discard_if_empty(store: Any, path: Path) -> None:
    """Remove a database this run created when it failed before storing any document (an empty
    standard input, a file without a text column): an empty file would look like a result."""
    from tunesmith_finance.storage import count_documents

    if count_documents(store) != 0:
        return
    store.close()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _ingester(
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
) -> Any:
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
    sentiment = DeferredModel(model, quantize=quantize)
    topics = DeferredTopicModel(topic_model, threshold=topic_threshold) if topic_model else None
    db = open_store(db_path, timeout=timeout)
    return Ingester(
        db,
        sentiment,
        loaded_rules,
        batch_size=batch_size,
        max_chars=max_chars,
        naive_tz=zone,
        topic_model=topics,
        warn=_err,
    )


@app.command("train")
def train_command(
    data: Path = typer.Option(..., "--data", help="Labelled finance text (.csv/.jsonl/.parquet)."),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    eval_data: Path | None = typer.Option(None, "--eval", help="Labelled evaluation file."),
    model: str = typer.Option(
        "default",
        "--model",
        "-m",
        help="Base model: 'default', a local directory or a hub id (with --allow-network).",
    ),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the text."),
    label_col: str = typer.Option("label", "--label-col", help="Column holding the label."),
    strategy: str = typer.Option(
        "full", "--strategy", help="full | freeze:K | head | lora (see `tunesmith train`)."
    ),
    epochs: float | None = typer.Option(None, "--epochs", help="Epochs (default: from the data)."),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate (default: from the model)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Training batch size."),
    max_length: int | None = typer.Option(
        None, "--max-length", help="Max tokens per text (default: 99th percentile of the data)."
    ),
    seed: int = typer.Option(42, "--seed", help="Random seed (of the first member)."),
    members: int = typer.Option(
        1,
        "--members",
        help="Train N models with seeds seed..seed+N-1 and average their probabilities "
        "(an ensemble: scoring costs N times as much).",
    ),
    head_init: str = typer.Option(
        "auto",
        "--head-init",
        help="auto | probe | random: the classifier head's start (engine --head-init). On the "
        "finance tweets' valid split a random head scored about 1.3 points higher with a "
        "worse-calibrated confidence, while a held-out slice of train preferred the probe "
        "start (docs/finance.md).",
    ),
    lexical: float | None = typer.Option(
        None,
        "--lexical",
        help="Share of a TF-IDF n-gram regression in the probabilities (engine --lexical; "
        "default 0.3 for sentiment, chosen on a held-out slice of the finance tweets' train "
        "split, and 0 for --topics; 0 is off).",
    ),
    topics: bool = typer.Option(
        False,
        "--topics",
        help="Train a topic classifier (any labels) instead of a sentiment model; use it with "
        "`ingest --topic-model`. Several topics per text (a list in JSONL/JSON/Parquet, or a "
        "cell split with --label-sep) train a multi-label one.",
    ),
    label_sep: str | None = typer.Option(
        None,
        "--label-sep",
        help="With --topics: the separator of several topics in one label cell (e.g. '|').",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    allow_network: bool = typer.Option(
        False, "--allow-network", help="Allow downloading a hub --model (off by default)."
    ),
) -> None:
    """Fine-tune a sentiment classifier (negative / neutral / positive) on your finance text.

    Runs the core engine (`tunesmith train`) with its defaults, except that full fine-tuning on
    2,000 or more texts runs 6 epochs (the engine would choose 4 or 6); the labels must include
    negative and positive (neutral optional) unless --topics is given. --members N trains an
    ensemble (docs/finance.md).
    """
    from tunesmith.data.load import load_text_dataset
    from tunesmith.errors import UserInputError
    from tunesmith_finance.scoring import sentiment_indices
    from tunesmith_finance.training import LEXICAL_SHARE, SentimentRecipe, train_sentiment

    if topics and members > 1:
        raise UserInputError("--members applies to sentiment models, not --topics")
    if label_sep is not None and not topics:
        raise UserInputError("--label-sep goes with --topics: a sentiment model takes one label")
    if topics:
        _train_topics(
            data,
            out,
            eval_data=eval_data,
            model=model,
            text_col=text_col,
            label_col=label_col,
            label_sep=label_sep,
            strategy=strategy,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            max_length=max_length,
            seed=seed,
            lexical=lexical,
            head_init=head_init,
            force=force,
            allow_network=allow_network,
        )
        return
    dataset = load_text_dataset(data, text_col=text_col, label_col=label_col)
    if dataset.multilabel:
        # The engine's message would point to `--task multilabel`, which this command has
        # not: several labels per text are topics.
        raise UserInputError(
            f"{data}, column '{label_col}': lists of labels; a sentiment model takes one "
            "label per text (several topics per text train a topic model: add --topics)"
        )
    sentiment_indices(dataset.label_names, str(data))
    recipe = SentimentRecipe(
        strategy=strategy,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        members=members,
        lexical=lexical if lexical is not None else LEXICAL_SHARE,
        extra={"head_init": head_init} if head_init != "auto" else {},
    )
    path = train_sentiment(
        data,
        out,
        recipe,
        eval_data=eval_data,
        model=model,
        text_col=text_col,
        label_col=label_col,
        force=force,
        allow_network=allow_network,
        n_rows=len(dataset.texts),
    )
    typer.echo(str(path))


def _train_topics(
    data: Path,
    out: Path,
    *,
    eval_data: Path | None,
    model: str,
    text_col: str,
    label_col: str,
    label_sep: str | None,
    head_init: str,
    lexical: float | None,
    force: bool,
    allow_network: bool,
    **recipe: Any,
) -> None:
    """`finance train --topics`: rows without a topic train "none of these" (topic_data)."""
    from tunesmith_finance.topic_data import topic_training_files
    from tunesmith_finance.training import SentimentRecipe, train_sentiment

    with topic_training_files(
        data, eval_data, text_col=text_col, label_col=label_col, label_sep=label_sep
    ) as files:
        if files.without_topic:
            _err(f"{files.without_topic} row(s) without a topic: they train 'none of these'")
        else:
            _err(
                "every row has a topic, so the model will give every document one of them "
                "(above --topic-threshold); rows with an empty topic teach it 'none of these'"
            )
        path = train_sentiment(
            files.data,
            out,
            SentimentRecipe(
                lexical=lexical if lexical is not None else 0.0,
                extra={"head_init": head_init} if head_init != "auto" else {},
                **recipe,
            ),
            eval_data=files.eval_data,
            model=model,
            text_col=files.text_col,
            label_col=files.label_col,
            task="multilabel" if files.multilabel else "classification",
            label_sep=files.label_sep,
            force=force,
            allow_network=allow_network,
            n_rows=files.rows,
        )
    typer.echo(str(path))


@app.command("score")
def score_command(
    model: Path = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    text: list[str] | None = typer.Option(None, "--text", help="A text to score; repeatable."),
    file: Path | None = typer.Option(
        None,
        "--data",
        "--file",
        help="A file of texts: its text column (or headline, or title, as ingest reads).",
    ),
    rules: Path | None = typer.Option(None, "--rules", help=RULES_HELP),
    explain: bool = typer.Option(False, "--explain", help="Add the words behind each label."),
    quantize: str | None = typer.Option(None, "--quantize", help="'int8' for a faster model."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines, one per text."),
) -> None:
    """Score texts: P(positive) − P(negative), the label, topics and tickers."""
    from tunesmith.errors import UserInputError
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.scoring import SentimentModel

    if (file is None) == (not text):
        raise UserInputError("pass either --text TEXT (repeatable) or --data FILE")
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
    sentiment = SentimentModel.load(model, quantize=quantize)
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
            _out(
                f"{score.score:+.3f}  {score.label:<8}  {body[:70]}"
                f"  [{', '.join(assignment.topics + ['$' + t for t in assignment.tickers])}]{extra}"
            )


@app.command("ingest")
def ingest_command(
    files: list[str] = typer.Argument(..., help="JSONL or CSV files; '-' reads standard input."),
    model: Path = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    rules: Path | None = typer.Option(None, "--rules", help=RULES_HELP),
    fmt: str = typer.Option("jsonl", "--format", help="Format of standard input: jsonl | csv."),
    batch_size: int = BATCH_SIZE,
    max_chars: int = typer.Option(
        5000, "--max-chars", min=1, help="Longer texts are cut (counted)."
    ),
    naive_tz: str = NAIVE_TZ,
    quantize: str | None = typer.Option(None, "--quantize", help="'int8' for faster scoring."),
    topic_model: Path | None = TOPIC_MODEL,
    topic_threshold: float = TOPIC_THRESHOLD,
    timeout: float = typer.Option(
        5.0, "--timeout", min=0.0, help="Seconds to wait for a locked database."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Score documents in batches and store them; safe to run again and to kill.

    Each document needs a time and a text (id, source, topic and tickers optional). A file is
    resumed where its last committed batch ended; a known id adds nothing (the first stored
    text stays). Skipped rows are reported with file and line, and make the exit status 2
    (the other rows are stored).
    """
    from tunesmith.errors import DataError
    from tunesmith_finance.ingest import Report

    _check_inputs(files)
    created = not db.exists()
    ingester = _ingester(
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
    )
    total = Report()
    try:
        for name in files:
            if name == "-":
                report = ingester.ingest_stream(sys.stdin.buffer, fmt=fmt)
            else:
                report = ingester.ingest_file(name)
            total.merge(report)
    except BaseException:
        if created:
            _discard_if_empty(ingester.db, db)
        raise
    finally:
        ingester.db.close()
    _print_report(total, as_json)
    if total.skipped:
        # The readable rows are stored; a script still has to notice the ones that were not.
        where = "in the JSON report's issues" if as_json else "above"
        raise DataError(
            f"{total.skipped} row(s) skipped (listed {where} with file and line; all are stored "
            "in finance_issues)"
        )


@app.command("watch")
def watch_command(
    folder: Path = typer.Argument(..., help="Folder to watch for .jsonl and .csv files."),
    model: Path = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    rules: Path | None = typer.Option(None, "--rules", help=RULES_HELP),
    batch_size: int = BATCH_SIZE,
    max_chars: int = typer.Option(
        5000, "--max-chars", min=1, help="Longer texts are cut (counted)."
    ),
    naive_tz: str = NAIVE_TZ,
    quantize: str | None = typer.Option(None, "--quantize", help="'int8' for faster scoring."),
    topic_model: Path | None = TOPIC_MODEL,
    topic_threshold: float = TOPIC_THRESHOLD,
    timeout: float = typer.Option(
        5.0, "--timeout", min=0.0, help="Seconds to wait for a locked database."
    ),
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
    tz: str = TZ,
) -> None:
    """Ingest every file in a folder, then new files and appended lines as they arrive.

    Restarted, it resumes each file where its last committed batch ended. Stop with Ctrl-C.
    With --alerts, the detector (the same flags as `finance alerts`) runs after each pass.
    """
    from tunesmith.errors import UserInputError
    from tunesmith_finance.documents import resolve_zone
    from tunesmith_finance.trends import BY as KINDS
    from tunesmith_finance.watch import watch_folder

    if sink and not alerts:
        raise UserInputError("--sink sends alerts: add --alerts")
    if not folder.is_dir():  # before the model loads and the database is created
        raise UserInputError(f"{folder}: no such folder")
    if by not in KINDS:
        raise UserInputError(f"--by {by!r}: expected one of {', '.join(KINDS)}")
    resolve_zone(tz, "--tz")  # before the model loads
    sinks = _sinks(sink)
    settings = {
        "bucket": bucket,
        "window": window,
        "half_life": half_life,
        "min_volume": min_volume,
        "min_lift": min_lift,
        "p_value": p_value,
        "cooldown": cooldown,
    }
    _detector(**settings, prior=prior)  # a bad setting is an error now, not after a pass
    ingester = _ingester(
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
    )

    def after_pass(report: Any) -> None:
        if report.read:
            _print_report(report, False)
        if alerts:
            from tunesmith_finance.alerts import (
                AlertOptions,
                alert_message,
                global_negative_share,
                run_alerts,
            )

            start = prior if prior is not None else global_negative_share(ingester.db)
            found = run_alerts(
                ingester.db,
                detector=_detector(**settings, prior=start),
                options=AlertOptions(by=by, tz=tz),
                model=ingester.model,
                sinks=sinks,
            )
            for alert in found:
                _err(alert_message(alert))
            if found and not sinks:
                _err(_NOT_SENT.format(n=len(found)))

    try:
        watch_folder(ingester, folder, on_pass=after_pass, once=once, log=_err)
    except KeyboardInterrupt:
        _err("stopped")
    finally:
        ingester.db.close()


def _check_outputs(outputs: dict[str, Path | None], *, force: bool) -> None:
    """Refuse, before any work, an output that is a folder, two outputs that are one file, and
    an existing file without ``--force`` (as ``train --out`` and the core's ``--out`` do)."""
    from tunesmith.errors import OutputExistsError, UserInputError
    from tunesmith.io import check_output_file

    given = {flag: path for flag, path in outputs.items() if path is not None}
    for flag, path in given.items():
        check_output_file(path, flag)  # a folder first: --force cannot replace it with a file
        if path.exists() and not force:
            raise OutputExistsError(f"{flag} {path} exists already; pass --force to replace it")
    seen: dict[Path, str] = {}
    for flag, path in given.items():
        where = path.resolve()
        if where in seen:
            raise UserInputError(
                f"{seen[where]} and {flag} are both {path}; one would overwrite the other: "
                "give two files"
            )
        seen[where] = flag


def _parse_moment(value: str | None, flag: str, zone: Any = None) -> float | None:
    """``--since``/``--until`` as a Unix time; a time without a zone is read in ``zone``
    (default UTC)."""
    if value is None:
        return None
    from datetime import UTC

    from tunesmith.errors import UserInputError
    from tunesmith_finance.documents import RowError, parse_time

    try:
        return parse_time(value, zone or UTC).timestamp()
    except RowError as exc:
        raise UserInputError(f"{flag}: {exc}") from None


def _open_existing(db: Path) -> Any:
    from tunesmith.errors import UserInputError
    from tunesmith_finance.storage import open_store

    if not db.is_file():
        raise UserInputError(f"--db {db}: no such database; create it with `finance ingest`")
    return open_store(db)


@app.command("trends")
def trends_command(
    db: Path = typer.Option(..., "--db", help=READ_DB_HELP),
    by: str = typer.Option("topic", "--by", help="topic | ticker | all."),
    bucket: str = typer.Option(
        "1h",
        "--bucket",
        help="Bucket size: 15m, 1h, 1d, 1w, ... (cut on the --tz clock; weeks from Monday).",
    ),
    key: str | None = typer.Option(None, "--key", help="Only this topic or ticker."),
    since: str | None = typer.Option(
        None, "--since", help="From this time (ISO 8601; without a zone, in --tz)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Before this time (ISO 8601; without a zone, in --tz)."
    ),
    tz: str = TZ,
    as_json: bool = typer.Option(False, "--json", help="Print the rows as one JSON list."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Also write the rows as CSV."),
    chart: Path | None = typer.Option(
        None, "--chart", help="Also draw a PNG chart (alerts marked)."
    ),
    top: int = typer.Option(6, "--top", min=1, help="Keys on the chart (most documents first)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --csv or --chart file."),
) -> None:
    """Count, negative share (Wilson 95 % interval) and mean score per key and time bucket."""
    from tunesmith.errors import UserInputError
    from tunesmith_finance import trends as trend_mod
    from tunesmith_finance.documents import resolve_zone

    if key is not None and by == "all":
        raise UserInputError("--key picks a topic or ticker: use it with --by topic or ticker")
    zone = resolve_zone(tz, "--tz")
    _check_outputs({"--csv": csv_out, "--chart": chart}, force=force)
    low, high = _parse_moment(since, "--since", zone), _parse_moment(until, "--until", zone)
    store = _open_existing(db)
    try:
        rows = trend_mod.trends(
            store, by=by, bucket=bucket, key=key, since=low, until=high, zone=zone
        )
        alerts: list[dict[str, Any]] = []
        if chart is not None:
            from tunesmith_finance.alerts import list_alerts

            # Only the alerts whose window meets the charted --since/--until range: one after
            # it was drawn on the range's last point, as if it had fired there.
            alerts = [
                a
                for a in list_alerts(store)
                if a["kind"] == by
                and (low is None or a["window_end"] > low)
                and (high is None or a["window_start"] < high)
            ]
    finally:
        store.close()
    if csv_out is not None:
        trend_mod.write_csv(rows, csv_out)
        _err(f"wrote {csv_out}")
    if chart is not None:
        # The key as stored, as the rows and alerts name it: as typed ("$aapl") it drew nothing.
        keys = [trend_mod.stored_key(by, key)] if key else None
        # No row: the chart says so (an empty time axis read 1970), as the dashboard's does.
        what = f"of {by} {keys[0]}" if keys else ("" if by == "all" else f"with a {by}")
        within = " in the --since/--until range" if since or until else ""
        trend_mod.save_chart(
            rows,
            chart,
            alerts=alerts,
            keys=keys,
            limit=top,
            bucket=trend_mod.parse_duration(bucket),
            zone=zone,
            empty=" ".join(f"No documents {what}{within}".split()) + ".",
        )
        _err(f"wrote {chart}")
    if as_json:
        _echo_json([r.to_dict() for r in rows])
        return
    label = f"bucket ({trend_mod.zone_name(zone)})"
    width = max(21 if trend_mod.is_utc(zone) else 25, len(label))  # ...Z, or ...+05:30
    _out(
        f"{'key':<12} {label:<{width}} {'n':>5} {'neg':>5} {'share':>6} {'95% CI':>13} {'mean':>7}"
    )
    for r in rows:
        _out(
            f"{r.key:<12} {r.bucket_start:<{width}} {r.count:>5} {r.negatives:>5} "
            f"{r.negative_share:>6.2f} {r.share_low:>6.2f}-{r.share_high:<6.2f} {r.mean_score:>+7.3f}"
        )


def _detector(
    *,
    bucket: str,
    window: int,
    half_life: str | None,
    min_volume: int,
    min_lift: float,
    p_value: float,
    cooldown: str | None,
    prior: float | None,
    bucket_flag: str = "--bucket",
) -> Any:
    from tunesmith.errors import UserInputError
    from tunesmith_finance.detector import SurgeDetector
    from tunesmith_finance.trends import parse_duration

    if window < 1:
        raise UserInputError("--window must be at least 1 bucket")
    if not 0 < p_value < 1:
        raise UserInputError("--p-value must be between 0 and 1")
    if min_volume < 1:
        raise UserInputError("--min-volume must be at least 1 document")
    if not 0 <= min_lift < 1:
        raise UserInputError("--min-lift must be a share from 0 below 1")
    return SurgeDetector(
        bucket=parse_duration(bucket, bucket_flag),
        window=window,
        half_life=None if half_life is None else parse_duration(half_life, "--half-life"),
        min_volume=min_volume,
        min_lift=min_lift,
        p_value=p_value,
        cooldown=None if cooldown is None else parse_duration(cooldown, "--cooldown"),
        prior=0.2 if prior is None else prior,
    )


def _load_model_for_alerts(store: Any, model: Path | None, explain: bool) -> Any:
    """The model that explains new alerts, loaded only once one is found: most runs find none."""
    if not explain:
        return None
    from tunesmith.errors import ModelNotFoundError
    from tunesmith_finance.alerts import DeferredModel
    from tunesmith_finance.storage import get_meta

    if model is not None:  # named by the user: a wrong path is an error, not a silent note
        if not model.expanduser().exists():
            raise ModelNotFoundError(f"model directory {model.expanduser()} does not exist")
        return DeferredModel(model)
    where = get_meta(store, "model")
    if not where or not Path(where).exists():
        _err("note: no sentiment model found (--model); alerts carry no explaining words")
        return None
    return DeferredModel(where)


def _print_alert(alert: dict[str, Any], *, listing: bool = False) -> None:
    from tunesmith_finance.alerts import alert_message

    _out(alert_message(alert))
    if listing and not alert["sent"]:  # found without a sink, or stored before it was sent
        _out(
            "    not sent yet: the next `finance alerts` or `watch --alerts` with a --sink sends it"
        )
    for example in alert["examples"]:
        _out(f"    {example['score']:+.3f}  {example['time']}  {example['text'][:90]}")


@app.command("alerts")
def alerts_command(
    db: Path = typer.Option(..., "--db", help=READ_DB_HELP),
    model: Path | None = typer.Option(
        None, "--model", "-m", help="Model for the explanations (default: the one ingest used)."
    ),
    by: str | None = typer.Option(
        None,
        "--by",
        help="topic | ticker | all (default topic; with --list, only that kind, else every kind).",
    ),
    bucket: str = BUCKET,
    window: int = WINDOW,
    half_life: str | None = HALF_LIFE,
    min_volume: int = MIN_VOLUME,
    min_lift: float = MIN_LIFT,
    p_value: float = P_VALUE,
    cooldown: str | None = COOLDOWN,
    prior: float | None = STORED_PRIOR,
    sink: list[str] | None = typer.Option(
        None, "--sink", help="Event sink, e.g. jsonl:alerts.jsonl, stdout, webhook:URL."
    ),
    explain: bool = typer.Option(True, "--explain/--no-explain", help="Explain each alert."),
    max_explain: int = typer.Option(
        100, "--max-explain", min=0, help="Most documents explained (0: none)."
    ),
    list_only: bool = typer.Option(False, "--list", help="Only list the stored alerts."),
    as_json: bool = typer.Option(False, "--json", help="Print alerts as one JSON list."),
    tz: str | None = typer.Option(
        None,
        "--tz",
        help=TZ_HELP + " (default UTC; with --list, the zone windows are shown in, by default "
        "each alert's own).",
    ),
) -> None:
    """Find negative surges over a rolling baseline, explain them, store and send them.

    Only alerts not stored yet are sent, so it is safe to run again (e.g. from cron).
    """
    from tunesmith.errors import UserInputError
    from tunesmith.events import refuse_stdout_sink_with_json
    from tunesmith_finance.alerts import (
        AlertOptions,
        global_negative_share,
        list_alerts,
        run_alerts,
    )
    from tunesmith_finance.documents import resolve_zone
    from tunesmith_finance.trends import BY

    if by is not None and by not in BY:  # before a model is loaded for the explanations
        raise UserInputError(f"--by {by!r}: expected one of {', '.join(BY)}")
    if tz is not None:
        resolve_zone(tz, "--tz")
    # --list sends nothing, so only a run that may send alerts has the two on stdout.
    refuse_stdout_sink_with_json(sink, as_json and not list_only)
    sinks = _sinks(sink)
    store = _open_existing(db)
    try:
        if list_only:
            found = list_alerts(store, kind=by, tz=tz)
        else:
            if prior is None:
                prior = global_negative_share(store)
            detector = _detector(
                bucket=bucket,
                window=window,
                half_life=half_life,
                min_volume=min_volume,
                min_lift=min_lift,
                p_value=p_value,
                cooldown=cooldown,
                prior=prior,
            )
            found = run_alerts(
                store,
                detector=detector,
                options=AlertOptions(by=by or "topic", max_explain=max_explain, tz=tz or "UTC"),
                model=_load_model_for_alerts(store, model, explain),
                sinks=sinks,
            )
    finally:
        store.close()
    if found and not list_only and not sinks:
        _err(_NOT_SENT.format(n=len(found)))
    if as_json:
        _echo_json(found)
        return
    if not found:
        _err("no new alerts" if not list_only else f"no alerts stored{f' by {by}' if by else ''}")
    for alert in found:
        _print_alert(alert, listing=list_only)


@app.command("replay")
def replay_command(
    file: Path = typer.Argument(..., help="A JSONL or CSV stream to replay in time order."),
    model: Path = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    rules: Path | None = typer.Option(None, "--rules", help=RULES_HELP),
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
    sink: list[str] | None = typer.Option(None, "--sink", help="Event sink for the alerts."),
    explain: bool = typer.Option(True, "--explain/--no-explain", help="Explain each alert."),
    naive_tz: str = NAIVE_TZ,
    tz: str = TZ,
    topic_model: Path | None = TOPIC_MODEL,
    topic_threshold: float = TOPIC_THRESHOLD,
) -> None:
    """Replay a file with simulated time: ingest step by step and show alerts as they fire."""
    from tunesmith_finance.alerts import AlertOptions
    from tunesmith_finance.documents import resolve_zone
    from tunesmith_finance.replay import replay

    _check_inputs([str(file)])
    resolve_zone(tz, "--tz")
    sinks = _sinks(sink)
    detector = _detector(
        bucket=step,
        bucket_flag="--step",
        window=window,
        half_life=half_life,
        min_volume=min_volume,
        min_lift=min_lift,
        p_value=p_value,
        cooldown=cooldown,
        prior=prior,
    )
    ingester = _ingester(
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
            echo=_out,
        )
    finally:
        ingester.db.close()
    _err(
        f"replayed {summary['documents']} documents in {summary['steps']} steps; "
        f"{summary['alerts']} alert(s)"
    )


@app.command("demo")
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
