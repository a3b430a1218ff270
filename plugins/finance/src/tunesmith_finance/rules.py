"""Topics and tickers from a small rules file: keywords, ``$AAPL`` cashtags, aliases, regexes.

The file is TOML (or JSON with the same shape)::

    [tickers.HLXB]
    aliases = ["Helix Bank"]          # names that mean this ticker in a text
    regexes = ['\\bHelix\\W+Bk\\b']    # Python regular expressions, any case

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

A ``$SYMBOL`` cashtag in a text is always a ticker, listed in the file or not (:func:`cashtags`).
Aliases and keywords are found through :class:`~tunesmith_finance.phrases.PhraseIndex`, every
topic's at once, so 500 tickers and 50 topics cost little more than a few. A document gets
every topic whose rules match, plus the topic it names itself; a named topic that the file does
not list is kept and reported as unknown (see :meth:`Rules.assign`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith_finance.phrases import PhraseIndex, Words, words_of
from tunesmith_finance.rule_lines import LineFinder, json_lines, toml_lines

#: ``$AAPL``, ``$BRK.B`` (or ``$BRK-B``): a dollar sign not inside a word, a letter, then up
#: to 5 more, then perhaps a share class; matched in the NFKC form (``＄ＡＡＰＬ`` is ``$AAPL``).
CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{0,5}(?:[.\-][A-Za-z])?)\b")
#: A word (up to white space) that is a web or e-mail address, whose ``$`` is not a cashtag.
_ADDRESS = re.compile(r"(?<!\S)(?:www\.\S*|\S*(?:://|@[a-z0-9\-]+\.[a-z])\S*)", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
#: Longest one topic regex may search one text, in seconds.
REGEX_SECONDS = 1.0


class RegexTimeoutError(UserInputError):
    """A rules file's regex ran over :data:`REGEX_SECONDS` on one text."""


def _search(pattern: Any, text: str, where: str) -> bool:
    """Whether ``pattern`` (:func:`_compile_regex`) is found in ``text`` within
    :data:`REGEX_SECONDS`; over it, a :class:`RegexTimeoutError` naming ``where`` (the rules
    file and the entry, ``desk.toml: topics.guidance.regexes``) and the pattern."""
    try:
        return pattern.search(text, timeout=REGEX_SECONDS) is not None
    except TimeoutError:
        raise RegexTimeoutError(
            f"{where}: {pattern.pattern!r} ran over {REGEX_SECONDS:g} s on one text of "
            f"{len(text):,} characters (it backtracks without end); simplify it, e.g. no "
            "repeated group of repeats"
        ) from None


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
    unique = sorted({_clean(w) for w in words if w.strip()}, key=lambda w: (-len(w), w))
    if not unique:
        return None
    body = "|".join(_alternatives(_spellings(w), is_name(w)) for w in unique)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


def _nfc(text: str) -> str:
    """``text`` composed (NFC), so that an accent typed as a letter of its own still matches."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _clean(word: str) -> str:
    """A keyword or alias as matched: composed, its runs of white space one space."""
    return re.sub(r"\s+", " ", _nfc(word).strip())


#: A keyword or alias as matched: (is a name, lower-case form, the spellings it matches).
_Phrase = tuple[bool, str, frozenset[str]]


def _phrase(word: str) -> _Phrase | None:
    """How ``word`` matches; ``None`` for a blank one."""
    word = _clean(word)
    if not word:
        return None
    name = is_name(word)
    return name, word.lower(), frozenset(_spellings(word)) if name else frozenset([word.lower()])


def _phrase_index(keys: list[_Phrase]) -> PhraseIndex:
    """``keys`` as whole-word phrases, in this order of priority."""
    return PhraseIndex(
        (rf"(?:{_alternatives(sorted(key[2], key=len, reverse=True), key[0])})(?!\w)", key[2])
        for key in keys
    )


#: What a regex cannot keep in an alternation with others: a back-reference or a condition
#: (by number or name), a named group (two may share a name), a flag for the whole pattern.
_ALONE = re.compile(r"\\[1-9]|\\g<|\(\?P[<=>]|\(\?<[A-Za-z_]|\(\?\(|\(\?[a-zA-Z]+\)")


def _union(patterns: list[Any]) -> Any:
    """Every topic regex as one alternation, searched once a text to learn whether any might
    match (each search with a timeout costs about 10 µs on its own, whatever the text); ``None``
    when there are none or one of them cannot share an alternation (:data:`_ALONE`)."""
    if not patterns or any(_ALONE.search(p.pattern) for p in patterns):
        return None
    return _compile_regex("|".join(f"(?:{p.pattern})" for p in dict.fromkeys(patterns)))


def _searches(union: Any, text: str) -> bool:
    """Whether ``union`` may match ``text``: one that runs over its time leaves the answer to
    the topics' own regexes, so that the error names the one that hangs."""
    try:
        return union.search(text, timeout=REGEX_SECONDS) is not None
    except TimeoutError:
        return True


def cashtags(text: str) -> list[str]:
    """The ``$SYMBOL`` cashtags of ``text``, upper-case (``BRK-B`` as ``BRK.B``), in order;
    not a ``$`` inside a web or e-mail address (``https://x.com/$AAPL``)."""
    if "$" not in text and text.isascii():
        return []
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)  # full-width ＄ and letters
    found = list(CASHTAG.finditer(text))
    if not found:
        return []
    addresses = (
        [m.span() for m in _ADDRESS.finditer(text)]
        if "@" in text or "://" in text or "www." in text.lower()
        else []
    )
    return [
        m.group(1).upper().replace("-", ".")
        for m in found
        if not any(start <= m.start() < end for start, end in addresses)
    ]


@dataclass
class TopicRule:
    """How one topic is recognised."""

    name: str
    keywords: re.Pattern[str] | None = None
    cashtags: frozenset[str] = frozenset()
    #: Compiled by :func:`_compile_regex` (their searches take a timeout).
    regexes: list[Any] = field(default_factory=list)
    source: str = "rules"
    #: The keywords ``keywords`` was built from, for :class:`Rules`' one index of them all.
    words: tuple[str, ...] = ()

    def matches(
        self, text: str, tickers: Iterable[str], *, keywords: bool = True, regexes: bool = True
    ) -> bool:
        """True when a keyword, one of the topic's tickers or a regex is found; a regex that
        runs over :data:`REGEX_SECONDS` is a :class:`RegexTimeoutError`. :class:`Rules` passes
        ``keywords``/``regexes`` false when it knows none of them is found (it looks for every
        topic's at once)."""
        if self.cashtags and not self.cashtags.isdisjoint(tickers):
            return True
        if keywords and self.keywords is not None and self.keywords.search(text):
            return True
        where = f"{self.source}: topics.{self.name}.regexes"
        return regexes and any(_search(pattern, text, where) for pattern in self.regexes)


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
    #: ticker -> its regexes (:func:`_compile_regex`), for names no alias list covers
    #: (``Alphabet|Google`` variants, ``\bGOOGL?\b``).
    ticker_regexes: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Each alias is a phrase of its own, so that a match names its alias directly: looking
        # the matched text up lower-cased fails when the case-insensitive match and str.lower()
        # disagree (a Turkish "İ" matches "i" but lowers to two characters; "ſ" matches "s").
        # A lower-case alias matches in any case; a name (``Apple``) as written or in capitals.
        # Aliases that match the same texts share a phrase; and a phrase whose texts another
        # alias matches too (``APPLE`` and ``Apple`` and ``apple``) comes first and carries that
        # alias's tickers as well: as separate phrases only the first would ever match there.
        groups: dict[_Phrase, dict[str, None]] = {}
        for alias, named in self.aliases.items():
            key = _phrase(alias)
            if key is None:
                continue
            group = groups.setdefault(key, {})
            for ticker in [named] if isinstance(named, str) else named:
                group[ticker] = None

        def covers(wide: _Phrase, narrow: _Phrase) -> bool:
            # Every text ``narrow`` matches, ``wide`` matches too.
            if wide[1] != narrow[1]:
                return False
            return not wide[0] or (narrow[0] and narrow[2] <= wide[2])

        keys = sorted(groups, key=lambda k: (-len(k[1]), k[1], not k[0], len(k[2]), sorted(k[2])))
        self._alias_tickers = [
            list(dict.fromkeys(t for wide in keys if covers(wide, key) for t in groups[wide]))
            for key in keys
        ]
        self._alias_index = _phrase_index(keys)
        # Every topic's keywords in one index, each phrase naming the topics that list it;
        # a TopicRule built by hand with a pattern and no words is searched on its own.
        keyword_topics: dict[_Phrase, set[str]] = {}
        for name, rule in self.topics.items():
            for word in rule.words:
                if (key := _phrase(word)) is not None:
                    keyword_topics.setdefault(key, set()).add(name)
        self._keyword_keys = list(keyword_topics)
        self._keyword_topics = [keyword_topics[k] for k in self._keyword_keys]
        self._keyword_index = _phrase_index(self._keyword_keys)
        # Topics a text's words alone cannot decide, the only ones looked at one by one.
        self._checked = [
            (name, rule)
            for name, rule in self.topics.items()
            if rule.cashtags or rule.regexes or (rule.keywords is not None and not rule.words)
        ]
        self._any_regex = _union([p for rule in self.topics.values() for p in rule.regexes])
        # The tickers' regexes likewise: one search a text, then each ticker's only on a hit.
        self._ticker_regexes = [(t, ps) for t, ps in self.ticker_regexes.items() if ps]
        self._any_ticker_regex = _union([p for _t, ps in self._ticker_regexes for p in ps])

    def _words(self, text: str) -> Words:
        # What both indexes look up, found once; nothing to find for rules without phrases.
        return words_of(text) if self._alias_index or self._keyword_index else []

    @property
    def known_topics(self) -> list[str]:
        """Topic names the rules define."""
        return sorted(self.topics)

    def tickers(self, text: str, given: Iterable[str] = ()) -> list[str]:
        """Tickers named by the document, by cashtag and by alias, upper-case, in first-seen order."""
        text = _nfc(text)
        return self._tickers(text, given, self._words(text))

    def _tickers(self, text: str, given: Iterable[str], words: Words) -> list[str]:
        found: dict[str, None] = {}
        for ticker in given:
            ticker = str(ticker).strip().lstrip("$").upper()
            if ticker:
                found.setdefault(ticker, None)
        for ticker in cashtags(text):
            found.setdefault(ticker, None)
        for index in self._alias_index.scan(text, words):
            for ticker in self._alias_tickers[index]:
                found.setdefault(ticker, None)
        if self._ticker_regexes and (
            self._any_ticker_regex is None or _searches(self._any_ticker_regex, text)
        ):
            for ticker, patterns in self._ticker_regexes:
                where = f"{self.source or 'rules'}: tickers.{ticker}.regexes"
                if ticker not in found and any(_search(p, text, where) for p in patterns):
                    found[ticker] = None
        return list(found)

    def assign(
        self, text: str, *, topic: str | Iterable[str] | None = None, tickers: Iterable[str] = ()
    ) -> Assignment:
        """Topics and tickers of one document.

        A topic the document names itself is always kept (lower-cased); when the rules define
        topics and it is not one of them, it is also listed in ``unknown_topics`` so that ingest
        can report it.
        """
        text = _nfc(text)
        words = self._words(text)
        found_tickers = self._tickers(text, tickers, words)
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
        for index in self._keyword_index.present(text, words):
            for name in self._keyword_topics[index]:
                topics.setdefault(name, None)
        regexes = self._any_regex is None or _searches(self._any_regex, text)
        for name, rule in self._checked:
            if name not in topics and rule.matches(
                text, found_tickers, keywords=not rule.words, regexes=regexes
            ):
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


def _regexes(value: Any, where: str) -> list[Any]:
    """A rule's ``regexes`` compiled (:func:`_compile_regex`); one that Python's ``re`` cannot
    compile (what the file promises) is one error naming ``where`` and the pattern."""
    compiled = []
    for pattern in _strings(value, where):
        try:
            re.compile(pattern)
            compiled.append(_compile_regex(pattern))
        except (re.error, ValueError) as exc:  # regex.error is a ValueError
            raise UserInputError(f"{where}: {pattern!r} is not valid: {exc}") from None
    return compiled


def _section(data: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    """A top-level section as a table; ``topics = 5`` or ``tickers = ["A"]`` is one clear error."""
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserInputError(f"{source}: {name}: expected a table of {name}, e.g. [{name}.NAME]")
    return value


def rules_from_dict(
    data: dict[str, Any], source: str = "rules", lines: LineFinder | None = None
) -> Rules:
    """Build :class:`Rules` from the parsed file; errors name the file, the entry and, when
    ``lines`` finds it in the file's text, its line (``topics.toml:212: topics.guidance...``)."""

    def at(*parts: str) -> str:
        line = lines(parts) if lines is not None else None
        return f"{source}:{line}" if line else source

    unknown = set(data) - {"topics", "tickers"}
    if unknown:
        raise UserInputError(
            f"{source}: unknown section(s) {', '.join(sorted(unknown))}; expected topics, tickers"
        )
    aliases: dict[str, list[str]] = {}
    ticker_regexes: dict[str, list[Any]] = {}
    # Ticker symbols are case-insensitive, as cashtags are ($aapl is AAPL): [tickers.AAPL] and
    # [tickers.aapl] are one ticker with the aliases and regexes of both.
    for ticker, entry in _section(data, "tickers", source).items():
        if not _NAME.match(ticker):
            raise UserInputError(f"{at('tickers', ticker)}: tickers.{ticker}: not a ticker symbol")
        entry = entry if isinstance(entry, dict) else {"aliases": entry}
        # A misspelt key (``alias``) would otherwise silently match nothing.
        extra = set(entry) - {"aliases", "regexes"}
        if extra:
            raise UserInputError(
                f"{at('tickers', ticker, min(extra))}: tickers.{ticker}: unknown key(s) "
                f"{', '.join(sorted(extra))}; expected aliases, regexes"
            )
        listed = _strings(
            entry.get("aliases"), f"{at('tickers', ticker, 'aliases')}: tickers.{ticker}.aliases"
        )
        for alias in listed:
            aliases.setdefault(re.sub(r"\s+", " ", alias.strip()), []).append(ticker.upper())
        patterns = _regexes(
            entry.get("regexes"), f"{at('tickers', ticker, 'regexes')}: tickers.{ticker}.regexes"
        )
        ticker_regexes.setdefault(ticker.upper(), []).extend(patterns)
    # Topic names are case-insensitive: [topics.Banking] and [topics.banking] are one topic
    # with the rules of both (the second table would otherwise replace the first silently).
    keywords: dict[str, list[str]] = {}
    topics: dict[str, TopicRule] = {}
    for name, entry in _section(data, "topics", source).items():
        where = f"{at('topics', name)}: topics.{name}"
        if not isinstance(entry, dict):
            raise UserInputError(f"{where}: expected a table with keywords, cashtags, regexes")
        extra = set(entry) - {"keywords", "cashtags", "regexes"}
        if extra:
            raise UserInputError(
                f"{at('topics', name, min(extra))}: topics.{name}: unknown key(s) "
                f"{', '.join(sorted(extra))}"
            )

        def field_(key: str, name: str = name) -> str:
            return f"{at('topics', name, key)}: topics.{name}.{key}"

        regexes = _regexes(entry.get("regexes"), field_("regexes"))
        cashtags = frozenset(
            t.strip().lstrip("$").upper()
            for t in _strings(entry.get("cashtags"), field_("cashtags"))
        )
        key = name.lower()
        words = keywords.setdefault(key, [])
        words += _strings(entry.get("keywords"), field_("keywords"))
        before = topics.get(key, TopicRule(name=key))
        topics[key] = TopicRule(
            name=key,
            keywords=_words_pattern(words),
            words=tuple(words),
            cashtags=before.cashtags | cashtags,
            regexes=before.regexes + regexes,
            source=source,
        )
    return Rules(topics=topics, aliases=aliases, source=source, ticker_regexes=ticker_regexes)


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
    lines = json_lines(text) if kind == "JSON" else toml_lines(text)
    return rules_from_dict(data, source=str(path), lines=lines)
