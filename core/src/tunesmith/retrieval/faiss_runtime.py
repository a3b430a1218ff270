"""faiss, imported on first use, and the OpenMP threads each FAISS call runs on."""

from __future__ import annotations

import os
from typing import Any

from tunesmith.engine.threads import busy_share_now, machine_is_busy, physical_cores
from tunesmith.errors import UserInputError

_faiss_module: Any = None
#: Searches of fewer queries than this run on one OpenMP thread (see :func:`use_threads`).
_PARALLEL_MIN_QUERIES = 8


def load_faiss() -> Any:
    """faiss, imported on first use.

    As ``tunesmith.engine.threads`` does for torch, OpenMP's passive wait policy is chosen when
    other processes already keep the cores busy (and the user set none): spinning threads that
    wait for a descheduled sibling are ruinous on a shared machine. It must be set before
    faiss's OpenMP runtime loads, hence here.
    """
    global _faiss_module
    if _faiss_module is None:
        if not os.environ.get("OMP_WAIT_POLICY", "").strip():
            share = busy_share_now(0.05)
            if share is not None and machine_is_busy(share * physical_cores(), physical_cores()):
                os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        import faiss

        _faiss_module = faiss
    return _faiss_module


def max_threads() -> int:
    """FAISS threads for big work: ``TUNESMITH_FAISS_THREADS``, else one per physical core."""
    wanted = os.environ.get("TUNESMITH_FAISS_THREADS", "").strip()
    if wanted:
        try:
            return max(1, int(wanted))
        except ValueError:
            raise UserInputError(
                f"TUNESMITH_FAISS_THREADS must be a whole number, not {wanted!r}"
            ) from None

    return physical_cores()


def use_threads(n_queries: int | None = None) -> None:
    """Set the OpenMP threads of the calling thread for the next FAISS call.

    OpenMP keeps this setting per thread, so each server thread sets its own. A few queries
    run on one thread: FAISS splits a search over queries, and a team of threads only adds
    start-up and, on a busy machine, waiting (one query over 60,000 vectors on our loaded
    2-core machine: 7 ms on one thread, 48 ms on two).
    """
    small = n_queries is not None and n_queries < _PARALLEL_MIN_QUERIES
    load_faiss().omp_set_num_threads(1 if small else max_threads())
