"""The delivery marks: an HMAC of the stored event and its sink under this setup's
``outbox.key``, which says this setup recorded that delivery."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from tunesmith.events.outbox import default_outbox_path
from tunesmith.locks import O_BINARY
from tunesmith.store import Store

#: The file beside the default outbox holding the key of the delivery marks.
OUTBOX_KEY_FILE = "outbox.key"
_KEY_BYTES = 32
_keys: dict[str, bytes] = {}
_keys_lock = threading.Lock()


def outbox_key_path() -> Path:
    """``$TUNESMITH_HOME/outbox.key``: the key of this setup's delivery marks."""
    return default_outbox_path().parent / OUTBOX_KEY_FILE


def outbox_key(*, create: bool) -> bytes | None:
    """This setup's mark key, made on first use (``create``); None when it cannot be read or
    made (a read-only home): deliveries are then recorded unmarked, and a retry of them asks
    for consent instead of failing the emit."""
    path = outbox_key_path()
    with _keys_lock:
        key = _keys.get(str(path))
        if key is not None:
            return key
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            key = _create_key(path) if create else None
        except OSError:
            key = None
        if key is None or len(key) < _KEY_BYTES:  # absent, or one being written right now
            return None
        _keys[str(path)] = key
        return key


def _create_key(path: Path) -> bytes | None:
    """Write a new random key to ``path``, readable by its owner only; an existing key (another
    process made one first) is kept, never replaced: rows already marked stay valid."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_BINARY, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(_KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic, and unlike a rename it never replaces a key
        return path.read_bytes()
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def delivery_mark(key: bytes, row: Any, sink: str) -> str:
    """The HMAC of an event row of the outbox (as stored) and one of its sinks."""
    fields = [row[name] for name in ("id", "kind", "source", "message", "payload", "created_at")]
    message = json.dumps([*fields, sink], ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def recorded_here(store: Store, event_id: str, sink: str) -> bool:
    """True when this setup recorded the delivery of ``event_id`` to ``sink``, as stored now:
    its mark is the HMAC of the stored event and sink under this setup's key."""
    key = outbox_key(create=False)
    if key is None:
        return False
    rows = store.query(
        "SELECT e.*, d.mark FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id "
        "WHERE d.event_id = ? AND d.sink = ?",
        (event_id, sink),
    )
    if not rows or not isinstance(rows[0]["mark"], str):
        return False
    return hmac.compare_digest(rows[0]["mark"], delivery_mark(key, rows[0], sink))
