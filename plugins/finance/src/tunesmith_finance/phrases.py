"""Many whole-word phrases (aliases, keywords) found in a text at the cost of a few.

One alternation of every alias is what Python's ``re`` is slowest at: it tries each branch at
each word of the text, so 1,400 aliases of an S&P 500 rules file matched 31 headlines a second,
a tenth of what the model scores. Here each phrase is filed under its first word, folded as the
case-insensitive match folds case, and a text's words are looked up in that table: only the
few phrases starting with one of its words are tried, each by its own small pattern, which
keeps the exact matching rules of the one alternation (case, runs of white space, whole words).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

_WORD = re.compile(r"\w+")
#: Characters ``re``'s case-insensitive match takes as equal that :func:`_fold_char` would
#: otherwise keep apart (its extra cases, beyond one lower-case form).
_FOLD_FIXES = {"\u1fd3": "\u0390", "\u1fe3": "\u03b0", "\ufb06": "\ufb05"}


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """One character as every character ``re.IGNORECASE`` matches it with folds: ``ſ`` and
    ``s``, ``İ``/``ı`` and ``i``, the Kelvin sign and ``k``."""
    low = char.lower()[0]  # "İ" lowers to "i" and a combining dot
    up = low.upper()
    folded = up.lower() if len(up) == 1 and len(up.lower()) == 1 else low
    return _FOLD_FIXES.get(folded, folded)


def fold(word: str) -> str:
    """``word`` with each character folded as the case-insensitive match folds it (same
    length; ``str.lower`` alone would miss ``ſ`` for ``s``)."""
    if word.isascii():
        return word.lower()
    return "".join(_fold_char(c) for c in word)


#: A text's runs of word characters, folded, with where each starts.
Words = list[tuple[int, str]]


def words_of(text: str) -> Words:
    """The runs of word characters of ``text``, folded (:func:`fold`), with their positions:
    what a :class:`PhraseIndex` looks up, computed once for several indexes."""
    if text.isascii():
        return [(m.start(), m.group()) for m in _WORD.finditer(text.lower())]
    return [(m.start(), fold(m.group())) for m in _WORD.finditer(text)]


class PhraseIndex:
    """Phrases, each a compiled pattern anchored where it starts, filed under its first word.

    ``entries`` are ``(forms_pattern, first_words)`` in priority order: ``forms_pattern``
    matches the phrase at a position (without the check that no word character precedes it),
    ``first_words`` its spellings' leading runs of word characters, or the first character of
    a spelling that starts with another character (``&Co``).
    """

    def __init__(self, entries: Iterable[tuple[str, Iterable[str]]]) -> None:
        self._sources: list[str] = []
        self._compiled: list[Any] = []
        by_word: dict[str, list[int]] = {}
        by_char: dict[str, list[int]] = {}
        for index, (source, starts) in enumerate(entries):
            self._sources.append(source)
            self._compiled.append(None)
            for start in dict.fromkeys(starts):
                word = _WORD.match(start)
                table, key = (by_word, word.group()) if word else (by_char, start[:1])
                table.setdefault(fold(key), []).append(index)
        self._by_word = {k: sorted(set(v)) for k, v in by_word.items()}
        self._by_char = {k: sorted(set(v)) for k, v in by_char.items()}
        # Where a phrase that starts with a sign can start: that sign, not after a word.
        self._sign_starts = (
            re.compile(
                r"(?<!\w)[" + "".join(re.escape(c) for c in self._by_char) + "]", re.IGNORECASE
            )
            if self._by_char
            else None
        )

    def __len__(self) -> int:
        return len(self._sources)

    def _pattern(self, index: int) -> Any:
        # Compiled when a text first has a word it may start with: most never are.
        pattern = self._compiled[index]
        if pattern is None:
            pattern = self._compiled[index] = re.compile(self._sources[index], re.IGNORECASE)
        return pattern

    def _starts(self, text: str, words: Words | None) -> list[tuple[int, list[int]]]:
        """Positions where a phrase may start, left to right, with the phrases to try there."""
        if not self._sources:
            return []
        by_word = self._by_word
        found = [
            (position, tried)
            for position, word in (words_of(text) if words is None else words)
            if (tried := by_word.get(word))
        ]
        if self._sign_starts is not None:
            found += [
                (m.start(), tried)
                for m in self._sign_starts.finditer(text)
                if (tried := self._by_char.get(fold(m.group())))
            ]
            found.sort()
        return found

    def scan(self, text: str, words: Words | None = None) -> Iterator[int]:
        """The phrases found left to right, none overlapping another, each the first in
        priority order that matches where it starts (what ``finditer`` of the alternation of
        all of them, in that order, finds); ``words``: :func:`words_of` the text, if known."""
        end = 0
        for position, candidates in self._starts(text, words):
            if position < end:
                continue
            for index in candidates:
                match = self._pattern(index).match(text, position)
                if match:
                    end = match.end()
                    yield index
                    break

    def present(self, text: str, words: Words | None = None) -> set[int]:
        """Every phrase found anywhere in ``text``, overlapping ones too."""
        found: set[int] = set()
        for position, candidates in self._starts(text, words):
            for index in candidates:
                if index not in found and self._pattern(index).match(text, position):
                    found.add(index)
        return found
