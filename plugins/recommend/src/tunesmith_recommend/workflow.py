"""What ``recommend train``, ``eval`` and ``add-items`` do, from files and settings to what
their ``--json`` prints: the commands (cli.py) and the Python API (python_api.py) both call
these, so the two cannot drift apart. Nothing heavy is imported until a function runs.

A mistake is one :class:`~tunesmith.errors.UserInputError` (or ``DataError``, with file, row
and column) naming the command's flag, checked before any model loads.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ID_DEFAULT, TITLE_DEFAULT = "item_id", "title"
TEXT_DEFAULT = ["description", "genres"]
#: test requests x items above which eval, scoring them all, says how to sample them
LONG_EVAL_ENTRIES = 2_000_000_000

Say = Callable[[str], None]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class DataFiles:
    """The items and events files a model is trained or evaluated on, and how they are read
    (the commands' ``--items``, ``--events``, ``--sample`` and column flags)."""

    items: Path | None = None
    events: Path | None = None
    sample: bool = False
    id_col: str = ID_DEFAULT
    title_col: str = TITLE_DEFAULT
    text_cols: str | Sequence[str] = field(default_factory=lambda: list(TEXT_DEFAULT))
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    rating_col: str | None = None
    min_rating: float | None = None
    kind_col: str | None = None
    kinds: str | Sequence[str] | None = None
    #: item columns kept for --where filters (``train --filter-cols``; eval filters nothing)
    filter_cols: str | Sequence[str] | None = None

    def read(self, say: Say = _say) -> tuple[Any, Any]:
        """The catalogue and its events; ``say`` gets each note of the reading (rows left out
        and why) as ``note: ...``."""
        from tunesmith.errors import UserInputError
        from tunesmith_recommend.data import load_events, load_items, sample_paths

        items, events = self.items, self.events
        if self.sample:
            if items or events:
                raise UserInputError("give --sample or --items/--events, not both")
            items, events = sample_paths()["items"], sample_paths()["events"]
        if items is None or events is None:
            raise UserInputError("give --items and --events (or --sample for the shipped films)")
        catalogue = load_items(
            items,
            id_col=self.id_col,
            title_col=self.title_col,
            text_cols=names_list(self.text_cols) or [],
            field_cols=names_list(self.filter_cols) or [],
        )
        for note in catalogue.notes:
            say(f"note: {note}")
        found = load_events(
            events,
            catalogue,
            user_col=self.user_col,
            item_col=self.item_col,
            time_col=self.time_col,
            rating_col=self.rating_col,
            min_rating=self.min_rating,
            kind_col=self.kind_col,
            kinds=names_list(self.kinds),
        )
        for note in found.notes:
            say(f"note: {note}")
        return catalogue, found


def names_list(names: str | Sequence[str] | None) -> list[str] | None:
    """Column names or kinds as a list: ``"view,buy"`` (the flags' form) or a list, each
    stripped and empty entries left out ("buy," names no empty kind); None when none is left."""
    if names is None:
        return None
    parts = names.split(",") if isinstance(names, str) else names
    found = [part.strip() for part in parts if part.strip()]
    return found or None


def check_training_device(device: str, precision: str) -> None:
    """Refuse, in one line and before any data is read, a ``--device`` this machine lacks and
    mixed precision: the core's pair training and the user tower train in fp32 only, and would
    ignore it."""
    from tunesmith.devices import PRECISIONS, check_device
    from tunesmith.errors import UserInputError

    check_device(device)
    chosen = (precision or "fp32").strip().lower()
    if chosen not in PRECISIONS:
        raise UserInputError(f"--precision {precision}: the choices are {', '.join(PRECISIONS)}")
    if chosen != "fp32":
        raise UserInputError(
            f"--precision {chosen}: recommend train's encoder pair training and user tower run "
            "in fp32 only; leave --precision out"
        )


def checked_settings(settings: Any, allow_network: bool) -> Any:
    """``settings`` (a :class:`~tunesmith_recommend.pipeline.Settings`), checked before any
    data is read or model loaded; ``allow_network``: whether a hub ``--model`` may download."""
    from tunesmith.engine.checks import check_epochs
    from tunesmith.models import allow_network as set_network

    if settings.fine_tune:  # inf passed a "> 0" check, to fail only after the split and encoding
        check_epochs(settings.encoder_epochs, "--encoder-epochs")
    set_network(allow_network)
    return settings


def train_model(
    out: str | Path,
    data: DataFiles,
    settings: Any,
    *,
    allow_network: bool = False,
    item_noun: str | None = None,
    force: bool = False,
    precision: str = "fp32",
    say: Say = _say,
) -> dict[str, Any]:
    """Fit the two-tower model and the ranker on ``data`` with ``settings`` and write the model
    directory ``out`` atomically (``force``: replace an existing one): the summary ``recommend
    train --json`` prints (``out``, ``items``, ``users``, ``events``, ``validation_ndcg10``,
    ``ranker_weights``, ``item_tower`` ...). ``item_noun``: what one item is (default ``film``
    for the sample, else ``item``); ``say`` gets the progress lines."""
    from tunesmith.data.limits import cli_text
    from tunesmith.io import atomic_directory, check_writable_dir
    from tunesmith.locks import run_lock
    from tunesmith_recommend import model as model_dir
    from tunesmith_recommend.pipeline import fit
    from tunesmith_recommend.retire import carried, write_retired

    out = Path(out)
    check_training_device(settings.device, precision)
    # What the demo calls an item: it said "films" of a model of books.
    if item_noun is None:
        item_noun = "film" if data.sample else model_dir.ITEM_NOUN
    nouns = model_dir.item_noun_meta(cli_text(item_noun, "--item-noun"))
    # One writer of --out at a time, as `tunesmith train`: not two trains, nor a train --force
    # over a model that add-items is rewriting.
    with run_lock(out):
        check_writable_dir(out, force=force)
        # No baselines: the model directory keeps none of them, and item-kNN and ALS (two
        # full-catalogue rankings of every validation request) cost more than the rest of a
        # --no-fine-tune train on a large catalogue. Recent popularity's half-life is still
        # chosen on validation, as the ranker needs it.
        chosen = checked_settings(replace(settings, baselines=False), allow_network)
        catalogue, found = data.read(say)
        # items retired in the model replaced stay retired (a weekly train must not bring a
        # recalled item back); `recommend restore` brings them back
        retired = carried(out, catalogue.ids) if force and out.is_dir() else []
        with atomic_directory(out, force=force) as tmp:
            fitted = fit(catalogue, found, tmp, chosen, say=say)
            # Whether a history is what users liked or every event (a 1-star one too): the
            # demo's and for-user's "liked" is true only with a threshold.
            model_dir.save(fitted, tmp, extra_meta={**nouns, "min_rating": data.min_rating})
            if retired:
                write_retired(tmp, retired, model_dir.read_meta(tmp), in_place=True)
                say(
                    f"note: {len(retired)} item(s) retired in the model replaced stay retired "
                    "(tunesmith recommend restore to bring them back)"
                )
    return {
        "out": str(out),
        "items": len(catalogue),
        "users": len(found.user_ids),
        "events": len(found),
        "validation_ndcg10": round(fitted.val_ndcg, 4),
        "ranker_weights": fitted.ranker.weights,
        "item_tower": fitted.item_tower,
        "item_tower_validation_ndcg10": fitted.tower_scores,
        "item_tower_collapsed": fitted.collapsed_tower,
    }


def evaluate_models(
    data: DataFiles,
    settings: Any,
    *,
    allow_network: bool = False,
    max_test_requests: int | None = None,
    say: Say = _say,
) -> dict[str, Any]:
    """Leave-last-out evaluation on ``data`` of every baseline, the two-tower and the final
    ranker, each a full ranking of the catalogue: the report ``recommend eval --json`` prints
    (``models`` with each one's figures and intervals, and the headline: ``ndcg10``,
    ``best_baseline``, ``ratio``, ``cold_recall10`` ...). ``max_test_requests``: score a
    seeded sample of that many test requests (ALS chooses its factors on as many validation
    requests). Nothing is written."""
    import tempfile

    from tunesmith.devices import check_device
    from tunesmith_recommend.pipeline import evaluate, fit, headline

    check_device(settings.device)  # before the data is read
    chosen = checked_settings(replace(settings), allow_network)
    # ALS's factors chosen on as many validation requests as are scored on test
    chosen.baseline_max_requests = max_test_requests
    catalogue, found = data.read(say)
    with tempfile.TemporaryDirectory(prefix="tunesmith-recommend-") as work:
        fitted = fit(catalogue, found, work, chosen, say=say)
        n_test = len(fitted.split.test)
        if max_test_requests is None and n_test * len(catalogue) > LONG_EVAL_ENTRIES:
            say(
                f"note: ranking all {n_test:,} test requests over {len(catalogue):,} items with "
                "every model; --max-test-requests N scores a seeded sample of N"
            )
        result = evaluate(fitted, max_requests=max_test_requests, say=say)
    return {"models": result["models"], **headline(result, len(catalogue))}


def added_item_columns(
    model_dir: Path,
    id_col: str | None,
    title_col: str | None,
    text_cols: str | Sequence[str] | None,
) -> tuple[str, str, list[str]]:
    """The id, title and text columns to read items added to ``model_dir`` from: those given,
    else those ``train`` read, so new items are encoded from the same fields as the catalogue
    (a model from before they were recorded: the train defaults)."""
    from tunesmith.io import read_json_object

    meta = read_json_object(model_dir / "meta.json") if model_dir.is_dir() else None
    used = (meta or {}).get("item_columns") or {}
    fields = text_cols if text_cols is not None else used.get("text", TEXT_DEFAULT)
    return (
        id_col or used.get("id") or ID_DEFAULT,
        title_col or used.get("title") or TITLE_DEFAULT,
        names_list(fields) or [],
    )


def add_items_from(
    model_dir: str | Path,
    items: str | Path,
    *,
    id_col: str | None = None,
    title_col: str | None = None,
    text_cols: str | Sequence[str] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Add the items of the file ``items`` to the trained model ``model_dir``, recommendable at
    once from their text alone: what ``recommend add-items --json`` prints (``model_dir``,
    ``added``, ``items`` now). The columns default to those ``train`` read."""
    from tunesmith.devices import check_device
    from tunesmith.io import read_json_object
    from tunesmith_recommend.data import load_items
    from tunesmith_recommend.model import add_items

    model_dir = Path(model_dir)
    check_device(device)  # before the new items are read
    id_col, title_col, fields = added_item_columns(model_dir, id_col, title_col, text_cols)
    # the fields --where filters on, from the columns and of the types train kept
    kept = (read_json_object(model_dir / "meta.json") or {}).get("item_fields") or {}
    new = load_items(
        items,
        id_col=id_col,
        title_col=title_col,
        text_cols=fields,
        min_items=1,
        field_cols=list(kept),
        field_types=kept,
    )
    added = add_items(model_dir, new, device=device)
    meta = read_json_object(model_dir / "meta.json") or {}
    return {"model_dir": str(model_dir), "added": added, "items": meta.get("n_items")}
