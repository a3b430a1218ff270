"""CPU thread settings for inference.

Matrix multiplication on a CPU gains nothing from hyper-threads and loses to oversubscription, so
torch gets one thread per *physical* core unless the user chose: ``TUNESMITH_THREADS`` wins, then
``OMP_NUM_THREADS`` (which torch already honours, so it is left alone).

On a machine that is already busy with other work, OpenMP's default of spinning while it waits
for a descheduled sibling thread is ruinous, and on a quiet one the passive policy costs as much
the other way (docs/benchmarks.md, "Engine measurements that used to live in its docstrings").
So when other processes keep the cores busy at start-up, and the user set no policy, the passive
policy is chosen. "Busy" is measured over the last tenth of a second (psutil's CPU times), not
from the load average, a one-minute mean that lags. The policy must be set before torch is first
imported, which is why :func:`configure_threads` runs at the start of ``load_model``. Training
calls it after torch is imported (its encode stage), so there it sets the thread count only and
the wait policy is OpenMP's default unless ``OMP_WAIT_POLICY`` was set by the user.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil

from tunesmith.errors import UserInputError

_configured: int | None = None


def physical_cores() -> int:
    """Physical cores available to this process (hyper-threads counted once), at least 1.

    psutil gives the logical CPUs this process may run on; which of them share a core is read
    from ``/proc/cpuinfo``, because ``psutil.cpu_count(logical=False)`` counts the whole
    machine's cores, not the ones in this process's affinity set (a container pinned to 2 of a
    host's 64). Where there is no ``/proc/cpuinfo`` (not Linux), psutil's count, capped by the
    allowed CPUs.
    """
    try:
        allowed = set(psutil.Process().cpu_affinity())
    except (AttributeError, OSError, psutil.Error):  # pragma: no cover - not Linux/Windows/BSD
        allowed = set(range(psutil.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    try:
        processor = physical = None
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "processor":
                processor, physical = int(value), "0"
            elif key == "physical id":
                physical = value
            elif key == "core id" and processor in allowed:
                cores.add((physical or "0", value))
    except (OSError, ValueError):
        cores = set()
    if cores:
        return len(cores)
    return max(1, min(psutil.cpu_count(logical=False) or len(allowed), len(allowed)))


def machine_is_busy(busy_cores: float, cores: int) -> bool:
    """True when other processes already keep at least half the cores busy."""
    return busy_cores >= 0.5 * cores


def busy_share_now(interval: float = 0.1) -> float | None:
    """Share (0-1) of the machine's CPU time other processes use, over ``interval`` seconds.

    ``psutil.cpu_percent``: busy is everything but idle and I/O wait (a core waiting on the disk
    is free for us). This process sleeps meanwhile, so what is counted is other work. A share,
    not a count of cores: in a container the counters can describe a host with many more CPUs
    than ours. None when psutil cannot read the counters here.
    """
    try:
        return min(1.0, max(0.0, psutil.cpu_percent(interval=interval) / 100.0))
    except (OSError, NotImplementedError, psutil.Error):  # pragma: no cover - exotic platform
        return None


def _choose_wait_policy() -> None:
    if "torch" in sys.modules or os.environ.get("OMP_WAIT_POLICY", "").strip():
        return  # too late (OpenMP reads it when torch loads), or the user's choice
    cores = physical_cores()
    share = busy_share_now()
    if share is not None:
        busy = share * cores
    else:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):  # pragma: no cover - not POSIX
            return
    if machine_is_busy(busy, cores):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def configure_threads() -> int:
    """Set torch's intra-op threads once per process and return the number in force.

    Call it before torch is imported for the OpenMP wait policy to take effect.
    """
    global _configured
    _choose_wait_policy()
    import torch

    if _configured is not None:
        return torch.get_num_threads()
    requested = os.environ.get("TUNESMITH_THREADS", "").strip()
    if requested:
        try:
            torch.set_num_threads(max(1, int(requested)))
        except ValueError:
            raise UserInputError(
                f"TUNESMITH_THREADS must be a whole number, not {requested!r}"
            ) from None
    elif not os.environ.get("OMP_NUM_THREADS", "").strip():
        torch.set_num_threads(physical_cores())
    _configured = torch.get_num_threads()
    return _configured
