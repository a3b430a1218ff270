"""A service manager's stop (SIGTERM: systemd, ``docker stop``; SIGHUP: a closed terminal) as
the orderly stop of Ctrl-C: ``finally`` blocks, lock releases and temporary-file cleanup run,
one line says which signal stopped the command, and the exit code is 128 + its number.

Python's default on SIGTERM and SIGHUP is to die at once, silently, leaving lock files and
temporary files behind. A second stop signal (any of them, Ctrl-C included) ends the process at
once, without cleanup, so a stop that hangs can always be cut short."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: The signals turned into an orderly stop, where the platform has them (Windows: no SIGHUP).
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

_received: int | None = None


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
    signum = _received if signum is None else signum
    if signum is None or signum == signal.SIGINT:
        return "stopped"
    return f"stopped by {signal.Signals(signum).name}"


def _say(line: str) -> None:
    # After SIGHUP the terminal may be gone (EIO): the stop must not fail on its own message.
    with contextlib.suppress(OSError, ValueError):
        os.write(2, f"{line}\n".encode())


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    global _received
    if _received is not None:
        name = signal.Signals(signum).name
        _say(f"Error: stopped at once by a second {name} (cleanup skipped)")
        os._exit(128 + signum)
    _received = signum
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within, SIGTERM and SIGHUP raise :class:`Stopped` in the main thread (Ctrl-C raises
    ``KeyboardInterrupt`` as before), and a second of any of them exits at once. The previous
    handlers come back on leaving. Outside the main thread (where Python allows no handler)
    nothing changes."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received = None
    previous = {}
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is None or handler is signal.SIG_IGN:
            # Ignored by whoever started us (nohup ignores SIGHUP, a shell's background job
            # SIGINT): that choice stands. None: a handler set outside Python, kept too.
            continue
        previous[signum] = handler
        signal.signal(signum, _on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
