"""The plugin from Python: open a trained model and ask it for recommendations.

Each method runs what its command runs (``recommend for-user``, ``similar``, ``search``) and
returns the ``items`` of the command's ``--json``: a list of records (``item_id``,
``title``, ``score``, ``because``), best first, which ``pandas.DataFrame(records)`` makes a
table. A mistake is the :class:`~tunesmith.errors.UserInputError` line the command prints
after ``Error:``. Nothing heavy is imported until a function runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError

PathLike = str | Path


def _text(value: object, what: str) -> str:
    """A text argument; anything else is one line, not a tokenizer's ``TypeError``."""
    from tunesmith.data.limits import cli_text

    if not isinstance(value, str):
        raise UserInputError(f"the {what} must be a string, got {type(value).__name__}")
    return cli_text(value, f"the {what}")


def _k(k: object) -> int:
    """How many items, at least 1, as ``-k`` takes it."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UserInputError(f"k must be a whole number of at least 1, got {k!r}")
    return k


def _records(results: list[Any]) -> list[dict[str, Any]]:
    return [r.to_json() for r in results]


def load(model_dir: PathLike, *, device: str = "auto") -> RecommendModel:
    """The model folder ``model_dir`` (from ``recommend train``), loaded once for many
    requests; ``device``: where the item encoder runs when a text query loads it."""
    from tunesmith.devices import check_device
    from tunesmith_recommend.model import Recommender

    check_device(device)
    return RecommendModel(Recommender(Path(model_dir), device=device))


class RecommendModel:
    """A loaded recommend model: recommendations for a known user, for liked items or for a
    text, similar items and text search. Made by :func:`load`."""

    def __init__(self, recommender: Any) -> None:
        """Wrap a :class:`~tunesmith_recommend.model.Recommender`; use :func:`load`."""
        self._recommender = recommender

    @property
    def path(self) -> Path:
        """The model folder."""
        return Path(self._recommender.path)

    def __repr__(self) -> str:
        return f"RecommendModel({str(self.path)!r})"

    def for_user(self, user: str, k: int = 10) -> list[dict[str, Any]]:
        """The top ``k`` items for a user of the training events, none they have seen, each
        with ``because`` (the history items behind it and their share):
        ``recommend for-user USER --json``'s ``items``."""
        return _records(self._recommender.for_user(_text(user, "user id"), _k(k)))

    def for_liked(self, items: str | Sequence[str], k: int = 10) -> list[dict[str, Any]]:
        """The top ``k`` items for a new user who liked ``items`` (ids, in the order liked):
        ``recommend for-user --liked ITEM ... --json``'s ``items``."""
        ids = [items] if isinstance(items, str) else items
        if not isinstance(ids, Sequence):
            raise UserInputError(f"items: give item ids, got {type(items).__name__}")
        liked = [_text(item, "item id") for item in ids]
        return _records(self._recommender.for_liked(liked, _k(k)))

    def for_query(self, text: str, k: int = 10) -> list[dict[str, Any]]:
        """The top ``k`` items for a new user who describes what they want:
        ``recommend for-user --query TEXT --json``'s ``items``."""
        return _records(self._recommender.for_query(_text(text, "query"), _k(k)))

    def similar(self, item: str, k: int = 10) -> list[dict[str, Any]]:
        """The ``k`` items nearest ``item`` in the item tower (items without events too):
        ``recommend similar ITEM --json``'s ``items``."""
        return _records(self._recommender.similar(_text(item, "item id"), _k(k)))

    def search(self, text: str, k: int = 10) -> list[dict[str, Any]]:
        """The ``k`` items whose text best matches ``text`` (the item encoder alone):
        ``recommend search TEXT --json``'s ``items``."""
        return _records(self._recommender.search(_text(text, "search text"), _k(k)))

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
        item_id = _text(recommendation["item_id"], "item id")
        self._recommender.positions([item_id])  # an item of another model: one line
        first = Recommendation(
            item_id,
            str(recommendation.get("title", "")),
            float(recommendation.get("score", 0.0)),
            list(recommendation.get("because") or []),
        )
        explanation = explain_first(
            self._recommender, first, None if query is None else _text(query, "query")
        )
        return None if explanation is None else explanation.to_dict()
