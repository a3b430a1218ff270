"""CPU thread settings for inference.

Matrix multiplication on a CPU gains nothing from hyper-threads and loses to oversubscription, so
torch gets one thread per *physical* core unless the user chose: ``TUNESMITH_THREADS`` wins, then
``OMP_NUM_THREADS`` (which torch already honours, so it is left alone).

On a machine that is already busy with other work, OpenMP's default of spinning while it waits
for a descheduled sibling thread is ruinous: on our shared 2-core machine (load average 3-5)
2-thread inference ran at 24-33 texts/s with spinning and 74-129 with ``OMP_WAIT_POLICY=PASSIVE``
(banking77, same model, same minute). So when the load average at start-up says the cores are
taken, and the user set no policy, the passive policy is chosen. It must be set before torch is
first imported, which is why :func:`configure_threads` runs at the start of ``load_model``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_configured: int | None = None


def physical_cores() -> int:
    """Physical cores available to this process (hyper-threads counted once), at least 1."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # pragma: no cover - not Linux
        allowed = set(range(os.cpu_count() or 1))
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
    return max(1, len(cores) if cores else len(allowed))


def machine_is_busy(load_average: float, cores: int) -> bool:
    """True when other processes already keep at least half the cores busy."""
    return load_average >= 0.5 * cores


def _choose_wait_policy() -> None:
    if "torch" in sys.modules or os.environ.get("OMP_WAIT_POLICY", "").strip():
        return  # too late (OpenMP reads it when torch loads), or the user's choice
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not POSIX
        return
    if machine_is_busy(load, physical_cores()):
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
            from tunesmith.errors import UserInputError

            raise UserInputError(
                f"TUNESMITH_THREADS must be a whole number, not {requested!r}"
            ) from None
    elif not os.environ.get("OMP_NUM_THREADS", "").strip():
        torch.set_num_threads(physical_cores())
    _configured = torch.get_num_threads()
    return _configured
