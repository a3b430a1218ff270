"""A model (or anything loaded from files) that a long-lived process keeps serving while its
files are rewritten by another process, loading the new version off the request path.

:class:`Reloading` holds the loaded value and the stamp of the files it was loaded from
(:func:`tunesmith.io.change_stamp`, taken before they were read). Each :meth:`~Reloading.get`
compares that stamp with the files' (a few ``stat`` calls) and, in the default
``"background"`` mode, starts one thread that loads the new version while every request keeps
getting the old one; the new one is swapped in whole once loaded, so a request that took the
value once is answered from one version. ``"call"`` loads it inside the request that noticed
(what a notebook may prefer: the next call sees the update), ``"never"`` keeps the version
loaded. A version that fails to load (a corrupt file) leaves the old one serving and is said
once, through ``log`` in the caller's wording (``failure``), and not tried again until the files
change again. A load overtaken by a rewrite (the stamp changed while the files were read),
failed or not, is never swapped in (it may be a mix of two versions) nor said: the newer files
are loaded again at once, up to ``tries`` loads in a row, the rest left to the next check.
``on_swap`` is told of each new version once it serves (to hand it on, or to announce it).

Polling on use, not a timer thread or a signal: an updating job needs no address or process
id of the servers, an idle process loads nothing, and the check costs microseconds against a
request's milliseconds. Two versions are held in memory while the new one loads.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from tunesmith.errors import TunesmithError, UserInputError

T = TypeVar("T")

#: How a :class:`Reloading` picks up rewritten files: off the request path, inside the
#: request that noticed, or not at all.
RELOAD_MODES = ("background", "call", "never")

#: Loads tried in a row while rewrites keep overtaking them (a nightly job that switches
#: several files one after the other); the next check tries again after.
LOAD_TRIES = 3

#: The warning a failed load is said with: ``what`` (:class:`Reloading`'s), ``error`` (the
#: failure's line, :func:`one_line`) and ``loaded_at`` (when the version serving was loaded).
FAILURE = (
    "warning: could not load the new version of {what} ({error}); still serving the version "
    "loaded at {loaded_at}"
)


def check_reload_mode(mode: object) -> str:
    """``mode`` if it is one of :data:`RELOAD_MODES`, else one line naming them."""
    if mode not in RELOAD_MODES:
        raise UserInputError(f"reload must be one of {', '.join(RELOAD_MODES)}, got {mode!r}")
    return str(mode)


def one_line(exc: BaseException) -> str:
    """An error as a log line shows it: the message of the project's own errors, the type and
    message of any other (a numpy ``ValueError`` says little without its type)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, TunesmithError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Reloading(Generic[T]):
    """``value``, loaded from files whose stamp was ``stamp``; ``load()`` loads them again and
    ``current_stamp()`` stamps them now (``None`` while they cannot be loaded at all, e.g.
    between the two renames of a rewrite, or while a writer is at work: nothing is tried
    then). ``what`` names the files in the warning ``log`` is given when a new version fails
    to load, worded by the template ``failure`` (:data:`FAILURE`). ``on_swap(value)`` is
    called with each new version right after it is swapped in (in the loading thread, one
    load at a time; what it raises propagates from :meth:`refresh`). ``tries``: loads in a
    row while rewrites overtake them."""

    def __init__(
        self,
        value: T,
        stamp: Hashable | None,
        load: Callable[[], T],
        current_stamp: Callable[[], Hashable | None],
        *,
        mode: str = "background",
        what: str = "the model",
        log: Callable[[str], None] = _stderr,
        failure: str = FAILURE,
        on_swap: Callable[[T], None] | None = None,
        tries: int = LOAD_TRIES,
    ) -> None:
        self.mode = check_reload_mode(mode)
        self.what = what
        self.log = log
        self.failure = failure
        self.on_swap = on_swap
        self.tries = max(1, tries)
        self._value = value
        self._stamp = stamp
        self._load = load
        self._current_stamp = current_stamp
        self.generation = 1
        self.loaded_at = _now()
        self.error: str | None = None
        self.error_at: str | None = None  # when that load failed (ISO 8601, UTC)
        self._failed: Hashable | None = None
        self._state = threading.Lock()  # the value, stamp and thread, swapped together
        self._loading = threading.Lock()  # one load at a time, background or not
        self._thread: threading.Thread | None = None

    def get(self) -> T:
        """The version to answer this request from: the one loaded, after starting a load of
        a newer one (``"background"``), or after loading it here (``"call"``)."""
        if self.mode == "background":
            if self._stale() is not None:
                self._start()
        elif self.mode == "call" and self._stale() is not None:
            self.refresh()
        return self._value

    def refresh(self) -> bool:
        """Wait for a load under way, then load the files in this call if they changed since
        the version served; True when a new version was swapped in. A version that failed is
        not tried again until the files change again (:attr:`error` says why); one overtaken
        by a rewrite is loaded again at once (``tries`` loads in all)."""
        with self._loading:
            for _ in range(self.tries):
                stamp = self._stale()
                if stamp is None:
                    return False
                swapped = self._load_and_swap(stamp)
                if swapped is not None:
                    return swapped
            return False

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background load under way (at most ``timeout`` seconds); True when none
        is left running."""
        with self._state:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    @property
    def value(self) -> T:
        """The version serving now, without looking at the files."""
        return self._value

    @property
    def loading(self) -> bool:
        """Whether a background load is under way."""
        with self._state:
            return self._thread is not None

    def status(self) -> dict[str, Any]:
        """``mode``, ``generation`` (1 for the version loaded first), ``loaded_at`` (ISO 8601,
        UTC), ``loading`` and ``error`` (the last failed load's line, None once one succeeds)."""
        return {
            "mode": self.mode,
            "generation": self.generation,
            "loaded_at": self.loaded_at,
            "loading": self.loading,
            "error": self.error,
        }

    def _stale(self) -> Hashable | None:
        """The files' stamp when they differ from the version served and from the last that
        failed; None otherwise (also while they cannot be stamped)."""
        stamp = self._current_stamp()
        if stamp is None or stamp == self._stamp or stamp == self._failed:
            return None
        return stamp

    def _start(self) -> None:
        with self._state:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._background, name="tunesmith-reload", daemon=True
            )
            self._thread.start()

    def _background(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # a thread's error would only be printed; try at the next check
            self._fail(None, exc)
        finally:
            with self._state:
                self._thread = None

    def _load_and_swap(self, stamp: Hashable) -> bool | None:
        """Load the files stamped ``stamp`` (the caller holds ``_loading``) and swap them in;
        None when a rewrite overtook the load (nothing swapped in, nothing said)."""
        try:
            value = self._load()
        except Exception as exc:  # any failure keeps the old version serving
            if self._current_stamp() != stamp:
                return None  # the files it read went away under it: not theirs to blame
            self._fail(stamp, exc)
            return False
        if self._current_stamp() != stamp:
            return None  # read across a rewrite: may hold parts of two versions
        with self._state:
            self._value, self._stamp = value, stamp
            self.generation += 1
            self.loaded_at = _now()
            self.error = self.error_at = self._failed = None
        if self.on_swap is not None:
            self.on_swap(value)
        return True

    def _fail(self, stamp: Hashable | None, exc: BaseException) -> None:
        self._failed, self.error, self.error_at = stamp, one_line(exc), _now()
        self.log(self.failure.format(what=self.what, error=self.error, loaded_at=self.loaded_at))
