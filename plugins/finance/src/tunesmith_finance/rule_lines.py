"""Which line of a rules file writes an entry, so that an error names it (``topics.toml:212``).

``tomllib`` and ``json`` give lines for a file they cannot parse, not for an entry that parses
but is wrong (a regex that does not compile, an unknown key); with 500 tickers and 50 topics the
entry's name alone leaves the analyst searching. Found by reading the text again, as the
entry is written in the usual forms (a ``[topics.NAME]`` table, ``"NAME": {`` in JSON); an
entry written otherwise gets no line, never a wrong one from a guess elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

#: Finds the 1-based line of ``(section, name)`` or ``(section, name, key)``, or ``None``.
LineFinder = Callable[[tuple[str, ...]], "int | None"]


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _toml_key(key: str) -> str:
    """``key`` as TOML may write it: bare, or in double or single quotes."""
    return (
        rf"(?:{re.escape(key)}|{re.escape(json.dumps(key, ensure_ascii=False))}|'{re.escape(key)}')"
    )


def toml_lines(text: str) -> LineFinder:
    """Lines of entries in a TOML rules file: the ``[section.name]`` table's header, or the line
    of ``key =`` inside it; a table written inline, under its dotted name."""

    def find(parts: tuple[str, ...]) -> int | None:
        section, name, *key = parts
        header = re.compile(
            rf"^[ \t]*\[[ \t]*{_toml_key(section)}[ \t]*\.[ \t]*{_toml_key(name)}[ \t]*\][ \t]*(?:#.*)?$",
            re.MULTILINE,
        )
        table = header.search(text)
        if table is None:
            dotted = re.compile(
                rf"^[ \t]*(?:{_toml_key(section)}[ \t]*\.[ \t]*)?{_toml_key(name)}[ \t]*[.=]",
                re.MULTILINE,
            )
            found = dotted.search(text)
            return _line(text, found.start()) if found else None
        if not key:
            return _line(text, table.start())
        end = re.compile(r"^[ \t]*\[", re.MULTILINE).search(text, table.end())
        inside = re.compile(rf"^[ \t]*{_toml_key(key[0])}[ \t]*=", re.MULTILINE).search(
            text, table.end(), end.start() if end else len(text)
        )
        return _line(text, (inside or table).start())

    return find


def json_lines(text: str) -> LineFinder:
    """Lines of entries in a JSON rules file: where ``"name":`` is written after
    ``"section":``, and ``"key":`` after that."""

    def find(parts: tuple[str, ...]) -> int | None:
        position = 0
        found = None
        for part in parts:
            found = re.compile(rf"{re.escape(json.dumps(part, ensure_ascii=False))}\s*:").search(
                text, position
            )
            if found is None:
                return None
            position = found.end()
        return _line(text, found.start()) if found else None

    return find
