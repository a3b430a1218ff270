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

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from tunesmith.errors import UserInputError

#: Environment variable that sets the number of streams (1 turns them off).
STREAMS_ENV = "TUNESMITH_STREAMS"

T = TypeVar("T")


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
    first exception stops the batches not yet started and is raised here; torch's thread count
    is what it was before."""
    import torch

    if streams <= 1 or len(batches) <= 1:
        with torch.inference_mode():
            for batch in batches:
                work(batch)
                if done is not None:
                    done(batch)
        return

    def one(batch: T) -> T:
        # Thread-local for OpenMP, but MKL's count is process-wide: restored below.
        torch.set_num_threads(1)
        with torch.inference_mode():
            work(batch)
        return batch

    saved = torch.get_num_threads()
    executor = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="tunesmith-stream")
    try:
        # Batches are submitted in the caller's order (longest first keeps the streams even).
        pending = {executor.submit(one, batch) for batch in batches}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in finished:
                batch = future.result()  # raises the worker's exception
                if done is not None:
                    done(batch)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(saved)
