"""Errors meant for users: one clear line on stderr, no traceback, a non-zero exit.

The CLI catches :class:`TunesmithError` once. Exit code 2 means bad input, 1 any other failure.
Programming errors are not wrapped and keep their traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

_LINE_BREAKS = re.compile(r"\s*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+\s*")


class TunesmithError(Exception):
    """A failure the user can act on, shown as one line."""

    exit_code = 1


class UserInputError(TunesmithError):
    """Bad input from the user: a flag, a file, a value."""

    exit_code = 2


class DataError(UserInputError):
    """A problem in a data file, located by file, row and column where they are known.

    ``row`` is the 1-based line number a user sees in an editor (for CSV the header is line 1).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        # One line, whatever the message quotes (a library's multi-line error, a text with a
        # line break): the CLI prints it after "Error: " and a caller may log it as one line.
        self.message = " ".join(_LINE_BREAKS.split(message.strip()))
        self.path = str(path) if path is not None else None
        self.row = row
        self.column = column
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.row is not None:
                where += f":{self.row}"
        if self.column is not None:
            where += (", " if where else "") + f"column '{self.column}'"
        return f"{where}: {self.message}" if where else self.message


class ModelNotFoundError(UserInputError):
    """A model name that is neither ``default``, a local directory, nor an allowed hub id."""


class OutputExistsError(UserInputError):
    """An output that exists already and would be overwritten without ``--force``."""


class PluginError(TunesmithError):
    """A plugin that failed to load or register."""
