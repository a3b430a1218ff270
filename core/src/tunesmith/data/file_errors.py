"""An ``OSError`` met while reading a data file, sorted into the user's fault or the machine's.

A missing file, a folder, a permission denied: the user names another path or fixes it, so it
is a ``DataError`` (exit 2). Too many open files, memory run out, an I/O error of the disk: the
file is fine and the machine is not, so the ``OSError`` goes on, naming the file, to the CLI's
one line for it (``tunesmith.cli``) and exit 1.
"""

from __future__ import annotations

import errno
from pathlib import Path

from tunesmith.errors import DataError

#: The errors of a path the user gave: it is not there, not a file, or not theirs to read.
INPUT_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
        errno.ELOOP,
        errno.ENAMETOOLONG,
        errno.ENXIO,  # a socket or a device with nothing behind it
    }
)


def read_failure(exc: OSError, path: str | Path) -> Exception:
    """What to raise for ``exc``, met reading ``path``: a ``DataError`` ("cannot read the
    file: Permission denied") when the path is at fault, else the ``OSError`` itself with the
    file named (a failed ``read()`` has no file name of its own)."""
    if exc.errno in INPUT_ERRNOS:
        return DataError(f"cannot read the file: {exc.strerror or exc}", path=path)
    if exc.errno is not None and exc.filename is None:
        # OSError(errno, ...) picks the subclass for the errno, as the original had.
        return OSError(exc.errno, exc.strerror or str(exc), str(path))
    return exc
