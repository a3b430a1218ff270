"""Events as JSON: the strict JSON the outbox stores and every sink sends."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

from tunesmith.hooktypes import Event, utc_now


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays, paths, dates and sets become plain JSON; any other object is
    a TypeError: its ``str`` (``<Model object at 0x...>``, ``b'...'``) is no data a receiver
    can use, and an event payload that is not JSON is refused (see :func:`emit`)."""
    import datetime

    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} {str(value)[:60]!r} is not JSON data")


def strict_json(value: Any) -> str:
    """``value`` as JSON that every reader accepts: numpy values become plain ones, and NaN and
    ±Infinity, which JSON has no words for (Python writes ``NaN``, which ``JSON.parse`` and most
    webhook receivers refuse), become ``null``."""
    text = json.dumps(value, ensure_ascii=False, default=_json_default)
    if "NaN" not in text and "Infinity" not in text:  # the common case: no second pass
        return text
    return json.dumps(json.loads(text, parse_constant=lambda _word: None), ensure_ascii=False)


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict, with ``created_at`` filled in when it was empty."""
    data = asdict(event)
    if not data["created_at"]:
        data["created_at"] = utc_now()
    return data


def event_to_json(event: Event) -> str:
    """The event as one line of strict JSON (what every built-in sink writes or posts)."""
    return strict_json(event_to_dict(event))
