"""Windows and macOS, simulated on Linux: no ``fcntl``, ``msvcrt`` byte-range locks, a process
probe that must not kill, drive-letter sink paths, and newline translation in text files.

Nothing here runs on Windows; each test swaps in what that platform has (a fake ``msvcrt``, a
fake ``kernel32``, ``sys.platform``) and checks what tunesmith does with it.
"""

from __future__ import annotations

import _pyio
import csv
import ctypes
import errno
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from tunesmith import events, io, locks
from tunesmith.errors import UserInputError
from tunesmith.hooktypes import Event
from tunesmith.retrieval import index as index_module

#: A user folder as Windows laptops have them: a space and letters outside ASCII.
USER = "Ana Lima Núñez"


class FakeMsvcrt(types.ModuleType):
    """``msvcrt.locking`` as Windows behaves: a byte range locked through one handle cannot be
    locked through another (EACCES) until unlocked; the range starts at the file position."""

    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

    def __init__(self) -> None:
        super().__init__("msvcrt")
        self.held: dict[tuple[int, int, int], int] = {}
        self.offsets: list[int] = []
        self.guard = threading.Lock()

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        stat = os.fstat(fd)
        position = os.lseek(fd, 0, os.SEEK_CUR)
        key = (stat.st_dev, stat.st_ino, position)
        with self.guard:
            self.offsets.append(position)
            owner = self.held.get(key)
            if mode == self.LK_UNLCK:
                if owner != fd:
                    raise OSError(errno.EACCES, "Permission denied")
                del self.held[key]
            elif owner is None:
                self.held[key] = fd
            else:
                raise OSError(errno.EACCES, "Permission denied")


@pytest.fixture
def windows_locks(monkeypatch):
    """No fcntl, and msvcrt's locks in its place."""
    fake = FakeMsvcrt()
    monkeypatch.setattr(locks, "fcntl", None)
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.setattr(locks, "_WINDOWS_POLL", 0.005)
    return fake


def test_cli_and_event_modules_import_and_run_without_fcntl(tmp_path):
    # Windows has no fcntl: `import tunesmith.events` failed, and with it the built-in
    # plugin, `events list`, every command that emits and every run lock.
    script = (
        "import sys; sys.modules['fcntl'] = None\n"
        "import tunesmith.events, tunesmith.locks, tunesmith.retrieval.index\n"
        "sys.argv = ['tunesmith', 'events', 'list', '--json']\n"
        "from tunesmith.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "TUNESMITH_HOME": str(tmp_path / USER), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fcntl" not in result.stderr
    assert result.stdout.strip() == "[]"


def test_run_lock_with_msvcrt_refuses_a_second_run_and_keeps_the_pid_readable(
    windows_locks, tmp_path
):
    target = tmp_path / USER / "runs" / "intents"
    with locks.run_lock(target) as path:
        # The lock byte sits far past the pid and the position is put back: the pid is
        # written at the start (no 2 GiB sparse file), and stays readable by a refused run.
        assert path.read_bytes() == f"{os.getpid()}\n".encode()
        assert windows_locks.offsets == [locks.WINDOWS_LOCK_OFFSET]
        with (
            pytest.raises(locks.RunLockedError, match=f"pid {os.getpid()}"),
            locks.run_lock(target),
        ):
            pass
    assert windows_locks.held == {}  # released before the handle was closed
    assert not path.exists()
    with locks.run_lock(target):  # free again
        pass


def test_run_lock_release_survives_windows_refusing_to_delete_an_open_lock_file(
    windows_locks, tmp_path, monkeypatch
):
    real_unlink, refusing = os.unlink, [True]

    def unlink(path, *args, **kwargs):
        if refusing:  # another run has the file open
            raise PermissionError(errno.EACCES, "The process cannot access the file", str(path))
        return real_unlink(path, *args, **kwargs)

    target = tmp_path / "out"
    monkeypatch.setattr(os, "unlink", unlink)
    with locks.run_lock(target) as path:
        pass
    refusing.clear()
    assert path.exists()  # left behind, harmless: the next run opens and locks it
    with locks.run_lock(target):
        pass


def test_jsonl_sink_with_msvcrt_locks_appends_whole_lines_from_many_threads(
    windows_locks, tmp_path
):
    path = tmp_path / USER / "feed.jsonl"
    sinks = [events.JsonlSink(str(path)) for _ in range(4)]

    def write(sink, n):
        for i in range(25):
            sink.send(Event(kind="k", message=f"{n}-{i}", payload={"ñ": i}))

    threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(sinks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 101
    assert all(line.startswith(b"{") and line.endswith(b"}") for line in lines[:-1])
    assert set(windows_locks.offsets) == {locks.WINDOWS_LOCK_OFFSET}
    assert windows_locks.held == {}


def test_index_save_lock_without_fcntl_locks_a_file_inside_the_folder(windows_locks, tmp_path):
    folder = tmp_path / USER / "ix"
    folder.mkdir(parents=True)
    entered = threading.Event()
    order: list[str] = []

    def second():
        with index_module._directory_lock(folder):
            order.append("second")

    with index_module._directory_lock(folder):
        assert (folder / index_module._SAVE_LOCK).is_file()
        worker = threading.Thread(target=lambda: (entered.set(), second()))
        worker.start()
        entered.wait()
        worker.join(0.1)
        assert worker.is_alive()  # waits for the lock, as flock does
        order.append("first")
    worker.join(5)
    assert order == ["first", "second"]
    assert windows_locks.held == {}


class FakeKernel32:
    """OpenProcess / GetExitCodeProcess / CloseHandle for a table of pids."""

    def __init__(self, exit_codes: dict[int, int], last_error: int = 87) -> None:
        self.exit_codes = exit_codes
        self.last_error = last_error
        self.closed: list[int] = []

    def OpenProcess(self, access, inherit, pid):  # noqa: N802 - the Win32 name
        return 1000 + pid if pid in self.exit_codes else 0

    def GetExitCodeProcess(self, handle, code_ref):  # noqa: N802
        code_ref._obj.value = self.exit_codes[handle - 1000]
        return 1

    def CloseHandle(self, handle):  # noqa: N802
        self.closed.append(handle)
        return 1


@pytest.fixture
def windows_processes(monkeypatch):
    def kill(pid, sig):
        raise AssertionError(f"os.kill({pid}, {sig}) on Windows terminates the process")

    kernel32 = FakeKernel32({4242: 259, 4343: 0})  # 259: STILL_ACTIVE
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(io, "_kernel32", lambda: kernel32)
    # Windows-only in ctypes; absent here.
    monkeypatch.setattr(ctypes, "get_last_error", lambda: kernel32.last_error, raising=False)
    return kernel32


def test_process_alive_on_windows_asks_the_kernel_and_never_calls_os_kill(windows_processes):
    assert io.process_alive(4242) is True  # running
    assert io.process_alive(4343) is False  # exited, its handle still open somewhere
    assert io.process_alive(99999) is False  # no such process (ERROR_INVALID_PARAMETER)
    windows_processes.last_error = 5  # ERROR_ACCESS_DENIED: another user's process
    assert io.process_alive(99999) is True
    assert windows_processes.closed == [5242, 5343]


def test_stale_temp_cleanup_on_windows_keeps_a_live_writers_file_and_kills_no_one(
    windows_processes, tmp_path
):
    target = tmp_path / USER / "model.csv"
    target.parent.mkdir(parents=True)
    live = target.with_name(".model.csv.4242-abcdefgh.tmp")
    dead = target.with_name(".model.csv.4343-abcdefgh.tmp")
    live.write_text("x", encoding="utf-8")
    dead.write_text("x", encoding="utf-8")
    assert io.remove_stale_temps(target) == [dead]
    assert live.exists()


def test_atomic_text_files_keep_their_newlines_where_the_platform_writes_crlf(
    tmp_path, monkeypatch
):
    # The pure-Python io reads os.linesep, so it stands in for Windows' text mode: with it a
    # csv writer's "\r\n" became "\r\r\n" (a blank row between rows in Excel), and every
    # "\n" a "\r\n" (a file's hash then depended on the platform).
    monkeypatch.setattr(os, "linesep", "\r\n")
    monkeypatch.setattr(os, "fdopen", lambda fd, mode, **kw: _pyio.open(fd, mode, **kw))
    out = tmp_path / USER / "rows.csv"
    with io.atomic_open(out) as handle:
        csv.writer(handle).writerows([["text", "label"], ["héllo", "a"]])
    assert out.read_bytes() == "text,label\r\nhéllo,a\r\n".encode()
    io.atomic_write_text(out, "gen-000001\n")
    assert out.read_bytes() == b"gen-000001\n"


@pytest.mark.parametrize(
    "typed", [r"C:\Users\Ana\feed.jsonl", "C:/Users/Ana/feed.jsonl", "feed.jsonl"]
)
def test_a_file_path_given_as_a_sink_says_to_write_jsonl_and_keeps_backslashes_single(typed):
    with pytest.raises(UserInputError) as caught:
        events.make_sink(typed)
    message = str(caught.value)
    assert f"for a file write jsonl:{typed}" in message
    assert "\\\\" not in message


def test_a_bare_https_url_as_a_sink_points_to_webhook_without_repeating_its_token():
    with pytest.raises(UserInputError, match="for a webhook write webhook:https://...$"):
        events.make_sink("https://hooks.example.com/services/T1/B2/SECRET")


def test_a_jsonl_sink_on_a_drive_path_keeps_the_drive_colon_in_its_path():
    sink = events.make_sink(rf"jsonl:C:\Users\{USER}\feed.jsonl")
    assert sink.path == Path(rf"C:\Users\{USER}\feed.jsonl")
    with pytest.raises(UserInputError, match=r"not 'C:\\Users\\Ana\\notes.txt'$"):
        events.make_sink(r"jsonl:C:\Users\Ana\notes.txt")


def test_outbox_key_file_is_opened_in_binary_mode(monkeypatch, tmp_path):
    # Windows opens os.open files in text mode unless told O_BINARY: each 0x0A byte of the
    # random key would be written as 0x0D 0x0A.
    flags: list[int] = []
    real_open = os.open
    monkeypatch.setattr(locks, "O_BINARY", 0x8000)
    monkeypatch.setattr(events.marks, "O_BINARY", 0x8000)  # where _create_key looks it up

    def spy(path, flag, *args):
        flags.append(flag)
        return real_open(path, flag & ~0x8000, *args)

    monkeypatch.setattr(os, "open", spy)
    assert events._create_key(tmp_path / USER / "outbox.key") is not None
    assert flags and all(flag & 0x8000 for flag in flags)


def test_run_lock_names_one_lock_for_both_spellings_of_a_folder_where_case_is_ignored(
    tmp_path, monkeypatch
):
    import ntpath

    monkeypatch.setattr(os.path, "normcase", ntpath.normcase)  # Windows: case-blind names
    assert locks.lock_path(tmp_path / "Model") == locks.lock_path(tmp_path / "model")
    with (
        locks.run_lock(tmp_path / "Model"),
        pytest.raises(locks.RunLockedError),
        locks.run_lock(tmp_path / "model"),
    ):
        pass


def test_stdout_sink_on_a_cp1252_pipe_writes_escaped_json_instead_of_failing(monkeypatch):
    # Windows gives a redirected stdout the ANSI code page: printing "日本" raised
    # UnicodeEncodeError and the delivery failed.
    import io as stdio
    import json

    raw = stdio.BytesIO()
    stream = stdio.TextIOWrapper(raw, encoding="cp1252")
    monkeypatch.setattr(sys, "stdout", stream)
    events.StdoutSink().send(Event(kind="alert", message="日本 ✓ café", payload={"n": "Ñ"}))
    stream.flush()
    line = raw.getvalue().decode("cp1252")
    assert json.loads(line)["message"] == "日本 ✓ café"
    assert json.loads(line)["payload"] == {"n": "Ñ"}
