"""Which process is delivering an outbox row (``host:pid:start time``), and whether it still
runs: a row another live process delivers is left to it."""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path


def _start_time(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``); ``""`` where
    unknown. A pid reused by a later process has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()  # after the name, which may hold spaces
    return fields[19] if len(fields) > 19 else ""


def current_owner() -> str:
    """This process, as an outbox row records the one delivering it: host, pid, start time."""
    return _owner_of(os.getpid())


@functools.cache
def _owner_of(pid: int) -> str:
    # Keyed by pid, so a forked child names itself; read once, not per event and delivery.
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def owner_alive(owner: str | None) -> bool:
    """True when ``owner`` names a process of this host that is still running. A row of
    another host is taken as abandoned: delivery is at least once, and an outbox shared by a
    host that is gone (a container restarted under another name) must not keep it for ever."""
    from tunesmith.io import process_alive

    parts = (owner or "").rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid, started = parts[0], int(parts[1]), parts[2]
    if host != socket.gethostname() or not process_alive(pid):
        return False
    return not started or _start_time(pid) in ("", started)
