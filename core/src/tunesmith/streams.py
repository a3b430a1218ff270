"""Inference batches run as parallel single-threaded streams on a CPU.

On a small model (all-MiniLM-L6-v2: 384-wide matrices, batches of a few hundred tokens) one
matrix product is too small for two cores to share well: the threads spend much of each product
waiting for each other. Two batches at once, each on one core, keep both cores busy instead
(measured on 2 cores: ``Encoder.encode`` 1.25x -> 1.6x sentence-transformers' texts/s, the same
vectors). So :func:`run_streams` runs independent batches in ``streams`` Python threads, each
with one torch thread (torch releases the GIL inside its kernels).

The count comes from :func:`stream_count`: ``TUNESMITH_STREAMS`` when set, else torch's thread
count (see ``engine/threads.py``), so the cores used stay the same. A single batch, or one
stream, runs in the calling thread with all its torch threads (the latency of one query is not
split). A model on a GPU should pass ``streams=1``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tunesmith.errors import UserInputError
from tunesmith.signals import STOP_SIGNALS, ending, raise_if_stopped

#: Environment variable that sets the number of streams (1 turns them off).
STREAMS_ENV = "TUNESMITH_STREAMS"

T = TypeVar("T")

#: Returned to a stream when no batch is left for it (or the caller stopped).
_END = object()


def stream_count(model: Any = None, given: int | None = None) -> int:
    """Streams to run inference in: ``given`` (a caller's ``streams=`` argument, at least 1)
    when not None, else ``TUNESMITH_STREAMS`` when set, else torch's thread count; 1 for a
    ``model`` whose parameters are not on the CPU."""
    import torch

    if given is not None:
        return max(1, int(given))
    if model is not None:
        try:
            device = next(model.parameters()).device.type
        except (StopIteration, AttributeError, TypeError):
            device = "cpu"
        if device != "cpu":
            return 1
    requested = os.environ.get(STREAMS_ENV, "").strip()
    if requested:
        try:
            value = int(requested)
        except ValueError:
            raise UserInputError(
                f"{STREAMS_ENV} must be a whole number, not {requested!r}"
            ) from None
        if value < 1:
            raise UserInputError(f"{STREAMS_ENV} must be 1 or more, not {value}")
        return value
    return max(1, torch.get_num_threads())


def run_streams(
    work: Callable[[T], None],
    batches: Sequence[T],
    streams: int,
    *,
    done: Callable[[T], None] | None = None,
) -> None:
    """Call ``work(batch)`` for every batch under ``torch.inference_mode``, in ``streams``
    parallel threads of one torch thread each (in order, in this thread, when there is one
    stream or one batch). ``done(batch)`` runs in this thread after each batch finishes. The
    first exception stops the batches not yet started and is raised here once the running ones
    end; an interruption (Ctrl-C, a stop signal) is raised at once, without waiting for them
    (none starts after it, and the interpreter's exit waits for them). A stop whose exception
    was swallowed is raised again after the next batch (``tunesmith.signals``). torch's thread
    count is what it was before."""
    import torch

    if streams <= 1 or len(batches) <= 1:
        with torch.inference_mode():
            for batch in batches:
                work(batch)
                if done is not None:
                    done(batch)
                raise_if_stopped()
        return

    # Daemon threads rather than a ThreadPoolExecutor, whose threads the interpreter joins at
    # exit: a stopped command must not wait for batches whose results it throws away.
    todo = iter(batches)  # in the caller's order (longest first keeps the streams even)
    finished: queue.SimpleQueue[tuple[T | None, BaseException | None]] = queue.SimpleQueue()
    lock = threading.Lock()
    stopping = False

    def next_batch() -> Any:
        with lock:
            return _END if stopping else next(todo, _END)

    def stream() -> None:
        # A stop signal the kernel hands to this thread (or to the torch threads it starts,
        # which inherit the mask) would not wake the caller, waiting for the next batch.
        with contextlib.suppress(AttributeError, ValueError, OSError):  # Windows: no sigmask
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        with lock:
            if stopping:
                return
            # Thread-local for OpenMP, but MKL's count is process-wide: restored below, after
            # ``stopping`` is set under this lock, so a late stream cannot set it back to 1.
            torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                while (batch := next_batch()) is not _END:
                    work(batch)
                    finished.put((batch, None))
        except BaseException as exc:  # handed to the caller, who raises it
            finished.put((None, exc))

    saved = torch.get_num_threads()
    threads = [
        threading.Thread(target=stream, name=f"tunesmith-stream-{n}", daemon=True)
        for n in range(min(streams, len(batches)))
    ]
    interrupted = False
    try:
        for thread in threads:
            thread.start()
        for _ in batches:
            batch, error = finished.get()
            if error is not None:
                raise error
            if done is not None:
                done(batch)
            raise_if_stopped()
    except (KeyboardInterrupt, SystemExit):
        # Ctrl-C or a stop signal: the running batches' results will be thrown away, so they
        # are left to end on their own (none starts after this). The CLI ends the process
        # without waiting for them (tunesmith.signals.end_stopped_process); any other exit
        # waits for them (_wait_at_exit).
        interrupted = True
        raise
    finally:
        with lock:
            stopping = True
        started = [thread for thread in threads if thread.ident is not None]
        if interrupted:
            _wait_at_exit(started)
        else:
            for thread in started:
                thread.join()
        with lock:
            torch.set_num_threads(saved)


#: Streams an interrupted caller left running in a batch.
_left_running: set[threading.Thread] = set()
_registered = False


def _wait_at_exit(threads: list[threading.Thread]) -> None:
    """Have the interpreter's exit wait for ``threads`` (streams an interruption left in a
    batch), as it waits for any worker: a daemon thread still inside torch when Python
    finalizes is ended by Python 3.11-3.13 with pthread_exit, which torch's C++ answers with
    abort() (exit 134, "terminate called without an active exception")."""
    global _registered
    if not _registered:
        try:
            threading._register_atexit(_join_left_running)  # type: ignore[attr-defined]
        except RuntimeError:  # the interpreter is already exiting: wait now
            for thread in threads:
                thread.join()
            return
        _registered = True
    _left_running.difference_update([t for t in _left_running if not t.is_alive()])
    _left_running.update(threads)


def _join_left_running() -> None:
    if ending():  # the process ends with os._exit: nothing is finalized under them
        return
    for thread in list(_left_running):
        thread.join()
    _left_running.clear()
