"""One run per output directory: an exclusive lock file beside the directory a run writes.

Two ``train`` runs into the same ``--out`` used to share (and delete) one work folder, and the
second rename silently replaced the first model. The lock is ``.<name>.lock`` beside the target,
held with ``flock`` for the whole run. The kernel drops a ``flock`` when its process dies, even
on ``kill -9``, so a lock file left by a killed run is stale by construction: the next run takes
it. The file holds the holder's pid, for the message a refused run prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from tunesmith.errors import UserInputError
from tunesmith.io import remove_stale_temps


class RunLockedError(UserInputError):
    """Another run (in this process or another) is writing the same output."""


def lock_path(target: str | Path) -> Path:
    """The lock file for ``target``: ``.<name>.lock`` beside it, the folder resolved so that
    every spelling of one directory shares one lock."""
    target = Path(target)
    return target.parent.resolve() / f".{target.name}.lock"


def _holder(path: Path) -> str:
    # The holder writes its pid just after it takes the lock; a run refused in between would
    # read an empty file, so wait briefly for the pid rather than report "unknown".
    for _ in range(50):
        try:
            pid = path.read_text(encoding="utf-8").strip()
        except OSError:
            return "unknown"
        if pid:
            return pid
        time.sleep(0.01)
    return "unknown"


@contextlib.contextmanager
def run_lock(target: str | Path, *, flag: str = "--out") -> Iterator[Path]:
    """Hold the lock for ``target`` for the block; a second holder is refused at once.

    Raises :class:`RunLockedError` naming the other run's pid. The lock file is removed on
    release (while still held, so a waiting run never locks an unlinked file).
    """
    target = Path(target)
    try:
        path = lock_path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(
            f"{flag} {target}: cannot create its folder ({exc.strerror or exc})"
        ) from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserInputError(
                f"{flag} {target}: cannot write in {path.parent} ({exc.strerror or exc})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(
                f"another tunesmith run (pid {_holder(path)}) is writing {target}; wait for it "
                f"to finish or choose another {flag}"
            ) from None
        # The previous holder may have unlinked the file between our open and our flock; then
        # the lock we hold is on an orphan inode and the path must be opened again.
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


@contextlib.contextmanager
def writing_into(
    directory: str | Path, names: list[str], *, flag: str = "--model"
) -> Iterator[list[Path]]:
    """Hold the run lock of ``directory`` (a command that rewrites files in a model directory)
    and remove what killed writers of ``names`` left there; yields the removed paths."""
    if not Path(directory).is_dir():  # nothing to protect; the command says what is wrong
        yield []
        return
    with run_lock(directory, flag=flag):
        removed = [
            path
            for name in names
            for path in remove_stale_temps(Path(directory) / name, any_owner=True)
        ]
        yield removed
