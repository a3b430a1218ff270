"""Atomic writes: stored data is never lost or half-written.

Everything is written to a temporary sibling first and renamed into place, so a crash leaves
either the old file or the new one, never a mix. A temporary sibling's name carries the writer's
pid (``.<name>.<pid>-<random>.tmp``); the next write of the same path removes the ones whose
process is gone, so ``kill -9`` leaves debris only until the next run.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tunesmith.errors import (
    DataError,
    DiskFullError,
    OutputExistsError,
    TunesmithError,
    UserInputError,
    disk_full_errno,
)


def process_alive(pid: int) -> bool:
    """True when a process with id ``pid`` runs on this host (this one included)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        # os.kill(pid, 0) is no probe on Windows: it calls TerminateProcess, killing the
        # process (another run writing beside us) whose liveness was asked about.
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _kernel32() -> Any:
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    kernel32.OpenProcess.restype = ctypes.c_void_p  # a HANDLE, wider than the default int
    return kernel32


def _windows_process_alive(pid: int) -> bool:
    """Whether ``pid`` runs, asked of Windows without touching the process."""
    import ctypes

    query_limited_information, still_active, access_denied = 0x1000, 259, 5
    kernel32 = _kernel32()
    handle = kernel32.OpenProcess(query_limited_information, False, pid)
    if not handle:
        return ctypes.get_last_error() == access_denied  # someone else's process: alive
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True  # unknown: keeping a temp file beats deleting a live writer's
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}-"


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (setting it to read it
    would race with other threads creating files)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_mode(tmp: str | Path, target: str | Path, *, directory: bool = False) -> None:
    """Give a temporary file or folder the permissions ``target`` will need after the rename:
    those of the ``target`` it replaces, else what a plain ``open`` or ``mkdir`` would give.

    mkstemp and mkdtemp create private ones (0600, 0700) whatever the umask, and the rename
    keeps that: a model or a CSV written for a team would be readable by its writer alone.
    """
    target = Path(target)
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = (0o777 if directory else 0o666) & ~current_umask()
    os.chmod(tmp, mode)


#: Between a target's name and the pid in the name of the old copy :func:`atomic_directory`
#: moves aside (``.<name>.old-<pid>``).
_OLD_COPY = ".old-"


#: Free space below which a failed write is put down to a full disk (the failed write's own
#: temporary file is still there when it is measured, so a full disk shows close to 0).
NEARLY_FULL_BYTES = 1 << 20
#: Programming errors: never put down to the disk, whatever its state.
_NOT_IO = (TypeError, AttributeError, NameError, LookupError, AssertionError)


def no_room_errno(exc: BaseException, written: str | Path) -> int | None:
    """``ENOSPC``, ``EDQUOT`` or ``EFBIG`` when the write of ``written`` (a file, or a folder
    being filled) failed for want of room; ``None`` when it failed for another reason.

    The error says so itself (:func:`~tunesmith.errors.disk_full_errno`), or, for libraries
    that only report a short write (numpy's "N requested and M written", torch's "unexpected
    pos"), the disk does: almost no free space left, or a file of ``written`` at the process's
    file size limit (``ulimit -f``). Call it before removing what was written.
    """
    code = disk_full_errno(exc)
    if code is not None or not isinstance(exc, Exception):
        return code
    if isinstance(exc, (*_NOT_IO, TunesmithError)) or getattr(exc, "errno", None):
        return None  # a bug, our own error, or the system named another cause (EACCES, ...)
    return no_room_shown(written)


def no_room_shown(written: str | Path) -> int | None:
    """``ENOSPC`` when the disk holding ``written`` has almost no free space, ``EFBIG`` when a
    file of ``written`` (a file or a folder) is at the process's file size limit, else ``None``.
    """
    written = Path(written)
    existing = next((p for p in (written, *written.parents) if p.exists()), None)
    if existing is None:
        return None
    with contextlib.suppress(OSError):
        if shutil.disk_usage(existing).free < NEARLY_FULL_BYTES:
            return errno.ENOSPC
    limit = _file_size_limit()
    if limit is not None and _largest_file(written) >= limit:
        return errno.EFBIG
    return None


def _file_size_limit() -> int | None:
    """The process's soft ``RLIMIT_FSIZE`` in bytes; ``None`` when unlimited or unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def _largest_file(path: Path, most: int = 10_000) -> int:
    """The size of ``path``, or of the largest of the first ``most`` files in the folder."""
    if not path.is_dir():
        try:
            return path.stat().st_size
        except OSError:
            return 0
    largest, seen = 0, 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                largest = max(largest, os.stat(os.path.join(root, name)).st_size)
            seen += 1
            if seen >= most:
                return largest
    return largest


@contextlib.contextmanager
def no_room_as_error(
    target: str | Path, written: str | Path | None = None, *, outcome: str | None = None
) -> Iterator[None]:
    """Turn a failure of the block for want of room into one :class:`DiskFullError` naming
    ``target`` (what the user asked to write); ``written`` is where the block writes, when it
    is another place (a temporary sibling). ``outcome`` says what became of the data."""
    try:
        yield
    except Exception as exc:
        code = no_room_errno(exc, target if written is None else written)
        if code is None:
            raise
        raise DiskFullError(target, code, outcome=outcome) from exc


def remove_stale_temps(path: str | Path, *, any_owner: bool = False) -> list[Path]:
    """Remove the temporary siblings of ``path`` that killed writers left; returns them.

    A sibling is stale when the pid in its name is not a running process, or, with
    ``any_owner`` (the caller holds the run lock for ``path``, so no one else writes it), any
    sibling, including ones named before pids were recorded. A ``.<name>.old-<pid>`` folder is
    the previous version moved aside by :func:`atomic_directory`: when ``path`` itself is
    missing (killed between the two renames) it is put back, not removed.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    name = re.escape(path.name)
    # mkstemp/mkdtemp add 8 characters of [a-z0-9_]; exact, so ".model.csv.*.tmp" (another
    # file's temp) never matches the path "model".
    temp = re.compile(rf"^\.{name}\.(?:(\d+)-)?[a-z0-9_]{{8}}\.tmp$")
    old = re.compile(rf"^\.{name}{re.escape(_OLD_COPY)}(\d+)$")
    removed: list[Path] = []
    for sibling in path.parent.iterdir():
        match = temp.match(sibling.name) or old.match(sibling.name)
        if match is None:
            continue
        pid = match.group(1)
        stale = (pid is not None and not process_alive(int(pid))) or (
            any_owner and pid != str(os.getpid())
        )
        if not stale:
            continue
        if match.re is old and not path.exists():
            os.replace(sibling, path)
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                sibling.unlink()
        removed.append(sibling)
    return removed


def remove_tree(path: str | Path) -> None:
    """Remove the folder ``path`` as one step, never raising: it is renamed to a temporary
    sibling first, so a kill during the removal leaves the whole folder or debris that the next
    write of ``path`` cleans (:func:`remove_stale_temps`), never the folder with part of its
    files gone (a work folder without its marker, a checkpoint without its weights)."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return
    doomed = str(path)  # a parent we cannot write in: removed in place, as well as it goes
    with contextlib.suppress(OSError):
        aside = tempfile.mkdtemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
        try:
            os.replace(path, aside)  # onto the empty folder mkdtemp made: one rename
            doomed = aside
        except OSError:
            os.rmdir(aside)
    shutil.rmtree(doomed, ignore_errors=True)


@contextlib.contextmanager
def naming_target(target: str | Path) -> Iterator[None]:
    """An ``OSError`` of the block (a read-only or someone else's folder) raised for
    ``target``: the temporary file it was making is a name the user never gave."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or isinstance(exc, DiskFullError):
            raise
        raise type(exc)(exc.errno, exc.strerror, str(target)) from exc


@contextlib.contextmanager
def atomic_open(path: str | Path, *, binary: bool = False) -> Iterator[Any]:
    """A file written through a temporary sibling, renamed into place only on success: text
    (UTF-8, newlines written as given on every platform), or bytes with ``binary`` (for
    ``numpy.save`` and the like)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    with no_room_as_error(path, path.parent), naming_target(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        # newline="": "\n" stays "\n" on Windows too (no "\r\r\n" from a csv writer's
        # "\r\n"), so a file's bytes, and its hash, do not depend on the platform.
        text = {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", **text) as handle:
            publish_mode(tmp, path)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        # Measured before the temporary file goes: a file cut at the size limit tells EFBIG.
        code = None if isinstance(exc, DiskFullError) else no_room_errno(exc, tmp)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if code is not None:
            raise DiskFullError(path, code) from exc
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename."""
    with atomic_open(path) as handle:
        handle.write(text)
    return Path(path)


#: file_sha256's results by (device, inode, size, modification time): a run hashes its data
#: once, where the resume check, the run record and an ensemble's reuse check all ask for it.
_SHA256_CACHE: dict[tuple[int, int, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks (once while the file is unchanged)."""
    with Path(path).open("rb") as handle:
        stat = os.fstat(handle.fileno())
        key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if key in _SHA256_CACHE:
            return _SHA256_CACHE[key]
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if len(_SHA256_CACHE) >= 64:
        _SHA256_CACHE.clear()
    _SHA256_CACHE[key] = digest.hexdigest()
    return _SHA256_CACHE[key]


def read_json_object(path: str | Path) -> dict[str, Any] | None:
    """The JSON object stored at ``path``; ``None`` when there is no such file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:  # also when removed meanwhile (a concurrent save's old copy)
        return None
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid JSON ({exc})", path=path) from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise DataError("not valid JSON (nested too deeply)", path=path) from None
    except ValueError as exc:  # also a 5,000-digit number
        raise DataError(f"not valid JSON ({exc})", path=path) from None
    if not isinstance(data, dict):
        raise DataError("expected a JSON object", path=path)
    return data


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def check_writable_dir(target: str | Path, *, force: bool) -> Path:
    """Fail early, before any work, when ``target`` exists and ``force`` is not given."""
    target = Path(target)
    if target.exists() and not force:
        raise OutputExistsError(f"{target} exists already; pass --force to replace it")
    return target


def check_parents(path: str | Path, option: str) -> None:
    """The nearest existing parent of ``path`` must be a folder (``mkdir`` would fail)."""
    path = Path(path)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserInputError(f"{option} {path}: {parent} is a file, not a folder")
            return


def check_output_file(path: str | Path, option: str) -> Path:
    """Refuse, before any work, an output file path that names a folder or lies under a file."""
    path = Path(path)
    if path.is_dir():
        raise UserInputError(f"{option} {path} is a folder; give the path of a file to write")
    check_parents(path, option)
    return path


def check_output_folder(path: str | Path, option: str) -> Path:
    """Refuse, before any work, an output folder path that names a file or lies under a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserInputError(f"{option} {path} is a file; give a folder to write into")
    check_parents(path, option)
    return path


@contextlib.contextmanager
def atomic_directory(target: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` only when the block succeeds.

    On failure the temporary directory is removed and ``target`` is left as it was. With
    ``force`` an existing ``target`` is replaced; without it, an existing one is an error.
    """
    given = Path(target)
    # Resolved: "." and ".." have no name to put the temporary sibling next to, and a symlink is
    # followed (the folder it names is replaced; the link stays) instead of turned into a folder.
    target = given.resolve()
    remove_stale_temps(target)  # first: it may put back a model a killed swap moved aside
    check_writable_dir(given, force=force)  # the message names the path as the user gave it
    target.parent.mkdir(parents=True, exist_ok=True)
    with no_room_as_error(given, target.parent), naming_target(given):
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=_temp_prefix(target), suffix=".tmp"))
    try:
        publish_mode(tmp, target, directory=True)
        yield tmp
    except BaseException as exc:
        # Named as the user gave it, not as the temporary file inside that failed; measured
        # before the folder goes (a file cut at the size limit tells EFBIG).
        code = no_room_errno(exc, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if code is not None:
            raise DiskFullError(given, code) from exc
        raise
    old = None
    try:
        if target.exists():
            old = target.with_name(f".{target.name}{_OLD_COPY}{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        # A rename that fails (no room for a directory entry) puts the previous version back.
        if old is not None and not target.exists():
            os.replace(old, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def being_replaced(target: str | Path) -> bool:
    """True while :func:`atomic_directory` has moved ``target`` aside and not yet renamed its
    new copy into place (a reader that finds ``target`` missing should then try again)."""
    import glob

    target = Path(target)
    return any(target.parent.glob(f".{glob.escape(target.name)}{_OLD_COPY}*"))


def change_stamp(paths: Iterable[str | Path]) -> tuple[int, ...]:
    """The inode, size and modification time of each of ``paths`` (zeros for a missing one):
    a cache of what was loaded from them compares it to tell that they were rewritten since.
    The time alone missed a rewrite within the file system's time granularity (a second or
    two on some); an atomic write renames a new file into place, which has a new inode."""
    stamps: list[int] = []
    for path in paths:
        try:
            stat = Path(path).stat()
        except OSError:
            stamps += (0, 0, 0)
            continue
        stamps += (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return tuple(stamps)


def share_safetensors(directory: Path) -> None:
    """Give the ``.safetensors`` files the permissions a plain ``open`` would (0644 under the
    usual umask), as every other file of the directory has: safetensors writes them through a
    private temporary file (0600), so a model saved for a team or a server running as another
    user could not be loaded by anyone but its writer."""
    mode = 0o666 & ~current_umask()
    for path in directory.glob("*.safetensors"):
        os.chmod(path, mode)
