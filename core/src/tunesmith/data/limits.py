"""The limits every input obeys, and the checks that turn a value past them into one clear line.

Files, fields, JSON nesting and texts have fixed upper bounds (stated in docs/cli.md, "Limits"),
so a hostile or broken file ends in a ``DataError`` naming file, row and column instead of a
``RecursionError``, a ``MemoryError`` or a tokenizer's ``TypeError``. Command-line texts
(``--text``) go through :func:`cli_text`, the one place argv bytes are checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tunesmith.errors import UserInputError

#: Largest data file read (bytes). Files are read whole; past this, split the file.
MAX_FILE_BYTES = 1 << 30
#: Longest field (a CSV/TSV cell) and longest text, in characters. A model reads the first few
#: hundred tokens only, so a longer text is almost certainly a broken file (an unclosed quote).
MAX_FIELD_CHARS = 1_000_000
#: Deepest nesting of JSON arrays and objects in one JSONL line or JSON record.
MAX_JSON_DEPTH = 100
#: Most digits in a JSON integer (Python's own limit on int/str conversion).
MAX_INT_DIGITS = 4300


def lone_surrogate(value: str) -> tuple[int, int] | None:
    """``(character number, code point)`` of the first lone surrogate in ``value`` (1-based),
    or ``None``. Such a "character" is either a JSON escape such as ``"\ud800"`` with no pair,
    or a byte of argv that was not UTF-8 (Python keeps it as U+DC80..U+DCFF); tokenizers, SQLite
    and UTF-8 files all refuse it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start + 1, ord(value[exc.start])
    return None


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be used as a text or a label, or ``None`` when it can."""
    if len(value) > MAX_FIELD_CHARS:
        return f"the text has {len(value):,} characters; the limit is {MAX_FIELD_CHARS:,}"
    found = lone_surrogate(value)
    if found:
        return (
            f"the text holds U+{found[1]:04X} at character {found[0]}, a lone surrogate "
            "that is not a character; write the text as UTF-8"
        )
    return None


def cli_text(value: str, option: str = "--text") -> str:
    """``value`` from the command line, checked: not-UTF-8 bytes and oversized texts are refused.

    Python turns argv bytes that are not UTF-8 into lone surrogates; the tokenizer then fails
    with a ``TypeError``. They are refused here with the byte named, the same rule as for data
    files (which must be UTF-8), rather than replaced, because a replaced character silently
    changes what is classified.
    """
    if len(value) > MAX_FIELD_CHARS:
        raise UserInputError(
            f"{option}: the text has {len(value):,} characters; the limit is {MAX_FIELD_CHARS:,}"
        )
    found = lone_surrogate(value)
    if found:
        at, code = found
        if 0xDC80 <= code <= 0xDCFF:
            raise UserInputError(
                f"{option} is not UTF-8 (byte 0x{code - 0xDC00:02x} at character "
                f"{at}); set a UTF-8 locale or convert it, e.g. with `iconv -t utf-8`"
            )
        raise UserInputError(
            f"{option} holds U+{code:04X} at character {at}, a lone surrogate that "
            "is not a character"
        )
    return value


def cli_texts(values: list[str] | None, option: str = "--text") -> list[str]:
    """:func:`cli_text` for a repeated option."""
    return [cli_text(value, option) for value in values or []]


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` nests arrays/objects more than ``limit`` levels (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def printable(value: Any, *, lines: bool = False) -> str:
    """``value`` for a terminal: each control or format character (ESC, BEL, a carriage return,
    a newline, a right-to-left override) written as its Python escape (``\\x1b``), so that text
    from data (a feed's headline, a customer's question) cannot move the cursor, clear the
    screen, retitle the window, write the clipboard or forge a line of the output. ``lines``
    keeps newlines and tabs, for a text of several lines shown as such (an FAQ answer)."""
    text = str(value)
    if text.isprintable():
        return text
    kept = "\n\t" if lines else ""
    return "".join(ch if ch.isprintable() or ch in kept else repr(ch)[1:-1] for ch in text)


def names_for_message(names: Iterable[Any], *, most: int = 20, width: int = 40) -> str:
    """Names (a file's columns) for a one-line error: at most ``most`` of them, each cut to
    ``width`` characters with control characters escaped, so that a broken header (one
    200,000-character "column", a NUL byte) does not fill the terminal; ``"none"`` for none."""
    names = [str(name) for name in names]
    shown = []
    for name in names[:most]:
        text = printable(name)
        shown.append(text if len(text) <= width else f"{text[:width]}...")
    if not shown:
        return "none"
    rest = len(names) - most
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")
