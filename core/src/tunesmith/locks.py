"""One run per output directory: an exclusive lock file beside the directory a run writes.

Two ``train`` runs into the same ``--out`` used to share (and delete) one work folder, and the
second rename silently replaced the first model. The lock is ``.<name>.lock`` beside the target,
held with ``flock`` for the whole run. The kernel drops a ``flock`` when its process dies, even
on ``kill -9``, so a lock file left by a killed run is stale by construction: the next run takes
it. The file holds the holder's pid, for the message a refused run prints.

Where there is no ``fcntl`` (Windows) :func:`lock_fd` takes an ``msvcrt`` byte-range lock
instead, which Windows also drops when its process ends; only the Linux path is exercised for
real, the other by simulation (see docs/internals.md, "Platforms").
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path

from tunesmith.errors import UserInputError
from tunesmith.io import remove_stale_temps

try:
    import fcntl
except ImportError:  # Windows: msvcrt byte-range locks instead (lock_fd)
    fcntl = None  # type: ignore[assignment]

#: Where a Windows lock sits. Windows enforces byte-range locks on other processes' reads and
#: writes, so the lock takes one byte far past any data (allowed beyond the end of a file): the
#: holder's pid and a jsonl file's lines stay readable. Below 2 GiB, for a 32-bit seek.
WINDOWS_LOCK_OFFSET = 0x7FFF_FFF0
#: How often a waiting Windows lock tries again (msvcrt has no wait without a time limit).
_WINDOWS_POLL = 0.05
#: Open without newline translation: on Windows os.open defaults to text mode.
O_BINARY = getattr(os, "O_BINARY", 0)


def _msvcrt_at_lock_byte(fd: int, mode: int) -> None:
    """Apply msvcrt ``mode`` to the lock byte of ``fd``, leaving its position as it was."""
    import msvcrt

    position = os.lseek(fd, 0, os.SEEK_CUR)
    os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, mode, 1)
    finally:
        os.lseek(fd, position, os.SEEK_SET)


def lock_fd(fd: int, *, wait: bool = True) -> bool:
    """Take an exclusive lock on the open file ``fd``: ``flock``, or on Windows an ``msvcrt``
    lock of one byte. With ``wait`` off, False when another holder has it. The system drops it
    when the process dies; :func:`unlock_fd` (or, off Windows, closing ``fd``) releases it."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True
    import msvcrt

    while True:
        try:
            _msvcrt_at_lock_byte(fd, msvcrt.LK_NBLCK)
            return True
        except OSError as exc:
            # EACCES: another handle holds it (EDEADLOCK where a retrying mode gave up).
            if exc.errno not in (errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK)):
                raise
        if not wait:
            return False
        time.sleep(_WINDOWS_POLL)


def unlock_fd(fd: int) -> None:
    """Release :func:`lock_fd`'s lock on ``fd`` (Windows frees a lock left at close only when
    it gets round to it, so it is released first there)."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return
    import msvcrt

    with contextlib.suppress(OSError):
        _msvcrt_at_lock_byte(fd, msvcrt.LK_UNLCK)


@contextlib.contextmanager
def holding_lock(fd: int) -> Iterator[None]:
    """Hold :func:`lock_fd`'s lock on ``fd`` for the block, waiting for it as long as needed."""
    lock_fd(fd, wait=True)
    try:
        yield
    finally:
        unlock_fd(fd)


class RunLockedError(UserInputError):
    """Another run (in this process or another) is writing the same output."""


def lock_path(target: str | Path) -> Path:
    """The lock file for ``target``: ``.<name>.lock`` beside it, the path resolved so that
    every spelling of one directory shares one lock, a symlink to it included (on Windows,
    whose names ignore case, the name lower-cased: ``Model`` and ``model`` are one folder
    there)."""
    # Whole, not only the parent: a run through `current -> v3` and one given `v3` write one
    # folder (atomic_directory follows the link) and held two locks.
    target = Path(target).resolve()
    return target.parent / f".{os.path.normcase(target.name)}.lock"


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
    release (while still held, so a waiting run never locks an unlinked file; on Windows, which
    deletes no open file, just after).
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
            fd = os.open(path, os.O_RDWR | os.O_CREAT | O_BINARY, 0o644)
        except OSError as exc:
            raise UserInputError(
                f"{flag} {target}: cannot write in {path.parent} ({exc.strerror or exc})"
            ) from None
        try:
            locked = lock_fd(fd, wait=False)
        except OSError:
            os.close(fd)
            raise
        if not locked:
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
        _release(fd, path)


def _release(fd: int, path: Path) -> None:
    """Remove the lock file and let go of the lock."""
    if fcntl is not None:
        # Unlinked while still held, so a waiting run never locks an unlinked file.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)
        return
    # Windows refuses to delete a file that is open: unlock and close first; a run that has
    # opened it meanwhile keeps the file (and the removal is skipped), which is harmless.
    unlock_fd(fd)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(path)


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
