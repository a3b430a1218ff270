"""The plugin from Python: train and evaluate on items and events (files, or pandas
DataFrames, records or columns), open a trained model, ask it for recommendations and add new
items and events to it.

Each function runs what its command runs (``recommend train``, ``eval``, ``for-user``,
``similar``, ``search``, ``add-items``, ``add-events``) and returns what the command's
``--json`` prints: for recommendations its ``items``, a list of records (``item_id``,
``title``, ``score``, ``because``), best first, which ``pandas.DataFrame(records)`` makes a
table. A mistake is the :class:`~tunesmith.errors.UserInputError` line the command prints
after ``Error:``. Nothing heavy is imported until a function runs.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.python_data import is_path, keyword_errors

PathLike = str | Path

#: Errors name this API's keywords and methods, not the commands' flags.
_keywords = keyword_errors(
    {
        "--liked ITEM": "for_liked([ITEM, ...])",
        "--query TEXT": "for_query(TEXT)",
    }
)


def _text(value: object, what: str) -> str:
    """A text argument; anything else is one line, not a tokenizer's ``TypeError``."""
    from tunesmith.data.limits import cli_text

    if not isinstance(value, str):
        raise UserInputError(f"the {what} must be a string, got {type(value).__name__}")
    return cli_text(value, f"the {what}")


#: How many items a request returns unless told: the commands' ``-k``/``--top-k`` default.
TOP_K = 10


def _top_k(top_k: object, k: object) -> int:
    """How many items, at least 1: ``top_k``, as the core's ``Model.predict`` and the
    commands' ``--top-k`` name it, or ``k``, its earlier name here (still documented)."""
    name, value = "top_k", top_k
    if k is not None:
        if top_k != TOP_K:
            raise UserInputError("give top_k or k (the same number), not both")
        name, value = "k", k
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise UserInputError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


def _item_ids(items: object) -> list[str]:
    """One item id or several (a list, a tuple, a pandas Series, an array), each a string."""
    if isinstance(items, str):
        return [_text(items, "item id")]
    if isinstance(items, (bytes, dict)) or not isinstance(items, Iterable):
        raise UserInputError(f"items: give item ids, got {type(items).__name__}")
    return [_text(item, "item id") for item in items]


def _where(where: object) -> list[str]:
    """Filters as ``--where`` takes them: one condition (``"price<20"``), several (a list,
    all must hold), or a dict of fields and the values they must equal (``{"category":
    "books"}``)."""
    if where is None:
        return []
    if isinstance(where, str):
        return [_text(where, "where condition")]
    if isinstance(where, dict):
        # a list of values: any of them ("category=books|music")
        return [
            f"{_text(name, 'where field')}="
            + ("|".join(map(str, value)) if isinstance(value, (list, tuple, set)) else str(value))
            for name, value in where.items()
        ]
    if isinstance(where, bytes) or not isinstance(where, Iterable):
        raise UserInputError(
            "where: give a condition ('price<20'), a list of them or a dict of field values, "
            f"got {type(where).__name__}"
        )
    return [_text(condition, "where condition") for condition in where]


def _records(results: list[Any]) -> list[dict[str, Any]]:
    return [r.to_json() for r in results]


def _as_printed(value: Any) -> Any:
    """``value`` as its command's ``--json`` prints it: plain numbers, NaN as None."""
    import json

    from tunesmith.events import strict_json

    return json.loads(strict_json(value))


#: What items and events may be: a file, or data in memory (``tunesmith.python_data``).
Data = PathLike | Any


@contextlib.contextmanager
def _data(
    items: Data | None,
    events: Data | None,
    sample: bool,
    columns: dict[str, Any],
    filter_cols: str | Sequence[str] | None = None,
) -> Iterator[Any]:
    """The data arguments as :class:`~tunesmith_recommend.workflow.DataFiles`, for the block:
    a DataFrame, records or columns written as the file the readers take (the columns the
    flags name kept), so it reads as its CSV would."""
    from tunesmith.python_data import data_file
    from tunesmith_recommend.workflow import DataFiles, names_list

    kept = {
        "items": [columns["id_col"], columns["title_col"],
                  *(names_list(columns["text_cols"]) or []),
                  *(names_list(filter_cols) or [])],
        "events": _event_columns(columns["user_col"], columns["item_col"], columns["time_col"],
                                 columns["rating_col"], columns["kind_col"]),
    }  # fmt: skip
    with contextlib.ExitStack() as files:
        paths = {
            name: None if value is None else files.enter_context(
                data_file(value, what=name, columns=kept[name])
            )
            for name, value in (("items", items), ("events", events))
        }  # fmt: skip
        yield DataFiles(**paths, sample=sample, filter_cols=filter_cols, **columns)


def _event_columns(*names: str | None) -> list[str]:
    """The events columns named (a rating or kind column only when there is one), once each."""
    return list(dict.fromkeys(name for name in names if name))


def _settings(
    model: str | PathLike,
    fine_tune: bool,
    encoder_epochs: float,
    tower_epochs: int,
    tower_max_examples: int | None,
    ranker_max_requests: int,
    min_events: int,
    cooc_max_history: int | None,
    device: str,
) -> Any:
    """The training arguments as :class:`~tunesmith_recommend.pipeline.Settings`, each checked
    as its flag is (``--tower-epochs`` at least 1, ``--min-events`` at least 3 ...)."""
    from tunesmith_recommend.pipeline import Settings

    for name, value, least in (
        ("tower_epochs", tower_epochs, 1),
        ("tower_max_examples", tower_max_examples, 1),
        ("ranker_max_requests", ranker_max_requests, 1),
        ("min_events", min_events, 3),
        ("cooc_max_history", cooc_max_history, 1),
    ):
        if value is None and name in ("tower_max_examples", "cooc_max_history"):
            continue  # None: all of them
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UserInputError(
                f"{name} must be a whole number of at least {least}, got {value!r}"
            )
    return Settings(
        model=str(model),
        fine_tune=bool(fine_tune),
        encoder_epochs=encoder_epochs,
        tower_epochs=tower_epochs,
        tower_max_examples=tower_max_examples,
        ranker_max_requests=ranker_max_requests,
        min_events=min_events,
        cooc_max_history=cooc_max_history,
        device=device,
    )


# The defaults of the commands' flags (cli.py), kept literal so that this module imports
# nothing heavy: the pipeline's TOWER_MAX_EXAMPLES, ranker.MAX_REQUESTS, COOC_MAX_HISTORY.
_TOWER_MAX_EXAMPLES, _RANKER_MAX_REQUESTS, _COOC_MAX_HISTORY = 200_000, 3000, 1000


@_keywords
def train(
    out: PathLike,
    items: Data | None = None,
    events: Data | None = None,
    *,
    sample: bool = False,
    id_col: str = "item_id",
    title_col: str = "title",
    text_cols: str | Sequence[str] = ("description", "genres"),
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    rating_col: str | None = None,
    min_rating: float | None = None,
    kind_col: str | None = None,
    kinds: str | Sequence[str] | None = None,
    model: str | PathLike = "default",
    fine_tune: bool = True,
    encoder_epochs: float = 1.0,
    tower_epochs: int = 5,
    tower_max_examples: int | None = _TOWER_MAX_EXAMPLES,
    ranker_max_requests: int = _RANKER_MAX_REQUESTS,
    min_events: int = 3,
    cooc_max_history: int | None = _COOC_MAX_HISTORY,
    allow_network: bool = False,
    item_noun: str | None = None,
    force: bool = False,
    device: str = "auto",
    filter_cols: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Fit the two-tower model and the ranker on ``items`` and ``events`` (or ``sample=True``:
    the shipped films) and write the model folder ``out`` (``force``: replace one): ``recommend
    train --json``'s summary. Each argument is the command's flag of the same name
    (``fine_tune=False`` is ``--no-fine-tune``); :func:`load` opens the result. ``items`` and
    ``events`` are file paths, pandas DataFrames, lists of dicts or dicts of columns, read as
    their CSV would be (a ``Timestamp`` time as ISO 8601 text). Progress lines go to stderr.

    The folder comes first (``train(out, items, events)``), unlike ``tunesmith.train(data,
    out)``: by keyword, ``train(items=..., events=..., out=...)``, the call reads the same in
    every package. Data where the folder belongs is refused in one line."""
    from tunesmith_recommend.workflow import train_model

    # tunesmith.train(data, out) puts the data first; here the folder comes first, so
    # train(items, events, "films") would read the events as the items, and `force` would
    # offer to replace the items file.
    order = (
        "train takes the folder first: train(out, items, events), or by keyword: "
        "train(items=..., events=..., out=...)"
    )
    if not is_path(out):
        raise UserInputError(f"out: give the model folder, got {type(out).__name__}; {order}")
    if Path(out).is_file():
        raise UserInputError(f"out: {out} is a file, not a model folder; {order}")
    columns = {
        "id_col": id_col, "title_col": title_col, "text_cols": text_cols,
        "user_col": user_col, "item_col": item_col, "time_col": time_col,
        "rating_col": rating_col, "min_rating": min_rating, "kind_col": kind_col,
        "kinds": kinds,
    }  # fmt: skip
    settings = _settings(
        model, fine_tune, encoder_epochs, tower_epochs, tower_max_examples,
        ranker_max_requests, min_events, cooc_max_history, device,
    )  # fmt: skip
    with _data(items, events, sample, columns, filter_cols) as data:
        summary = train_model(
            Path(out),
            data,
            settings,
            allow_network=allow_network,
            item_noun=item_noun,
            force=force,
        )
    return _as_printed(summary)


@_keywords
def evaluate_models(
    items: Data | None = None,
    events: Data | None = None,
    *,
    sample: bool = False,
    id_col: str = "item_id",
    title_col: str = "title",
    text_cols: str | Sequence[str] = ("description", "genres"),
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    rating_col: str | None = None,
    min_rating: float | None = None,
    kind_col: str | None = None,
    kinds: str | Sequence[str] | None = None,
    model: str | PathLike = "default",
    fine_tune: bool = True,
    encoder_epochs: float = 1.0,
    tower_epochs: int = 5,
    tower_max_examples: int | None = _TOWER_MAX_EXAMPLES,
    ranker_max_requests: int = _RANKER_MAX_REQUESTS,
    min_events: int = 3,
    cooc_max_history: int | None = _COOC_MAX_HISTORY,
    allow_network: bool = False,
    max_test_requests: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Leave-last-out evaluation of every baseline, the two-tower and the final ranker, each
    ranking the whole catalogue (nothing is written): ``recommend eval --json``'s report,
    ``models`` (each one's ``all``, ``cold_items``, ``short_users`` ... figures) and the
    headline (``ndcg10``, ``best_baseline``, ``ratio``, ``cold_recall10`` ...). The arguments
    are :func:`train`'s; ``max_test_requests``: score a seeded sample of that many test
    requests. Not named ``evaluate``: that is a module of this package, and would replace the
    function once imported."""
    from tunesmith_recommend.workflow import evaluate_models as run

    if max_test_requests is not None and (
        isinstance(max_test_requests, bool)
        or not isinstance(max_test_requests, int)
        or max_test_requests < 1
    ):
        raise UserInputError(
            f"max_test_requests must be a whole number of at least 1, got {max_test_requests!r}"
        )
    columns = {
        "id_col": id_col, "title_col": title_col, "text_cols": text_cols,
        "user_col": user_col, "item_col": item_col, "time_col": time_col,
        "rating_col": rating_col, "min_rating": min_rating, "kind_col": kind_col,
        "kinds": kinds,
    }  # fmt: skip
    settings = _settings(
        model, fine_tune, encoder_epochs, tower_epochs, tower_max_examples,
        ranker_max_requests, min_events, cooc_max_history, device,
    )  # fmt: skip
    with _data(items, events, sample, columns) as data:
        report = run(
            data, settings, allow_network=allow_network, max_test_requests=max_test_requests
        )
    return _as_printed(report)


@_keywords
def load(path: PathLike, *, device: str = "auto", reload: str = "background") -> RecommendModel:
    """The model folder at ``path`` (from ``recommend train``), loaded once for many
    requests, as ``tunesmith.load`` loads a core model; ``device``: where the item encoder
    runs when a text query loads it.

    ``reload``: how the object picks up the folder rewritten by ``add-items``, ``add-events``
    or ``train --force`` run elsewhere (a cron job, a terminal). ``"background"`` (the
    default, for a web app): a request that notices starts loading the new version in a
    thread and is answered, as are the requests after it, from the old one until the new one
    is loaded; ``"call"``: that request loads it (a notebook's next call sees the update);
    ``"never"``: the version loaded now serves for the life of the object. Updates made
    through the object itself (:meth:`RecommendModel.add_events`) are loaded by that call."""
    from tunesmith.devices import check_device
    from tunesmith.reloading import check_reload_mode
    from tunesmith_recommend.reload import model_versions

    check_device(device)
    check_reload_mode(reload)
    return RecommendModel(model_versions(Path(path), device, reload))


class RecommendModel:
    """A loaded recommend model: recommendations for a known user, for liked items or for a
    text, similar items and text search, each the ``top_k`` best (10 unless told; ``k=`` is
    read as ``top_k``, the name the core's ``Model.predict`` uses). Made by :func:`load`.
    Each takes ``where=``, the commands' ``--where`` filters on the fields ``train`` kept
    (``filter_cols``): ``"price<20"``, a list of conditions that must all hold, or a dict of
    field values (``{"category": "books"}``); a filter that leaves nothing raises
    :class:`~tunesmith_recommend.filters.NothingMatches` (a ``UserInputError``). Retired items
    (:meth:`retire`) are never returned.

    When another process rewrites the folder (``add-events`` ...), the new version is loaded
    as :func:`load`'s ``reload`` says; each request is answered wholly from one version.
    :meth:`refresh` loads it at once, :attr:`reload_status` says which version serves."""

    def __init__(self, versions: Any) -> None:
        """Serve the model a :class:`~tunesmith.reloading.Reloading` holds (see
        :func:`tunesmith_recommend.reload.model_versions`); use :func:`load`."""
        self._versions = versions

    @property
    def _recommender(self) -> Any:
        """The version serving now."""
        return self._versions.value

    def _current(self) -> Any:
        """The version to answer one request from, read once per request so that its answer
        comes from one version (see :func:`load`'s ``reload``: a notebook or a web app keeps
        the object open across a daily update, and would go on recommending from yesterday's
        events)."""
        return self._versions.get()

    def refresh(self) -> bool:
        """Load the folder now if it was rewritten since the version serving (after a load
        under way in the background); True when a new version serves from now on. A version
        that failed to load is not tried again until the folder changes again."""
        return self._versions.refresh()

    @property
    def reload_status(self) -> dict[str, Any]:
        """Which version serves: ``mode`` (``load``'s ``reload``), ``generation`` (1 for the
        one :func:`load` read, one more for each reload), ``loaded_at`` (ISO 8601, UTC),
        ``loading`` (a background load under way) and ``error`` (why the newest version on
        disk could not be loaded, the old one serving; None after a good load)."""
        return self._versions.status()

    @property
    def path(self) -> Path:
        """The model folder."""
        return Path(self._recommender.path)

    def __repr__(self) -> str:
        return f"RecommendModel({str(self.path)!r})"

    @_keywords
    def for_user(
        self, user: str, top_k: int = TOP_K, *, k: int | None = None, where: Any = None
    ) -> list[dict[str, Any]]:
        """The top ``top_k`` items for a user of the training events, none they have seen, each
        with ``because`` (the history items behind it and their share):
        ``recommend for-user USER --json``'s ``items``."""
        asked = _top_k(top_k, k)
        found = self._current().for_user(_text(user, "user id"), asked, where=_where(where))
        return _records(found)

    @_keywords
    def for_liked(
        self,
        items: str | Iterable[str],
        top_k: int = TOP_K,
        *,
        k: int | None = None,
        where: Any = None,
    ) -> list[dict[str, Any]]:
        """The top ``top_k`` items for a new user who liked ``items`` (ids, in the order liked):
        ``recommend for-user --liked ITEM ... --json``'s ``items``."""
        liked = _item_ids(items)
        return _records(self._current().for_liked(liked, _top_k(top_k, k), where=_where(where)))

    @_keywords
    def for_query(
        self, text: str, top_k: int = TOP_K, *, k: int | None = None, where: Any = None
    ) -> list[dict[str, Any]]:
        """The top ``top_k`` items for a new user who describes what they want:
        ``recommend for-user --query TEXT --json``'s ``items``."""
        asked = _top_k(top_k, k)
        found = self._current().for_query(_text(text, "query"), asked, where=_where(where))
        return _records(found)

    @_keywords
    def similar(
        self, item: str, top_k: int = TOP_K, *, k: int | None = None, where: Any = None
    ) -> list[dict[str, Any]]:
        """The ``top_k`` items nearest ``item`` in the item tower (items without events too):
        ``recommend similar ITEM --json``'s ``items``."""
        asked = _top_k(top_k, k)
        found = self._current().similar(_text(item, "item id"), asked, where=_where(where))
        return _records(found)

    @_keywords
    def search(
        self, text: str, top_k: int = TOP_K, *, k: int | None = None, where: Any = None
    ) -> list[dict[str, Any]]:
        """The ``top_k`` items whose text best matches ``text`` (the item encoder alone):
        ``recommend search TEXT --json``'s ``items``."""
        asked = _top_k(top_k, k)
        found = self._current().search(_text(text, "search text"), asked, where=_where(where))
        return _records(found)

    @_keywords
    def explain(
        self, recommendation: dict[str, Any], *, query: str | None = None
    ) -> dict[str, Any] | None:
        """Which words of a recommended item matched: a record from :meth:`for_user` or
        :meth:`for_liked` against the liked items it came from, or one from :meth:`for_query`
        against its ``query`` (``for-user --explain --json``'s ``words``); ``None`` when there
        is nothing to explain it by."""
        from tunesmith_recommend.explain import explain_first
        from tunesmith_recommend.model import Recommendation

        if not isinstance(recommendation, dict) or "item_id" not in recommendation:
            raise UserInputError(
                "recommendation: give one record of for_user, for_liked or for_query"
            )
        recommender = self._current()
        item_id = _text(recommendation["item_id"], "item id")
        recommender.positions([item_id])  # an item of another model: one line
        first = Recommendation(
            item_id,
            str(recommendation.get("title", "")),
            float(recommendation.get("score", 0.0)),
            list(recommendation.get("because") or []),
        )
        explanation = explain_first(
            recommender, first, None if query is None else _text(query, "query")
        )
        return None if explanation is None else explanation.to_dict()

    @_keywords
    def add_items(
        self,
        items: Data,
        *,
        id_col: str | None = None,
        title_col: str | None = None,
        text_cols: str | Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Add new items (a CSV, TSV, JSONL, JSON, Parquet or ``.xlsx`` file, or a DataFrame,
        records or columns, as :func:`train` takes them) to the model folder, recommendable at
        once from their text alone: ``recommend add-items --json`` (``model_dir``, ``added``,
        ``items`` now). The columns default to those ``train`` read; this object loads the
        new version before returning, so it serves the new items from its next call."""
        from tunesmith.python_data import data_file
        from tunesmith_recommend.workflow import add_items_from, added_item_columns

        id_col, title_col, fields = added_item_columns(self.path, id_col, title_col, text_cols)
        # and the fields the model filters on (train's filter_cols), which add-items reads
        kept = list(self._recommender.fields.types)
        columns = list(dict.fromkeys([id_col, title_col, *fields, *kept]))
        with data_file(items, what="items", columns=columns) as path:
            added = add_items_from(
                self.path,
                path,
                id_col=id_col,
                title_col=title_col,
                text_cols=fields,
                device=self._recommender.device,
            )
        self.refresh()  # this call pays the load: the next request serves the new items
        return added

    @_keywords
    def add_events(
        self,
        events: Data,
        *,
        user_col: str | None = None,
        item_col: str | None = None,
        time_col: str | None = None,
        rating_col: str | None = None,
        kind_col: str | None = None,
    ) -> dict[str, Any]:
        """Add new events (a file, or a DataFrame, records or columns, as :func:`train` takes
        them) to the model folder without retraining it (new users become known, purchases
        are not recommended back): ``recommend add-events --json`` (``added``,
        ``already_in_model``, ``new_users``, ``users``, ``events``, ``newest_event`` ...). An
        event the model holds already (same user, item and time) adds nothing. The columns
        default to those ``train`` read, the threshold and kinds are the model's own; this
        object loads the new version before returning, so it serves the new events from its
        next call."""
        from tunesmith.io import read_json_object
        from tunesmith.python_data import data_file
        from tunesmith_recommend.updates import EventColumns, add_events, columns_for

        given = EventColumns(user_col, item_col, time_col, rating_col, None, kind_col, None)
        meta = read_json_object(self.path / "meta.json") if self.path.is_dir() else None
        read = columns_for(meta or {}, given, self.path)  # what add_events will read
        kept = _event_columns(read.user, read.item, read.time, read.rating, read.kind)
        with data_file(events, what="events", columns=kept) as path:
            day = add_events(self.path, path, given).to_json(self.path)
        self.refresh()  # this call pays the load: the next request serves the new events
        return day

    def _change_retired(self, items: object, restore: bool) -> dict[str, Any]:
        from tunesmith_recommend.retire import Named, change_retired

        named = [Named(item) for item in _item_ids(items)]
        done = change_retired(self.path, named, restore=restore).to_json(self.path)
        self.refresh()  # this call pays the load: the next request leaves them out (or in)
        return done

    @_keywords
    def retire(self, items: str | Iterable[str]) -> dict[str, Any]:
        """Never recommend ``items`` (ids: sold out, withdrawn, recalled) again, without
        retraining: ``recommend retire --item ... --json`` (``retired``, ``already_retired``,
        ``retired_items`` in all). They stay in users' histories. This object serves the
        change from its next call."""
        return self._change_retired(items, restore=False)

    @_keywords
    def restore(self, items: str | Iterable[str]) -> dict[str, Any]:
        """Recommend retired ``items`` again: ``recommend restore --item ... --json``
        (``restored``, ``not_retired``, ``retired_items``)."""
        return self._change_retired(items, restore=True)
