"""Query-time filters on item fields (``--where category=books --where 'price<20'``).

Serving ranks candidates drawn from the whole catalogue, so a filter is a boolean mask over
the catalogue's positions, applied to the candidates before the top k (and to a full ranking
of the items it allows when too few candidates pass). The fields are those ``train
--filter-cols`` kept (:mod:`~tunesmith_recommend.item_fields`): a number compares with ``=``,
``!=``, ``<``, ``<=``, ``>``, ``>=``; a text with ``=`` and ``!=``, case-blind, ``a|b`` meaning
either, and a list cell (``horror|comedy``) matching when any of its texts does. Several
conditions all hold. A missing cell matches no condition (``!=`` neither): an item without a
price is not "under 20". Each mistake is one :class:`~tunesmith.errors.UserInputError` line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunesmith.errors import UserInputError
from tunesmith_recommend.item_fields import NUMBER

#: ``FIELD OP VALUE``; the two-character operators first, so ``<=`` is not ``<`` and ``=20``
_CONDITION = re.compile(r"^\s*([^=!<>]+?)\s*(==|!=|<=|>=|=|<|>)\s*(.*?)\s*$")
OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
_HOW = "write FIELD=VALUE, FIELD!=VALUE or, for a number, FIELD<VALUE (<=, >, >= too)"


class NothingMatches(UserInputError):
    """A request whose filters (with the retired items and the user's history left out)
    leave no item to return: said, not an empty list."""


@dataclass(frozen=True)
class Condition:
    """One parsed ``--where``: ``field``, ``op`` (:data:`OPERATORS`) and ``value``."""

    text: str
    field: str
    op: str
    value: float | tuple[str, ...]


def _folded(text: str) -> str:
    return text.strip().casefold()


class ItemFields:
    """The catalogue's fields, ready to make masks: numbers as a float array (NaN missing),
    texts as an inverted index (folded text -> positions)."""

    def __init__(self, fields: dict[str, list[Any]], types: dict[str, str], n_items: int):
        self.types = {name: types.get(name, "text") for name in fields}
        self.n_items = n_items
        self.numbers: dict[str, np.ndarray] = {}
        self.texts: dict[str, dict[str, np.ndarray]] = {}
        #: the items with a value in each text field (``!=`` matches no missing cell)
        self.present: dict[str, np.ndarray] = {}
        for name, cells in fields.items():
            if self.types[name] == NUMBER:
                self.numbers[name] = np.asarray(
                    [np.nan if c is None else float(c) for c in cells], dtype=np.float64
                )
                continue
            where: dict[str, list[int]] = {}
            for position, cell in enumerate(cells):
                for text in [cell] if isinstance(cell, str) else cell or []:
                    where.setdefault(_folded(text), []).append(position)
            self.texts[name] = {k: np.unique(v) for k, v in where.items()}
            self.present[name] = np.asarray([bool(c) for c in cells], dtype=bool)

    def parse(self, conditions: Iterable[str]) -> list[Condition]:
        """``--where`` texts as conditions on these fields; a mistake is one line."""
        return [self._parse_one(text) for text in conditions]

    def _parse_one(self, text: str) -> Condition:
        if not isinstance(text, str):
            raise UserInputError(f"where: give conditions as text, got {type(text).__name__}")
        found = _CONDITION.match(text)
        if found is None:
            raise UserInputError(f"--where {text!r}: no comparison; {_HOW}")
        name, op, value = found.group(1).strip(), found.group(2), found.group(3)
        op = "=" if op == "==" else op
        if value.startswith(("=", "!", "<", ">")):
            raise UserInputError(f"--where {text!r}: one comparison per condition; {_HOW}")
        if name not in self.types:
            kept = ", ".join(sorted(self.types))
            raise UserInputError(
                f"--where {text!r}: this model keeps no field {name!r} to filter on "
                + (
                    f"(its fields: {kept})"
                    if kept
                    else "(it keeps none: train it with --filter-cols COLUMN,...)"
                )
            )
        if not value:
            raise UserInputError(f"--where {text!r}: no value after {op!r}; {_HOW}")
        if self.types[name] == NUMBER:
            try:
                number = float(value)
            except ValueError:
                number = float("nan")
            if number != number or number in (float("inf"), float("-inf")):
                raise UserInputError(
                    f"--where {text!r}: {name} is a number in this model, {value!r} is not"
                )
            return Condition(text, name, op, number)
        if op not in ("=", "!="):
            raise UserInputError(
                f"--where {text!r}: {name} is text in this model; compare it with = or != "
                "(a|b for either)"
            )
        texts = tuple(_folded(part) for part in value.split("|") if part.strip())
        if not texts:
            raise UserInputError(f"--where {text!r}: no value after {op!r}; {_HOW}")
        return Condition(text, name, op, texts)

    def mask(self, conditions: list[Condition]) -> np.ndarray:
        """The catalogue positions every condition allows, as a boolean array."""
        allowed = np.ones(self.n_items, dtype=bool)
        for condition in conditions:
            allowed &= self._one_mask(condition)
        return allowed

    def _one_mask(self, condition: Condition) -> np.ndarray:
        if condition.field in self.numbers:
            values = self.numbers[condition.field]
            number = condition.value
            with np.errstate(invalid="ignore"):
                found = {
                    "=": values == number,
                    "!=": (values != number) & ~np.isnan(values),
                    "<": values < number,
                    "<=": values <= number,
                    ">": values > number,
                    ">=": values >= number,
                }[condition.op]
            return found
        index = self.texts[condition.field]
        hit = np.zeros(self.n_items, dtype=bool)
        for text in condition.value:
            hit[index.get(text, np.zeros(0, dtype=np.int64))] = True
        if condition.op == "=":
            return hit
        return self.present[condition.field] & ~hit


def described(conditions: list[Condition]) -> str:
    """The conditions as the user wrote them, for a message: ``category=books, price<20``."""
    return ", ".join(c.text.strip() for c in conditions)
