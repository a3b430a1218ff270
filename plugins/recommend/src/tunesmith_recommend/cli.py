"""``tunesmith recommend``: train, eval, for-user, similar, search, add-items, add-events,
retire, restore, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from tunesmith.devices import check_device, device_option
from tunesmith_recommend.workflow import ID_DEFAULT, TEXT_DEFAULT, TITLE_DEFAULT

ITEMS = typer.Option(
    None,
    "--items",
    help="Items file (CSV, TSV, JSONL, JSON, Parquet or Excel .xlsx; 'book.xlsx#Sheet').",
)
EVENTS = typer.Option(
    None,
    "--events",
    help="Events file (CSV, TSV, JSONL, JSON, Parquet or Excel .xlsx; 'book.xlsx#Sheet').",
)
SAMPLE = typer.Option(False, "--sample", help="Use the shipped sample films and events.")
ID_COL = typer.Option(ID_DEFAULT, "--id-col", help="Items: the id column.")
TITLE_COL = typer.Option(TITLE_DEFAULT, "--title-col", help="Items: the title column.")
TEXT_COLS = typer.Option(
    ",".join(TEXT_DEFAULT),
    "--text-cols",
    help="Items: comma-separated text columns after the title.",
)
USER_COL = typer.Option("user_id", "--user-col", help="Events: the user column.")
ITEM_COL = typer.Option("item_id", "--item-col", help="Events: the item column.")
TIME_COL = typer.Option("timestamp", "--time-col", help="Events: time (unix seconds or ISO 8601).")
RATING_COL = typer.Option(None, "--rating-col", help="Events: a rating column.")
MIN_RATING = typer.Option(
    None, "--min-rating", help="Only ratings at or above this are positive events."
)
KIND_COL = typer.Option(None, "--kind-col", help="Events: an event-kind column.")
KINDS = typer.Option(None, "--kinds", help="Comma-separated kinds that count as positive.")
MODEL = typer.Option(
    "default", "--model", "-m", help="Base encoder: 'default', a local directory or a hub id."
)
ALLOW_NETWORK = typer.Option(
    False, "--allow-network", help="Allow downloading a hub --model (off by default)."
)
NO_FINE_TUNE = typer.Option(
    False, "--no-fine-tune", help="Use the pretrained encoder as the item tower (faster)."
)
ENCODER_EPOCHS = typer.Option(1.0, "--encoder-epochs", help="Pair fine-tuning epochs.")
TOWER_EPOCHS = typer.Option(5, "--tower-epochs", min=1, help="User-tower training epochs.")
# the default of pipeline.TOWER_MAX_EXAMPLES, kept literal for --help
TOWER_MAX_EXAMPLES = typer.Option(
    200_000,
    "--tower-max-examples",
    min=1,
    help="The user tower trains on at most this many (history, next item) examples, a seeded "
    "sample (one per event after a user's first: time grew with the events).",
)
# the default of ranker.MAX_REQUESTS, kept literal for --help
RANKER_MAX_REQUESTS = typer.Option(
    3000,
    "--ranker-max-requests",
    min=1,
    help="The ranker's weights are fitted on at most this many validation requests, a seeded "
    "sample (fewer on a large catalogue: each is a dense row over every item).",
)
MAX_TEST_REQUESTS = typer.Option(
    None,
    "--max-test-requests",
    min=1,
    help="Score a seeded sample of this many test requests (default: all; each is a full "
    "ranking of the catalogue per model); ALS chooses its factors on as many validation "
    "requests.",
)
# at least 3: a user's last event is the test request, the one before it validation
MIN_EVENTS = typer.Option(
    3, "--min-events", min=3, help="Users with fewer events only train (at least 3)."
)
# the default of baselines.COOC_MAX_HISTORY (pipeline.Settings), kept literal for --help
COOC_MAX_HISTORY = typer.Option(
    1000,
    "--cooc-max-history",
    min=1,
    help="Co-occurrence counts at most this many of one user's items, their latest (a shared "
    "'guest' account's history made it quadratic).",
)
# --model as in every other command that reads a trained model; --model-dir kept as it was.
MODEL_DIR = typer.Option(
    ..., "--model-dir", "--model", "-m", help="A model directory from `train`."
)
WHERE = typer.Option(
    None,
    "--where",
    help="Only items whose field matches (repeat: all must hold): 'category=books', "
    "'price<20' (=, !=, <, <=, >, >=; 'a|b' for either). The fields are train --filter-cols'.",
)
TOP_K = typer.Option(10, "-k", "--top", "--top-k", min=1, help="How many items to show.")
AS_JSON = typer.Option(False, "--json", help="Print JSON on stdout.")
TRAIN_DEVICE = device_option(
    "The item encoder's encoding and pair fine-tuning run there; the user tower, content prior "
    "and ranker are small and fitted on the CPU."
)
ENCODER_DEVICE = device_option("Only the item encoder runs there.")
# not the core's precision_option(): its help offers fp16 and bf16, which train refuses
PRECISION = typer.Option(
    "fp32",
    "--precision",
    help="fp32 only: the encoder's pair training and the user tower train in fp32 (fp16 and "
    "bf16 are refused, not ignored).",
)
FILTER_COLS = typer.Option(
    None,
    "--filter-cols",
    help="Comma-separated item columns kept for --where filters at query time (category, "
    "price ...): a column of numbers compares with < and >, any other with = and !=.",
)
ITEM_NOUN = typer.Option(
    None,
    "--item-noun",
    help="What one item is, for the words of the demo and the commands: 'book' (plural "
    "'books'), or 'singular/plural' like 'person/people' (default: 'film' with --sample, else "
    "'item'). Stored in meta.json.",
)


def _data_files(
    items: Path | None,
    events: Path | None,
    sample: bool,
    id_col: str,
    title_col: str,
    text_cols: str,
    user_col: str,
    item_col: str,
    time_col: str,
    rating_col: str | None,
    min_rating: float | None,
    kind_col: str | None,
    kinds: str | None,
) -> Any:
    """The data flags of ``train`` and ``eval`` as a :class:`~tunesmith_recommend.workflow.DataFiles`."""
    from tunesmith_recommend.workflow import DataFiles

    return DataFiles(
        items=items, events=events, sample=sample, id_col=id_col, title_col=title_col,
        text_cols=text_cols, user_col=user_col, item_col=item_col, time_col=time_col,
        rating_col=rating_col, min_rating=min_rating, kind_col=kind_col, kinds=kinds,
    )  # fmt: skip


def _training(
    model: str,
    no_fine_tune: bool,
    encoder_epochs: float,
    tower_epochs: int,
    tower_max_examples: int,
    ranker_max_requests: int,
    min_events: int,
    cooc_max_history: int,
    device: str,
) -> Any:
    """The training flags of ``train`` and ``eval`` as a
    :class:`~tunesmith_recommend.pipeline.Settings` (checked by the workflow before any data
    is read)."""
    from tunesmith_recommend.pipeline import Settings

    return Settings(
        model=model, fine_tune=not no_fine_tune, encoder_epochs=encoder_epochs,
        tower_epochs=tower_epochs, tower_max_examples=tower_max_examples,
        ranker_max_requests=ranker_max_requests, min_events=min_events,
        cooc_max_history=cooc_max_history, device=device,
    )  # fmt: skip


def train_command(
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out."),
    items: Path | None = ITEMS,
    events: Path | None = EVENTS,
    sample: bool = SAMPLE,
    id_col: str = ID_COL,
    title_col: str = TITLE_COL,
    text_cols: str = TEXT_COLS,
    user_col: str = USER_COL,
    item_col: str = ITEM_COL,
    time_col: str = TIME_COL,
    rating_col: str | None = RATING_COL,
    min_rating: float | None = MIN_RATING,
    kind_col: str | None = KIND_COL,
    kinds: str | None = KINDS,
    model: str = MODEL,
    no_fine_tune: bool = NO_FINE_TUNE,
    encoder_epochs: float = ENCODER_EPOCHS,
    tower_epochs: int = TOWER_EPOCHS,
    tower_max_examples: int = TOWER_MAX_EXAMPLES,
    ranker_max_requests: int = RANKER_MAX_REQUESTS,
    min_events: int = MIN_EVENTS,
    cooc_max_history: int = COOC_MAX_HISTORY,
    allow_network: bool = ALLOW_NETWORK,
    item_noun: str | None = ITEM_NOUN,
    filter_cols: str | None = FILTER_COLS,
    as_json: bool = AS_JSON,
    device: str = TRAIN_DEVICE,
    precision: str = PRECISION,
) -> None:
    """Fit the two-tower model and the ranker; write a model directory (atomically)."""
    from dataclasses import replace

    from tunesmith.io import read_json_object
    from tunesmith_recommend.workflow import train_model

    summary = train_model(
        out,
        replace(
            _data_files(
                items, events, sample, id_col, title_col, text_cols, user_col, item_col,
                time_col, rating_col, min_rating, kind_col, kinds,
            ),
            filter_cols=filter_cols,
        ),
        _training(
            model, no_fine_tune, encoder_epochs, tower_epochs, tower_max_examples,
            ranker_max_requests, min_events, cooc_max_history, device,
        ),
        allow_network=allow_network, item_noun=item_noun, force=force, precision=precision,
    )  # fmt: skip
    if as_json:
        from tunesmith.events import strict_json

        typer.echo(strict_json(summary))  # an empty slice's NaN as null
    else:
        # the words train recorded (--item-noun, or the default for the data)
        many = (read_json_object(out / "meta.json") or {}).get("item_noun_plural", "items")
        typer.echo(
            f"Wrote {out}: {summary['items']} {many}, {summary['users']} users; "
            f"validation NDCG@10 {summary['validation_ndcg10']:.4f} "
            f"({summary['item_tower']} item tower)"
        )


def _fmt_ci(row: dict[str, Any], name: str) -> str:
    low, high = row[f"{name}_ci"]
    return f"{row[name]:.4f} [{low:.3f}, {high:.3f}]"


def _figure(value: float) -> str:
    """A slice's figure for the table; ``-`` for a slice with no test request (NaN), which
    printed as "nan" as if something had failed."""
    return "-" if value != value else f"{value:.4f}"


def summary_line(report: dict[str, Any]) -> str:
    """The line under the table: the final ranker against the best baseline, and cold items."""
    cold = report["cold_recall10"]
    return (
        f"final ranker NDCG@10 {report['ndcg10']:.4f} vs best baseline "
        f"{report['best_baseline']} {report['ndcg10_best_baseline']:.4f}; "
        + (
            "no cold item among the test requests"
            if cold != cold  # NaN: no test request of an unseen item
            else f"cold-item Recall@10 {cold:.4f} (random {report['random_recall10']:.4f})"
        )
    )


def report_table(models: dict[str, Any]) -> str:
    """A plain-text table of every model: overall metrics with intervals, coverage, slices."""
    lines = [
        f"{'model':22s} {'NDCG@10 [95% CI]':26s} {'Recall@10 [95% CI]':26s} {'MRR':7s} "
        f"{'cover':6s} {'cold R@10':10s} {'short NDCG':10s}"
    ]
    for name, summary in models.items():
        overall = summary["all"]
        lines.append(
            f"{name:22s} {_fmt_ci(overall, 'ndcg10'):26s} {_fmt_ci(overall, 'recall10'):26s} "
            f"{overall['mrr']:.4f}  {overall['coverage']:.3f}  "
            f"{_figure(summary['cold_items']['recall10']):10s} "
            f"{_figure(summary['short_users']['ndcg10'])}"
        )
    return "\n".join(lines)


def eval_command(
    items: Path | None = ITEMS,
    events: Path | None = EVENTS,
    sample: bool = SAMPLE,
    id_col: str = ID_COL,
    title_col: str = TITLE_COL,
    text_cols: str = TEXT_COLS,
    user_col: str = USER_COL,
    item_col: str = ITEM_COL,
    time_col: str = TIME_COL,
    rating_col: str | None = RATING_COL,
    min_rating: float | None = MIN_RATING,
    kind_col: str | None = KIND_COL,
    kinds: str | None = KINDS,
    model: str = MODEL,
    no_fine_tune: bool = NO_FINE_TUNE,
    encoder_epochs: float = ENCODER_EPOCHS,
    tower_epochs: int = TOWER_EPOCHS,
    tower_max_examples: int = TOWER_MAX_EXAMPLES,
    ranker_max_requests: int = RANKER_MAX_REQUESTS,
    min_events: int = MIN_EVENTS,
    cooc_max_history: int = COOC_MAX_HISTORY,
    allow_network: bool = ALLOW_NETWORK,
    max_test_requests: int | None = MAX_TEST_REQUESTS,
    as_json: bool = AS_JSON,
    device: str = TRAIN_DEVICE,
) -> None:
    """Leave-last-out evaluation of every baseline and the final ranker, full ranking."""
    from tunesmith_recommend.workflow import evaluate_models

    report = evaluate_models(
        _data_files(
            items, events, sample, id_col, title_col, text_cols, user_col, item_col, time_col,
            rating_col, min_rating, kind_col, kinds,
        ),
        _training(
            model, no_fine_tune, encoder_epochs, tower_epochs, tower_max_examples,
            ranker_max_requests, min_events, cooc_max_history, device,
        ),
        allow_network=allow_network, max_test_requests=max_test_requests,
    )  # fmt: skip
    if as_json:
        from tunesmith.events import strict_json

        typer.echo(strict_json(report))  # an empty slice's NaN as null
        return
    typer.echo(report_table(report["models"]))
    typer.echo(summary_line(report))
    if report["n_test"] < report["n_test_all"]:
        typer.echo(
            f"scored on a seeded sample of {report['n_test']:,} of the {report['n_test_all']:,} "
            "test requests (--max-test-requests)"
        )


def _print(
    results: list[Any],
    as_json: bool,
    explanation: Any = None,
    because: str | None = None,
    one: str = "item",
    fewer: str | None = None,
) -> None:
    """Print ``results`` (or JSON); ``because``: a reason's words, ``{}`` the titles (default
    "because you liked {}": see :func:`tunesmith_recommend.model.history_words`); ``one``: what
    an item is (the model's ``--item-noun``)."""
    if as_json:
        payload: dict[str, Any] = {"items": [r.to_json() for r in results]}
        if explanation is not None:
            payload["words"] = explanation.to_dict()
        typer.echo(json.dumps(payload))
        return
    if not results:
        # an empty list printed as nothing looked like a crash or a hang
        typer.echo(f"nothing left to recommend: every {one} in the catalogue is in this history")
        return
    from tunesmith.data.limits import printable
    from tunesmith_recommend.model import LIKED_WORDS

    because = because or LIKED_WORDS.because
    for rank, rec in enumerate(results, start=1):
        reason = ""
        if rec.because:
            from tunesmith_recommend.explain import percents

            shown = percents([b["share"] for b in rec.because])
            liked = ", ".join(
                f"{b['title']} ({pct}%)" for b, pct in zip(rec.because, shown, strict=True)
            )
            reason = "  " + because.format(liked)
        # Titles and ids come from the catalogue's file, which may hold escape sequences.
        typer.echo(printable(f"{rank:2d}. {rec.title} [{rec.item_id}] {rec.score:.3f}{reason}"))
    if fewer:
        typer.echo(printable(fewer))
    if explanation is not None:
        from tunesmith_recommend.explain import matched_words

        words = matched_words(explanation)
        typer.echo(
            f"words of the first {one} that matched: " + printable(", ".join(words))
            if words
            else f"no word of the first {one} raised its match (every word scored 0 or below)"
        )


def _fewer(results: list[Any], k: int, where: list[str]) -> str | None:
    """A line under a filtered list shorter than ``-k``: the filter, not a fault, cut it."""
    if not where or len(results) >= k:
        return None
    return f"only {len(results)} match --where {', '.join(where)} (and are not retired or seen)"


def _load(model_dir: Path, device: str = "cpu") -> Any:
    from tunesmith_recommend.model import Recommender

    return Recommender(model_dir, device=device)


def _one(recommender: Any) -> str:
    """What one of the model's items is called (``train --item-noun``)."""
    from tunesmith_recommend.model import item_nouns

    return item_nouns(recommender.meta)[0]


def for_user_command(
    user: str | None = typer.Argument(None, help="A user id from the training events."),
    model_dir: Path = MODEL_DIR,
    liked: list[str] | None = typer.Option(
        None, "--liked", help="A liked item id (repeat): recommend for a new user."
    ),
    query: str | None = typer.Option(None, "--query", help="Describe what you want."),
    k: int = TOP_K,
    explain: bool = typer.Option(
        False, "--explain", help="Also attribute the first item's words (slower)."
    ),
    where: list[str] | None = WHERE,
    as_json: bool = AS_JSON,
) -> None:
    """Recommend for a known user, a new user's liked items, or a text."""
    from tunesmith.data.limits import cli_text
    from tunesmith.errors import UserInputError

    given = sum(x is not None and x != [] for x in (user, liked, query))
    if given != 1:
        raise UserInputError("give exactly one of: a USER, --liked ITEM (repeatable), --query TEXT")
    if query is not None:
        query = cli_text(query, "--query")  # non-UTF-8 argv was "text 0 holds U+DCFF ..."
    from tunesmith_recommend.model import LIKED_WORDS, history_words

    recommender = _load(model_dir)
    where = [cli_text(w, "--where") for w in where or []]
    because = LIKED_WORDS.because  # --liked: the items the user says they liked
    if user is not None:
        results = recommender.for_user(user, k, where=where)
        # a history without --min-rating holds every event, a 1-star rating too
        because = history_words(recommender.meta).because
    elif liked:
        results = recommender.for_liked(list(liked), k, where=where)
    else:
        results = recommender.for_query(query or "", k, where=where)
    explanation = None
    if explain and results:
        from tunesmith_recommend.explain import explain_first

        # a --query recommendation has no liked items: its words are explained by the query
        explanation = explain_first(recommender, results[0], query)
    _print(results, as_json, explanation, because, _one(recommender), _fewer(results, k, where))


def similar_command(
    item: str = typer.Argument(..., help="An item id."),
    model_dir: Path = MODEL_DIR,
    k: int = TOP_K,
    where: list[str] | None = WHERE,
    as_json: bool = AS_JSON,
) -> None:
    """Items closest to this one in the item tower."""
    from tunesmith.data.limits import cli_text

    recommender = _load(model_dir)
    where = [cli_text(w, "--where") for w in where or []]
    found = recommender.similar(item, k, where=where)
    _print(found, as_json, one=_one(recommender), fewer=_fewer(found, k, where))


def search_command(
    text: str = typer.Argument(..., help="What to look for."),
    model_dir: Path = MODEL_DIR,
    k: int = TOP_K,
    where: list[str] | None = WHERE,
    as_json: bool = AS_JSON,
    device: str = ENCODER_DEVICE,
) -> None:
    """Items whose text matches a query (the item encoder alone)."""
    from tunesmith.data.limits import cli_text

    check_device(device)  # before the model directory is read
    recommender = _load(model_dir, device)
    where = [cli_text(w, "--where") for w in where or []]
    found = recommender.search(cli_text(text, "TEXT"), k, where=where)
    _print(found, as_json, one=_one(recommender), fewer=_fewer(found, k, where))


def add_items_command(
    items: Path = typer.Option(
        ...,
        "--items",
        help="New items (CSV, TSV, JSONL, JSON, Parquet or Excel .xlsx; 'book.xlsx#Sheet').",
    ),
    model_dir: Path = MODEL_DIR,
    id_col: str | None = typer.Option(
        None, "--id-col", help="Items: the id column (default: the one train read)."
    ),
    title_col: str | None = typer.Option(
        None, "--title-col", help="Items: the title column (default: the one train read)."
    ),
    text_cols: str | None = typer.Option(
        None,
        "--text-cols",
        help="Items: comma-separated text columns after the title (default: those train read).",
    ),
    as_json: bool = AS_JSON,
    device: str = ENCODER_DEVICE,
) -> None:
    """Add new items to a trained model: recommendable at once from their text alone."""
    from tunesmith.io import read_json_object
    from tunesmith_recommend.model import item_nouns
    from tunesmith_recommend.workflow import add_items_from

    done = add_items_from(
        model_dir, items, id_col=id_col, title_col=title_col, text_cols=text_cols, device=device
    )
    if as_json:
        typer.echo(json.dumps(done))
        return
    added, total = done["added"], done["items"]
    one, many = item_nouns(read_json_object(model_dir / "meta.json"))
    typer.echo(f"Added {added} {one if added == 1 else many} to {model_dir} ({total} {many} now)")


def add_events_command(
    events: Path = typer.Option(
        ...,
        "--events",
        help="New events (CSV, TSV, JSONL, JSON, Parquet or Excel .xlsx; 'book.xlsx#Sheet').",
    ),
    model_dir: Path = MODEL_DIR,
    user_col: str | None = typer.Option(
        None, "--user-col", help="Events: the user column (default: the one train read)."
    ),
    item_col: str | None = typer.Option(
        None, "--item-col", help="Events: the item column (default: the one train read)."
    ),
    time_col: str | None = typer.Option(
        None, "--time-col", help="Events: the time column (default: the one train read)."
    ),
    rating_col: str | None = typer.Option(
        None, "--rating-col", help="Events: the rating column (default: the one train read)."
    ),
    min_rating: float | None = typer.Option(
        None,
        "--min-rating",
        help="The model's own threshold (train --min-rating) is used; another is refused.",
    ),
    kind_col: str | None = typer.Option(
        None, "--kind-col", help="Events: the event-kind column (default: the one train read)."
    ),
    kinds: str | None = typer.Option(
        None, "--kinds", help="The model's own kinds (train --kinds) are used; others are refused."
    ),
    as_json: bool = AS_JSON,
) -> None:
    """Add new events to a trained model without retraining it (new users become known)."""
    from tunesmith_recommend.updates import EventColumns, add_events, newest_text
    from tunesmith_recommend.workflow import names_list

    # None: the column train read (meta.json's event_columns)
    given = EventColumns(
        user_col, item_col, time_col, rating_col, min_rating, kind_col, names_list(kinds)
    )
    done = add_events(model_dir, events, given)
    if as_json:
        typer.echo(json.dumps(done.to_json(model_dir)))
        return
    if not done.added:
        typer.echo(
            f"Nothing added to {model_dir}: "
            + (
                f"the {done.known} event(s) of {events} are in it already (an event is its "
                "user, item and time)"
                if done.known
                else f"{events} has no event to add"
            )
        )
        return
    known = f"; {done.known} were in it already" if done.known else ""
    below = done.added - done.added_positive
    if below:  # a model trained with --min-rating: the rest are seen, not liked
        known = f" ({done.added_positive} positive, {below} rated below --min-rating){known}"
    typer.echo(
        f"Added {done.added} event(s) to {model_dir}{known}: {done.new_users} new user(s), "
        f"{done.users} users and {done.events} events now, the newest at "
        f"{newest_text(done.newest)}"
    )
    typer.echo(
        "Popularity, co-occurrence, histories and the items for-user leaves out count them now; "
        "the item and user towers and the ranker's weights were not retrained (train again "
        "weekly, or when many users or items are new)"
    )


RETIRE_ITEMS = typer.Option(
    None,
    "--items",
    help="A file of item ids: one a line (.txt), or a CSV, JSONL, Parquet or Excel file's "
    "--id-col column.",
)
RETIRE_ITEM = typer.Option(None, "--item", help="An item id (repeat).")
RETIRE_ID_COL = typer.Option(
    None, "--id-col", help="The id column of a --items table (default: the one train read)."
)


def _retire_or_restore(
    model_dir: Path,
    items: Path | None,
    item: list[str] | None,
    id_col: str | None,
    restore: bool,
    as_json: bool,
) -> None:
    """What ``retire`` and ``restore`` share: read the ids, change the set, say what changed."""
    from tunesmith.data.limits import cli_text, printable
    from tunesmith_recommend.model import item_nouns, read_meta
    from tunesmith_recommend.retire import Named, change_retired, ids_from_file
    from tunesmith_recommend.workflow import added_item_columns

    meta = read_meta(model_dir)
    named = [Named(cli_text(i, "--item")) for i in item or []]
    if items is not None:
        named += ids_from_file(items, added_item_columns(model_dir, id_col, None, None)[0])
    done = change_retired(model_dir, named, restore=restore)
    if as_json:
        typer.echo(json.dumps(done.to_json(model_dir)))
        return
    one, many = item_nouns(meta)
    said = f"{done.changed} {one if done.changed == 1 else many}"
    unchanged = done.unchanged_key.replace("_", " ")  # "already retired", "not retired"
    if not done.changed:
        typer.echo(f"Nothing changed in {model_dir}: every {one} named was {unchanged}")
        return
    already = f" ({done.unchanged} {unchanged})" if done.unchanged else ""
    typer.echo(
        printable(
            f"{done.action.capitalize()} {said} in {model_dir}{already}; {done.retired} "
            f"{one if done.retired == 1 else many} retired now"
            + ("" if restore else " (never recommended; users' histories keep them)")
        )
    )


def retire_command(
    model_dir: Path = MODEL_DIR,
    items: Path | None = RETIRE_ITEMS,
    item: list[str] | None = RETIRE_ITEM,
    id_col: str | None = RETIRE_ID_COL,
    as_json: bool = AS_JSON,
) -> None:
    """Stop recommending items (sold out, withdrawn, recalled) without retraining."""
    _retire_or_restore(model_dir, items, item, id_col, False, as_json)


def restore_command(
    model_dir: Path = MODEL_DIR,
    items: Path | None = RETIRE_ITEMS,
    item: list[str] | None = RETIRE_ITEM,
    id_col: str | None = RETIRE_ID_COL,
    as_json: bool = AS_JSON,
) -> None:
    """Recommend retired items again."""
    _retire_or_restore(model_dir, items, item, id_col, True, as_json)


def demo_command(
    model_dir: Path | None = typer.Option(
        None,
        "--model-dir",
        "--model",
        "-m",
        help="A model directory (default: built from the sample data).",
    ),
    port: int = typer.Option(7860, "--port", help="Port to listen on (0: any free port)."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes it to others."
    ),
) -> None:
    """Serve the recommendation demo on its own (open the address it prints in a browser)."""
    from tunesmith.ui.launch import check_address, launch
    from tunesmith_recommend.demo import build_demo

    # Before it says where it starts; --port 0 resolves to the free port it will serve on,
    # which is the address to print (it printed "http://127.0.0.1:0/").
    port = check_address(host, port)
    print(f"Starting the demo on http://{host}:{port}/", file=sys.stderr)
    launch(build_demo(str(model_dir) if model_dir else None), host=host, port=port)


def build_group() -> typer.Typer:
    """The ``recommend`` command group."""
    group = typer.Typer(
        help="Recommendations from item text and what users liked.", no_args_is_help=True
    )
    group.command("train")(train_command)
    group.command("eval")(eval_command)
    group.command("for-user")(for_user_command)
    group.command("similar")(similar_command)
    group.command("search")(search_command)
    group.command("add-items")(add_items_command)
    group.command("add-events")(add_events_command)
    group.command("retire")(retire_command)
    group.command("restore")(restore_command)
    group.command("demo")(demo_command)
    return group
