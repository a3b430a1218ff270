"""A service manager's stop (SIGTERM: systemd, ``docker stop``; SIGHUP: a closed terminal) as
the orderly stop of Ctrl-C: ``finally`` blocks, lock releases and temporary-file cleanup run,
one line says which signal stopped the command, and the exit code is 128 + its number.

Python's default on SIGTERM and SIGHUP is to die at once, silently, leaving lock files and
temporary files behind. A second stop signal (any of them, Ctrl-C included) ends the process at
once, without cleanup, so a stop that hangs can always be cut short.

A stop is not lost when the exception it raises is swallowed: one raised inside a ``__del__``,
a weakref or garbage-collector callback (Python prints "Exception ignored in ..." and goes on)
is raised again at once, and one a library's ``except BaseException`` ate is raised again at the
next safe point (:func:`raise_if_stopped`, each batch of ``tunesmith.streams``)."""

from __future__ import annotations

import _thread
import atexit
import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, NoReturn

#: The signals turned into an orderly stop, where the platform has them (Windows: no SIGHUP).
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

_received: int | None = None
#: The exception the first stop raised, to know it again when Python swallows it.
_raised: BaseException | None = None
#: Set while that exception is being raised again (not a second signal).
_again = False
#: Set by a service that took the stop and goes on in order (``stopped_note``).
_taken = False
#: Set once :func:`end_stopped_process` ends the process.
_ending = False


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM or SIGHUP. A ``KeyboardInterrupt``, so every loop
    that already stops cleanly on Ctrl-C (training's checkpoint note, ``finance watch``'s
    current batch) stops the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def received() -> int | None:
    """The stop signal this command received, if any."""
    return _received


def exit_code(code: int) -> int:
    """The exit code for a command that ended with ``code``: Ctrl-C's 130 becomes 128 + the
    stop signal's number (143, 129) when SIGTERM or SIGHUP caused it."""
    if code == 128 + signal.SIGINT and _received is not None:
        return 128 + _received
    return code


def stopped_line() -> str:
    """The one line for a command a stop signal ended (Ctrl-C's stays as it was)."""
    if _received is None or _received == signal.SIGINT:
        return "Error: interrupted (Ctrl-C)"
    return f"Error: stopped by {signal.Signals(_received).name}"


def stopped_note(signum: int | None = None) -> str:
    """What a service says when it has stopped in order (exit 0): "stopped", and which signal
    asked, when not Ctrl-C: "stopped by SIGTERM" (``signum``, else the one received)."""
    global _taken
    _taken = True  # the service stops in order: no safe point raises the stop again
    signum = _received if signum is None else signum
    if signum is None or signum == signal.SIGINT:
        return "stopped"
    return f"stopped by {signal.Signals(signum).name}"


def end_stopped_process(code: int) -> NoReturn:
    """End the process of a command a stop signal (or Ctrl-C) ended with ``code``, its cleanup
    done: non-daemon threads are joined and ``atexit`` functions run as at a normal exit, the
    standard streams flushed, then the process exits without the interpreter's finalization.

    Finalization collects every object torch and transformers made (seconds, 6-13 s at load
    10 on 2 cores), and inference streams still in a batch whose result is thrown away
    (``tunesmith.streams``) would be ended inside torch's C++ by Python 3.11-3.13, which
    answers with abort(): SIGABRT ("terminate called without an active exception") instead of
    exit 128 + the signal.

    Objects left in reference cycles are collected first, as finalization would: a database
    connection's close (SQLite's WAL checkpoint) and a temporary file's removal run. A stop
    signal during all this ends the process at once, as any second stop does."""
    global _ending
    _ending = True
    # The CLI's handlers were put back on leaving the command: a second SIGTERM would kill
    # silently (SIG_DFL), a second Ctrl-C raise into the exit handlers.
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) not in (None, signal.SIG_IGN):
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, _on_signal)
    with contextlib.suppress(Exception):
        gc.collect()
    with contextlib.suppress(Exception):
        # What finalization does first: run threading's exit hooks, join non-daemon threads.
        threading._shutdown()  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def ending() -> bool:
    """True once :func:`end_stopped_process` is ending the process (what is left running is
    not waited for)."""
    return _ending


def raise_if_stopped() -> None:
    """At a safe point in the main thread (between two batches): raise the stop again when one
    was received and the exception it raised was swallowed (a library's ``except BaseException``
    that retries), so the command stops instead of going on as if never signalled. Nothing
    while that exception (or one raised because of it) is being handled, nor after a service
    took the stop (:func:`stopped_note`)."""
    if (
        _received is None
        or _taken
        or _ending
        or threading.current_thread() is not threading.main_thread()
        or sys.exc_info()[1] is not None
    ):
        return
    _raise(_received)


def _say(line: str) -> None:
    # After SIGHUP the terminal may be gone (EIO): the stop must not fail on its own message.
    with contextlib.suppress(OSError, ValueError):
        os.write(2, f"{line}\n".encode())


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    global _received, _again
    if _again:
        _again = False
        _raise(_received if _received is not None else signum)
    if _received is not None:
        name = signal.Signals(signum).name
        _say(f"Error: stopped at once by a second {name} (cleanup skipped)")
        os._exit(128 + signum)
    _received = signum
    _raise(signum)


def _raise(signum: int) -> NoReturn:
    global _raised
    _raised = KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)
    raise _raised


def _on_unraisable(unraisable: Any) -> None:
    """Python swallows an exception raised in a ``__del__``, a weakref or garbage-collector
    callback: when it is the stop's, raise it again in the main thread a moment later
    (silently: the command's one line says it stopped)."""
    global _again
    if unraisable.exc_value is not None and unraisable.exc_value is _raised:
        _again = True
        # From another thread, once this callback is over: raised from here, or from the main
        # thread at once, it would land in this hook and be swallowed again.
        timer = threading.Timer(0.05, _send_again, (_received or signal.SIGINT,))
        timer.daemon = True
        timer.start()
        return
    _previous_unraisable(unraisable)


def _send_again(signum: int) -> None:
    # A real signal to the main thread wakes it from a sleep or a wait (EINTR), as the first
    # did; interrupt_main() alone would wait for it to wake by itself.
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident or 0, signum)
    else:
        _thread.interrupt_main(signum)


_previous_unraisable = sys.__unraisablehook__


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within, SIGTERM and SIGHUP raise :class:`Stopped` in the main thread (Ctrl-C raises
    ``KeyboardInterrupt`` as before), and a second of any of them exits at once. The previous
    handlers come back on leaving. Outside the main thread (where Python allows no handler)
    nothing changes."""
    global _received, _raised, _again, _taken, _ending, _previous_unraisable
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received, _raised, _again, _taken, _ending = None, None, False, False, False
    previous = {}
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is None or handler is signal.SIG_IGN:
            # Ignored by whoever started us (nohup ignores SIGHUP, a shell's background job
            # SIGINT): that choice stands. None: a handler set outside Python, kept too.
            continue
        previous[signum] = handler
        signal.signal(signum, _on_signal)
    _previous_unraisable, sys.unraisablehook = sys.unraisablehook, _on_unraisable
    try:
        yield
    finally:
        sys.unraisablehook = _previous_unraisable
        for signum, handler in previous.items():
            signal.signal(signum, handler)
