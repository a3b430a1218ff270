"""Durations as users type them on the command line: ``15m``, ``1h``, ``30d``, ``4w``.

One reading for every command that takes one (finance's ``--bucket``, ``--cooldown`` and
``--older-than``; the outbox's ``--since`` and ``--delivered-before`` ages), so that a unit
means the same everywhere. Each caller words its own refusal: a bucket of 0 and an age of 0
are wrong for different reasons.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
#: Seconds in each unit a duration may be written in.
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration_seconds(text: object) -> float | None:
    """``text`` (a number and one of the units ``s m h d w``, any case, spaces around) in
    seconds, 0 included; None when it is not written as a duration."""
    match = _DURATION.match(str(text))
    if not match:
        return None
    return float(match.group(1)) * UNITS[match.group(2).lower()]
