"""Topics and tickers from a small rules file: keywords, ``$AAPL`` cashtags, aliases, regexes.

The file is TOML (or JSON with the same shape)::

    [tickers.HLXB]
    aliases = ["Helix Bank"]          # names that mean this ticker in a text

    [topics.banking]
    keywords = ["bank", "liquidity"]  # whole words or phrases
    cashtags = ["HLXB"]               # tickers that belong to the topic
    regexes = ['\\bcredit line\\b']    # Python regular expressions, any case

A keyword or alias in lower case matches in any case; one with a capital letter is a name
(``Apple``, ``AAPL``, ``Fed``) and matches as written or in capitals (an all-caps headline), so
that ``Apple`` is not found in "apple pie" nor ``Fed`` in "fed up" (:func:`is_name`).

A regex searches each text for at most :data:`REGEX_SECONDS`: one that backtracks without end on
a text (``(a|aa)+$``, or a plain-looking ``(\\w+\\s?)+bank`` under Python's ``re``) is one
error naming it, not an ingest or a watch that hangs on a hostile headline.

A ``$SYMBOL`` cashtag in a text is always a ticker, listed in the file or not. A document gets
every topic whose rules match, plus the topic it names itself; a named topic that the file does
not list is kept and reported as unknown (see :meth:`Rules.assign`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError

#: ``$AAPL``, ``$BRK.B``: a dollar sign not inside a word, a letter, then up to 5 more.
CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{0,5}(?:\.[A-Za-z])?)\b")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
#: Longest one topic regex may search one text, in seconds.
REGEX_SECONDS = 1.0


class RegexTimeoutError(UserInputError):
    """A rules file's regex ran over :data:`REGEX_SECONDS` on one text."""


def _compile_regex(pattern: str) -> Any:
    """``pattern`` compiled case-insensitively by the ``regex`` module (a transformers
    dependency, Python ``re`` compatible), whose searches take a timeout and which avoids much of
    ``re``'s exponential backtracking."""
    import regex

    return regex.compile(pattern, regex.IGNORECASE | regex.VERSION0)


def is_name(word: str) -> bool:
    """True for a keyword or alias with a capital letter (``Apple``, ``AAPL``, ``Fed``): a
    name, matched as written or in capitals (an all-caps headline), not in any case (``apple
    pie``, ``fed up``). A word in lower case matches in any case."""
    return word != word.lower()


def _spellings(word: str) -> list[str]:
    """The forms a keyword or alias matches in (case aside for a lower-case one)."""
    return list(dict.fromkeys([word, word.upper()])) if is_name(word) else [word]


def _alternatives(forms: Iterable[str], names: bool) -> str:
    """``forms`` as one regex alternation (runs of spaces match any white space); scoped
    case-sensitive for a name's forms inside the rules' case-insensitive patterns."""
    body = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in forms)
    return f"(?-i:{body})" if names else body


def _words_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern matching any of ``words`` as whole words, longest first: a lower-case word in
    any case, a name (:func:`is_name`) as written or in capitals."""
    unique = sorted({w.strip() for w in words if w.strip()}, key=lambda w: (-len(w), w))
    if not unique:
        return None
    body = "|".join(_alternatives(_spellings(w), is_name(w)) for w in unique)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


@dataclass
class TopicRule:
    """How one topic is recognised."""

    name: str
    keywords: re.Pattern[str] | None = None
    cashtags: frozenset[str] = frozenset()
    #: Compiled by :func:`_compile_regex` (their searches take a timeout).
    regexes: list[Any] = field(default_factory=list)
    source: str = "rules"

    def matches(self, text: str, tickers: Iterable[str]) -> bool:
        """True when a keyword, one of the topic's tickers or a regex is found; a regex that
        runs over :data:`REGEX_SECONDS` is a :class:`RegexTimeoutError`."""
        if self.cashtags and not self.cashtags.isdisjoint(tickers):
            return True
        if self.keywords is not None and self.keywords.search(text):
            return True
        for pattern in self.regexes:
            try:
                if pattern.search(text, timeout=REGEX_SECONDS):
                    return True
            except TimeoutError:
                raise RegexTimeoutError(
                    f"{self.source}: topics.{self.name}.regexes: {pattern.pattern!r} ran over "
                    f"{REGEX_SECONDS:g} s on one text of {len(text):,} characters (it "
                    "backtracks without end); simplify it, e.g. no repeated group of repeats"
                ) from None
        return False


@dataclass
class Assignment:
    """The topics and tickers of one document, and any topic it named that the rules lack."""

    topics: list[str]
    tickers: list[str]
    unknown_topics: list[str]


@dataclass
class Rules:
    """Topic and ticker rules; ``Rules()`` (no file) finds cashtags and keeps named topics."""

    topics: dict[str, TopicRule] = field(default_factory=dict)
    #: alias -> ticker, or the tickers an alias names (``Alphabet`` is both GOOG and GOOGL).
    aliases: dict[str, str | list[str]] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        # One named group per alias, so that a match names its alias directly: looking the
        # matched text up lower-cased fails when the case-insensitive match and str.lower()
        # disagree (a Turkish "İ" matches "i" but lowers to two characters; "ſ" matches "s").
        # A lower-case alias matches in any case; a name (``Apple``) as written or in capitals.
        # Aliases that match the same texts share a group; and a group whose texts another
        # alias matches too (``APPLE`` and ``Apple`` and ``apple``) comes first and carries that
        # alias's tickers as well: as separate groups only the first would ever match there.
        groups: dict[tuple[bool, str, frozenset[str]], dict[str, None]] = {}
        for alias, named in self.aliases.items():
            alias = re.sub(r"\s+", " ", alias.strip())
            if not alias:
                continue
            name = is_name(alias)
            forms = frozenset(_spellings(alias)) if name else frozenset([alias.lower()])
            group = groups.setdefault((name, alias.lower(), forms), {})
            for ticker in [named] if isinstance(named, str) else named:
                group[ticker] = None

        def covers(wide: tuple[bool, str, frozenset[str]], narrow: tuple[Any, ...]) -> bool:
            # Every text ``narrow`` matches, ``wide`` matches too.
            if wide[1] != narrow[1]:
                return False
            return not wide[0] or (narrow[0] and narrow[2] <= wide[2])

        keys = sorted(groups, key=lambda k: (-len(k[1]), k[1], not k[0], len(k[2]), sorted(k[2])))
        self._alias_tickers = [
            list(dict.fromkeys(t for wide in keys if covers(wide, key) for t in groups[wide]))
            for key in keys
        ]
        self._alias_pattern = (
            re.compile(
                r"(?<!\w)(?:"
                + "|".join(
                    f"(?P<a{i}>{_alternatives(sorted(key[2], key=len, reverse=True), key[0])})"
                    for i, key in enumerate(keys)
                )
                + r")(?!\w)",
                re.IGNORECASE,
            )
            if keys
            else None
        )

    @property
    def known_topics(self) -> list[str]:
        """Topic names the rules define."""
        return sorted(self.topics)

    def tickers(self, text: str, given: Iterable[str] = ()) -> list[str]:
        """Tickers named by the document, by cashtag and by alias, upper-case, in first-seen order."""
        found: dict[str, None] = {}
        for ticker in given:
            ticker = str(ticker).strip().lstrip("$").upper()
            if ticker:
                found.setdefault(ticker, None)
        for match in CASHTAG.finditer(text):
            found.setdefault(match.group(1).upper(), None)
        if self._alias_pattern is not None:
            for match in self._alias_pattern.finditer(text):
                for ticker in self._alias_tickers[int(str(match.lastgroup)[1:])]:
                    found.setdefault(ticker, None)
        return list(found)

    def assign(
        self, text: str, *, topic: str | Iterable[str] | None = None, tickers: Iterable[str] = ()
    ) -> Assignment:
        """Topics and tickers of one document.

        A topic the document names itself is always kept (lower-cased); when the rules define
        topics and it is not one of them, it is also listed in ``unknown_topics`` so that ingest
        can report it.
        """
        found_tickers = self.tickers(text, tickers)
        named = [topic] if isinstance(topic, str) else list(topic or [])
        topics: dict[str, None] = {}
        unknown: list[str] = []
        for name in named:
            name = str(name).strip().lower()
            if not name:
                continue
            topics.setdefault(name, None)
            if self.topics and name not in self.topics:
                unknown.append(name)
        for name, rule in self.topics.items():
            if name not in topics and rule.matches(text, found_tickers):
                topics[name] = None
        return Assignment(sorted(topics), found_tickers, unknown)


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserInputError(f"{where}: expected a list of strings")
    return value


def _section(data: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    """A top-level section as a table; ``topics = 5`` or ``tickers = ["A"]`` is one clear error."""
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserInputError(f"{source}: {name}: expected a table of {name}, e.g. [{name}.NAME]")
    return value


def rules_from_dict(data: dict[str, Any], source: str = "rules") -> Rules:
    """Build :class:`Rules` from the parsed file; errors name the file and the entry."""
    unknown = set(data) - {"topics", "tickers"}
    if unknown:
        raise UserInputError(
            f"{source}: unknown section(s) {', '.join(sorted(unknown))}; expected topics, tickers"
        )
    aliases: dict[str, list[str]] = {}
    for ticker, entry in _section(data, "tickers", source).items():
        if not _NAME.match(ticker):
            raise UserInputError(f"{source}: tickers.{ticker}: not a ticker symbol")
        entry = entry if isinstance(entry, dict) else {"aliases": entry}
        # A misspelt key (``alias``) would otherwise silently match nothing.
        extra = set(entry) - {"aliases"}
        if extra:
            raise UserInputError(
                f"{source}: tickers.{ticker}: unknown key(s) {', '.join(sorted(extra))}; "
                "expected aliases"
            )
        for alias in _strings(entry.get("aliases"), f"{source}: tickers.{ticker}.aliases"):
            aliases.setdefault(re.sub(r"\s+", " ", alias.strip()), []).append(ticker.upper())
    # Topic names are case-insensitive: [topics.Banking] and [topics.banking] are one topic
    # with the rules of both (the second table would otherwise replace the first silently).
    keywords: dict[str, list[str]] = {}
    topics: dict[str, TopicRule] = {}
    for name, entry in _section(data, "topics", source).items():
        where = f"{source}: topics.{name}"
        if not isinstance(entry, dict):
            raise UserInputError(f"{where}: expected a table with keywords, cashtags, regexes")
        extra = set(entry) - {"keywords", "cashtags", "regexes"}
        if extra:
            raise UserInputError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        regexes = []
        for pattern in _strings(entry.get("regexes"), f"{where}.regexes"):
            try:
                re.compile(pattern)  # what the file promises: Python regular expressions
                regexes.append(_compile_regex(pattern))
            except (re.error, ValueError) as exc:  # regex.error is a ValueError
                raise UserInputError(f"{where}.regexes: {pattern!r} is not valid: {exc}") from None
        cashtags = frozenset(
            t.strip().lstrip("$").upper()
            for t in _strings(entry.get("cashtags"), f"{where}.cashtags")
        )
        key = name.lower()
        words = keywords.setdefault(key, [])
        words += _strings(entry.get("keywords"), f"{where}.keywords")
        before = topics.get(key, TopicRule(name=key))
        topics[key] = TopicRule(
            name=key,
            keywords=_words_pattern(words),
            cashtags=before.cashtags | cashtags,
            regexes=before.regexes + regexes,
            source=source,
        )
    return Rules(topics=topics, aliases=aliases, source=source)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: TOML refuses a repeated key, and json would
    keep the last one silently (a topic written twice would lose its first rules)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"the key {key!r} is repeated in one object")
        data[key] = value
    return data


def load_rules(path: str | Path | None) -> Rules:
    """Read a rules file (``.toml`` or ``.json``); ``None`` gives empty rules."""
    if path is None:
        return Rules()
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"--rules {path}: no such file")
    kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserInputError(f"--rules {path}: not UTF-8 text") from None
    try:
        if kind == "JSON":
            data = json.loads(text, object_pairs_hook=_unique_keys)
        else:
            import tomllib

            data = tomllib.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError both are
        raise UserInputError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a table with topics and tickers")
    return rules_from_dict(data, source=str(path))
