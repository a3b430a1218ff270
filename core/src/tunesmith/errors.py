"""Errors meant for users: one clear line on stderr, no traceback, a non-zero exit.

The CLI catches :class:`TunesmithError` once. Exit code 2 means bad input, 1 any other failure.
Programming errors are not wrapped and keep their traceback.
"""

from __future__ import annotations

import errno
import os
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


#: The errors a write gets when there is no room for it, and how a user is told.
DISK_FULL_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EFBIG: "the file size limit was reached",
}
if hasattr(errno, "EDQUOT"):  # not on Windows
    DISK_FULL_REASONS[errno.EDQUOT] = "the disk quota is used up"


def disk_full_errno(exc: BaseException) -> int | None:
    """The errno (``ENOSPC``, ``EDQUOT`` or ``EFBIG``) when ``exc`` or what caused it says that
    a write found no room; ``None`` otherwise.

    Libraries wrap the operating system's error in their own: safetensors and tokenizers
    (Rust) end theirs with ``(os error 28)``, FAISS with ``(No space left on device)``. Others
    say nothing of the cause (numpy, torch): :func:`tunesmith.io.no_room_errno` looks at the
    disk instead.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_REASONS:
            return current.errno
        if getattr(current, "sqlite_errorname", None) == "SQLITE_FULL":  # raw sqlite3 (a copy)
            return errno.ENOSPC
        text = str(current)
        for code in DISK_FULL_REASONS:
            if f"os error {code})" in text or f"({os.strerror(code)})" in text:
                return code
        current = current.__cause__ or current.__context__
    return None


class DiskFullError(TunesmithError, OSError):
    """A write that found no room: a full disk, a used-up quota or the process's file size
    limit. Also an :class:`OSError` (with its ``errno``), so code that handles a failed write
    handles this one as before.

    ``outcome`` says what became of the data (by default: the previous version is unchanged,
    which is what every atomic write guarantees).
    """

    def __init__(
        self,
        path: str | Path,
        code: int,
        *,
        outcome: str | None = None,
        detail: str | None = None,
    ) -> None:
        OSError.__init__(self, code, os.strerror(code), str(path))
        self.path = str(path)
        self.outcome = (
            outcome or f"not written (any previous version is unchanged): {room_hint(code)}"
        )
        # What the library said beside the system's words (SQLite's "disk I/O error").
        self.detail = detail

    def __str__(self) -> str:
        reason = DISK_FULL_REASONS.get(self.errno or 0, "there is no room")
        said = f"{self.strerror}; {self.detail}" if self.detail else self.strerror
        return f"{self.path}: {reason} ({said}); {self.outcome}"


def room_hint(code: int, then: str = "run again") -> str:
    """What the user does about ``code`` (``ENOSPC``, ``EDQUOT``, ``EFBIG``), then ``then``."""
    return ("raise the limit" if code == errno.EFBIG else "free some space") + f" and {then}"


#: The errors an ``open`` gets when no file descriptor is left: this process's limit
#: (``ulimit -n``) or the whole system's table.
NO_DESCRIPTOR_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE})

#: torch's prefix to an allocator's message ("[enforce fail at alloc_cpu.cpp:127] err == 0. ").
_ENFORCE_PREFIX = re.compile(r"^\[enforce fail at [^\]]*\]\s*(?:err == 0\.\s*)?")
#: What torch's allocators say (CPU: "can't allocate memory"; CUDA and MPS: "out of memory").
_NO_MEMORY_WORDS = ("can't allocate memory", "out of memory")


def out_of_memory(exc: BaseException) -> str | None:
    """The library's words when ``exc``, or what caused it, says that memory ran out (a
    ``MemoryError``, numpy's "Unable to allocate ...", torch's allocators, an ``ENOMEM``);
    ``""`` when it says nothing more; ``None`` for any other error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = " ".join(str(current).split())
        if isinstance(current, MemoryError) or (
            isinstance(current, OSError) and current.errno == errno.ENOMEM
        ):
            return text
        if isinstance(current, RuntimeError) and any(w in text for w in _NO_MEMORY_WORDS):
            return _ENFORCE_PREFIX.sub("", text)
        current = current.__cause__ or current.__context__
    return None


def open_file_limit() -> int | None:
    """This process's soft limit of open files (``ulimit -n``); ``None`` when unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft
