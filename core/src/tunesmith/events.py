"""Events, the sinks that deliver them, and the outbox that makes delivery reliable.

A sink is named by a URL: ``stdout``, ``jsonl:PATH``, ``webhook:https://...``. Plugins add schemes
through the ``tunesmith_event_sinks`` hook. :func:`emit` first records the event and one delivery
row per sink in an outbox (tables ``outbox_events`` and ``outbox_deliveries`` of a
:class:`~tunesmith.store.Store`, by default ``$TUNESMITH_HOME/events.sqlite``), then delivers to
each sink, retrying a failure with exponential backoff a bounded number of times. A delivery that
still fails stays in the outbox as ``failed`` with its attempts and last error, until
``tunesmith events retry`` (or :func:`retry`) delivers it. Delivery is at least once: receivers
drop repeats by the event's ``id``.

An outbox is a file, and a file can come from elsewhere (a KB folder someone sent). Each delivery
row therefore carries a mark: an HMAC of the event and the sink under a key kept in
``$TUNESMITH_HOME/outbox.key``. :func:`retry` re-sends a row only when its mark is this setup's
(it recorded that event for that sink), the sink is ``stdout``, or the caller allows the sink by
name: a foreign outbox cannot make a retry POST to a URL, or append to a file, it chose.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import shlex
import socket
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.data.limits import lone_surrogate
from tunesmith.errors import UserInputError
from tunesmith.hooktypes import Event, EventSink, utc_now
from tunesmith.locks import O_BINARY, holding_lock
from tunesmith.plugins import collect_dict
from tunesmith.store import Store

STATUSES = ("pending", "delivered", "failed")

OUTBOX_NAMESPACE = "events"
OUTBOX_MIGRATIONS = [
    """
    CREATE TABLE outbox_events (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        message TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE outbox_deliveries (
        event_id TEXT NOT NULL REFERENCES outbox_events(id) ON DELETE CASCADE,
        sink TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        last_attempt_at TEXT,
        delivered_at TEXT,
        PRIMARY KEY (event_id, sink)
    );
    CREATE INDEX outbox_deliveries_status ON outbox_deliveries(status);
    CREATE INDEX outbox_events_created ON outbox_events(created_at);
    """,
    # The process delivering a row (see _owner): two `events retry` at once, or a retry of
    # pending rows beside a live emitter, each sent the same delivery.
    """
    ALTER TABLE outbox_deliveries ADD COLUMN owner TEXT;
    """,
    # The HMAC that says this setup recorded the delivery (see _mark): `events retry` re-sends
    # only those, so an outbox from elsewhere cannot choose where a retry POSTs or writes.
    """
    ALTER TABLE outbox_deliveries ADD COLUMN mark TEXT;
    """,
]

#: The file beside the default outbox holding the key of the delivery marks.
OUTBOX_KEY_FILE = "outbox.key"
_KEY_BYTES = 32
_keys: dict[str, bytes] = {}
_keys_lock = threading.Lock()


def _start_time(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``); ``""`` where
    unknown. A pid reused by a later process has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()  # after the name, which may hold spaces
    return fields[19] if len(fields) > 19 else ""


def _owner() -> str:
    """This process, as an outbox row records the one delivering it: host, pid, start time."""
    return _owner_of(os.getpid())


@functools.cache
def _owner_of(pid: int) -> str:
    # Keyed by pid, so a forked child names itself; read once, not per event and delivery.
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _owner_alive(owner: str | None) -> bool:
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


def outbox_key_path() -> Path:
    """``$TUNESMITH_HOME/outbox.key``: the key of this setup's delivery marks."""
    return default_outbox_path().parent / OUTBOX_KEY_FILE


def _outbox_key(*, create: bool) -> bytes | None:
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


def _mark(key: bytes, row: Any, sink: str) -> str:
    """The HMAC of an event row of the outbox (as stored) and one of its sinks."""
    fields = [row[name] for name in ("id", "kind", "source", "message", "payload", "created_at")]
    message = json.dumps([*fields, sink], ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _recorded_here(store: Store, event_id: str, sink: str) -> bool:
    """True when this setup recorded the delivery of ``event_id`` to ``sink``, as stored now:
    its mark is the HMAC of the stored event and sink under this setup's key."""
    key = _outbox_key(create=False)
    if key is None:
        return False
    rows = store.query(
        "SELECT e.*, d.mark FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id "
        "WHERE d.event_id = ? AND d.sink = ?",
        (event_id, sink),
    )
    if not rows or not isinstance(rows[0]["mark"], str):
        return False
    return hmac.compare_digest(rows[0]["mark"], _mark(key, rows[0], sink))


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


class StdoutSink:
    """Prints each event as one JSON line on stdout."""

    sink_url = "stdout"

    def __init__(self, _rest: str = "") -> None:
        pass

    def send(self, event: Event) -> None:
        line = event_to_json(event)
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        try:
            line.encode(encoding)
        except (UnicodeEncodeError, LookupError):
            # A Windows pipe or file is cp1252 (the ANSI code page), which has no "日本" or
            # "✓": the same JSON with \u escapes, which every reader decodes alike.
            line = json.dumps(json.loads(line), ensure_ascii=True)
        print(line, flush=True)


#: The files a ``jsonl:`` sink may append to.
JSONL_SUFFIXES = (".jsonl", ".ndjson")


class JsonlSink:
    """Appends each event as one JSON line to a file; one write per line, so lines stay whole.

    A write that fails part-way (a full disk) is cut back off, and a line a killed writer left
    unfinished is ended first: either would glue the next event (the retry of this one) onto
    a fragment, and a reader would lose both.
    """

    def __init__(self, path: str) -> None:
        if not path:
            raise UserInputError("the jsonl sink needs a file: jsonl:PATH")
        self.path = Path(path)
        if self.path.suffix.lower() not in JSONL_SUFFIXES:
            # An outbox records its sinks, and `events retry` re-sends to them: a database
            # someone else sent could otherwise append lines to ~/.bashrc or a crontab.
            raise UserInputError(
                f"the jsonl sink writes a {' or '.join(JSONL_SUFFIXES)} file, not {_quoted(path)}"
            )
        # Absolute: the outbox records this URL, and `events retry` may run in another folder.
        self.sink_url = f"jsonl:{self.path.resolve()}"
        self._lock = threading.Lock()

    def send(self, event: Event) -> None:
        line = (event_to_json(event) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (
            self._lock,
            self.path.open("ab", buffering=0) as handle,
            # Writers of one file in other threads or processes each have their own sink: the
            # check of the last byte and the write must not interleave with theirs (a size seen
            # before another writer's bytes were readable made a blank line).
            holding_lock(handle.fileno()),
        ):
            end = handle.seek(0, os.SEEK_END)
            if end and not self._ends_a_line(end):
                line = b"\n" + line
            try:
                written = 0
                while written < len(line):  # an unbuffered write may take only a part
                    written += handle.write(line[written:])
            except BaseException:
                # Only when what follows ``end`` can be this line's part alone: a file grown
                # past it holds a line another process appended meanwhile, which stays.
                with contextlib.suppress(OSError):
                    if end <= os.fstat(handle.fileno()).st_size <= end + len(line):
                        handle.truncate(end)
                raise

    def _ends_a_line(self, end: int) -> bool:
        with self.path.open("rb") as reader:
            reader.seek(end - 1)
            return reader.read(1) == b"\n"


def shown_url(url: str) -> str:
    """``url`` as logs and error messages show it: its scheme, host and port, with the user
    info, path, query and fragment (where webhook services keep their token, such as
    ``https://hooks.slack.com/services/T.../B.../SECRET``) replaced by a fingerprint of the whole
    URL, so that two webhooks on one host still read apart. The outbox keeps the full URL."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or not parts.scheme or not parts.hostname:
        return f"<url {hashlib.sha256(url.encode('utf-8', 'replace')).hexdigest()[:8]}>"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    base = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    if (
        parts.username is None
        and parts.password is None
        and not (parts.path.strip("/") or parts.query or parts.fragment)
    ):
        return base + parts.path
    fingerprint = hashlib.sha256(url.encode("utf-8", "replace")).hexdigest()[:8]
    return f"{base}/<hidden {fingerprint}>"


def shown_sink(name: str) -> str:
    """A sink's recorded name as logs show it: a URL in it (``webhook:https://...``, or a
    plugin's ``scheme:https://...``) passed through :func:`shown_url`; other names as they are."""
    scheme, _, rest = name.partition(":")
    if "://" in rest:
        return f"{scheme}:{shown_url(rest)}"
    return name


def _without_secrets(text: str, name: str) -> str:
    """``text`` (an error of a delivery to sink ``name``) with the sink's URL, which may hold a
    token, replaced by its :func:`shown_sink` form."""
    shown = shown_sink(name)
    if shown == name:
        return text
    _scheme, _, rest = name.partition(":")
    return text.replace(name, shown).replace(rest, shown.partition(":")[2])


def _check_webhook_url(url: str) -> None:
    """A UserInputError unless ``url`` is an http(s) URL with a host that a request can use.

    Checked when the sink is built, so that a typo is refused before the event is recorded,
    not retried and kept as a failed delivery that no retry can ever deliver.
    """
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise UserInputError(f"the webhook sink needs an http(s) URL, got {url!r}")
    problem = None
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        problem = "it holds spaces or control characters (percent-encode them)"
    elif lone_surrogate(url):
        problem = "it holds a lone surrogate, not a character"
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
        except ValueError as exc:
            problem = str(exc)
        else:
            if not parts.hostname:
                problem = "it names no host"
    if problem:
        raise UserInputError(f"the webhook sink URL {url!r} is malformed: {problem}")


class WebhookSink:
    """POSTs each event as JSON to a URL; any failure (including a non-2xx status) raises.

    ``connect_timeout`` bounds the TCP connect, ``read_timeout`` each wait for the server, and
    ``deadline`` the whole call: a server that trickles a byte just inside the read timeout is cut
    off at the deadline (a timer shuts the socket down, which wakes the blocked read).
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        deadline: float = 10.0,
    ) -> None:
        _check_webhook_url(url)
        self.url = url
        self.sink_url = f"webhook:{url}"
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self._client: Any = None
        self._client_lock = threading.Lock()

    def _http(self) -> Any:
        """One client per sink (building one costs ~0.2 s: TLS context, certificates).

        Keep-alive is off: every call opens its own connection, which the deadline timer can
        cut (a reused pooled connection would not be reported to it).
        """
        import httpx

        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(
                        connect=min(self.connect_timeout, self.deadline),
                        read=self.read_timeout,
                        write=self.read_timeout,
                        pool=self.connect_timeout,
                    ),
                    limits=httpx.Limits(max_keepalive_connections=0),
                )
            return self._client

    def send(self, event: Event) -> None:
        import httpx

        body = event_to_json(event).encode("utf-8")
        sockets: list[socket.socket] = []
        expired = threading.Event()

        def trace(name: str, info: dict[str, Any]) -> None:
            # httpcore reports each stream it opens; keep its socket so the timer can cut it.
            if name.endswith(("connect_tcp.complete", "start_tls.complete")):
                sock = info["return_value"].get_extra_info("socket")
                if sock is not None:
                    sockets.append(sock)

        def cut() -> None:
            expired.set()
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        client = self._http()
        timer = threading.Timer(self.deadline, cut)
        timer.daemon = True
        timer.start()
        try:
            with client.stream(
                "POST",
                self.url,
                content=body,
                headers={"Content-Type": "application/json"},
                extensions={"trace": trace},
            ) as response:
                cut_short = False
                for _chunk in response.iter_raw():
                    if expired.is_set():
                        cut_short = True
                        break
                if cut_short:
                    raise TimeoutError
                response.raise_for_status()
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            # The URL as shown (no token): these errors go to stderr and the outbox.
            if expired.is_set():
                raise TimeoutError(
                    f"{shown_url(self.url)} did not answer within the {self.deadline:g} s deadline"
                ) from None
            if isinstance(exc, httpx.HTTPStatusError):
                raise RuntimeError(
                    f"{shown_url(self.url)} answered {exc.response.status_code}"
                ) from None
            raise
        finally:
            timer.cancel()


BUILTIN_SINKS: dict[str, Any] = {
    "stdout": StdoutSink,
    "jsonl": JsonlSink,
    "webhook": WebhookSink,
}


def make_sink(url: str) -> EventSink:
    """Build the sink a URL names, from the built-ins and every plugin's schemes."""
    factories = collect_dict("tunesmith_event_sinks")
    scheme, _, rest = url.partition(":")
    if scheme == "webhook" and rest.startswith("//"):
        rest = "https:" + rest
    if scheme not in factories:
        known = ", ".join(sorted(factories))
        raise UserInputError(
            f"unknown event sink {scheme!r} in {_quoted(url)}; known: {known}{_sink_hint(url)}"
        )
    try:
        sink = factories[scheme](rest)
    except UserInputError:
        raise
    except Exception as exc:  # a plugin's factory bug: one line naming the URL, not a traceback
        raise UserInputError(
            f"event sink {url!r} could not be built: {type(exc).__name__}: {exc}"
        ) from exc
    # Remember the URL, so the outbox can record it and `events retry` can rebuild the sink;
    # a sink that names itself (a jsonl path made absolute) keeps its own.
    if not getattr(sink, "sink_url", None):
        with contextlib.suppress(AttributeError):
            sink.sink_url = url
    return sink


#: A Windows path that starts with its drive (``C:\\...`` or ``C:/...``): a sink URL split at
#: its first colon would take the drive letter for a scheme.
_DRIVE_PATH = re.compile(r"^[A-Za-z]:[\\/]")


def _quoted(text: str) -> str:
    """``text`` in quotes as typed: ``repr`` would double each backslash of a Windows path."""
    return f"'{text}'" if text.isprintable() else repr(text)


def _sink_hint(url: str) -> str:
    """What a URL with an unknown scheme was likely meant as: a file (``C:\\x.jsonl``, or a
    bare ``feed.jsonl``) or a webhook (a bare ``https://...``)."""
    if url.startswith(("http://", "https://")):
        return "; for a webhook write webhook:https://..."  # the URL may hold a token
    if _DRIVE_PATH.match(url) or url.lower().endswith(JSONL_SUFFIXES):
        return f"; for a file write jsonl:{url}"
    return ""


def refuse_stdout_sink_with_json(sinks: Iterable[str] | None, as_json: bool) -> None:
    """Refuse a ``stdout`` sink beside ``--json``, before any work.

    Both write to standard output: the event lines would come before the result and break the
    one JSON document a script reads there."""
    if as_json and any(str(url).partition(":")[0] == "stdout" for url in sinks or ()):
        raise UserInputError(
            "--sink stdout cannot be combined with --json (both write to standard output); "
            "use --sink jsonl:FILE.jsonl, or leave out --json"
        )


def sink_name(sink: str | EventSink) -> str:
    """The name a delivery is recorded under: the sink's URL, else its class."""
    if isinstance(sink, str):
        return sink
    url = getattr(sink, "sink_url", None)
    if isinstance(url, str) and url:
        return url
    return f"{type(sink).__module__}.{type(sink).__qualname__}"


@dataclass(frozen=True)
class RetryPolicy:
    """``tries`` attempts per delivery, waiting ``base_delay * 2**i`` (at most ``max_delay``).

    ``send_timeout`` bounds each attempt: a sink whose ``send`` has not returned by then counts
    as failed (``None``: wait for ever). Only the webhook sink bounds itself; a plugin's sink
    that hangs would otherwise hold ``emit``, and the request or command behind it, for good.
    """

    tries: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    send_timeout: float | None = 10.0

    def __post_init__(self) -> None:
        # tries=0 would make no attempt yet report every delivery as delivered.
        if isinstance(self.tries, bool) or not isinstance(self.tries, int) or self.tries < 1:
            raise UserInputError(
                f"RetryPolicy.tries must be a whole number >= 1, got {self.tries!r}"
            )
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise UserInputError(
                    f"RetryPolicy.{name} must be a finite number >= 0, got {value!r}"
                )
        timeout = self.send_timeout
        if timeout is not None and (
            not isinstance(timeout, int | float) or not 0 < timeout < float("inf")
        ):
            raise UserInputError(
                f"RetryPolicy.send_timeout must be a positive number or None, got {timeout!r}"
            )

    def delay(self, attempt: int) -> float:
        """The wait before attempt ``attempt`` (1-based; the first attempt does not wait)."""
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 2)) if attempt > 1 else 0.0


@dataclass
class EmitReport:
    """What one :func:`emit` (or one event's :func:`retry`) achieved, by sink name."""

    event_id: str
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class Delivery:
    """One (event, sink) row of the outbox."""

    event: Event
    sink: str
    status: str
    attempts: int
    last_error: str | None
    last_attempt_at: str | None
    delivered_at: str | None

    def to_dict(self) -> dict[str, Any]:
        data = {f"event_{k}" if k == "id" else k: v for k, v in event_to_dict(self.event).items()}
        data.update(
            sink=self.sink,
            status=self.status,
            attempts=self.attempts,
            last_error=self.last_error,
            last_attempt_at=self.last_attempt_at,
            delivered_at=self.delivered_at,
        )
        return data


def default_outbox_path() -> Path:
    """``$TUNESMITH_HOME/events.sqlite`` (``~/.cache/tunesmith`` when the variable is unset)."""
    home = os.environ.get("TUNESMITH_HOME") or Path.home() / ".cache" / "tunesmith"
    return Path(home) / "events.sqlite"


_open_outboxes: dict[str, Store] = {}
_migrated: weakref.WeakSet[Store] = weakref.WeakSet()
_outbox_lock = threading.Lock()


def open_outbox(outbox: Store | str | Path | None = None) -> Store:
    """The outbox store: a given Store (tables added to it), a path, or the default file.

    Paths are opened once per process and kept open (a Store is thread-safe), so frequent
    emits do not pay for opening and migrating each time.
    """
    with _outbox_lock:
        if isinstance(outbox, Store):
            if outbox not in _migrated:
                outbox.migrate(OUTBOX_NAMESPACE, OUTBOX_MIGRATIONS)
                # Inside the caller's transaction (record()) the tables roll back with it:
                # remembered only once committed, else the next emit finds no table.
                if not outbox.in_transaction:
                    _migrated.add(outbox)
            return outbox
        path = Path(outbox) if outbox is not None else default_outbox_path()
        key = str(path.resolve())
        store = _open_outboxes.get(key)
        if store is None:
            store = Store.open(path, namespace=OUTBOX_NAMESPACE, migrations=OUTBOX_MIGRATIONS)
            _open_outboxes[key] = store
            _migrated.add(store)
        return store


def _check_event(event: Event) -> str:
    """The payload as JSON; a UserInputError naming the field an outbox cannot store.

    Checked before anything is recorded or sent: SQLite refuses a lone surrogate and ``None``
    for the text columns, and ``json.dumps`` a circular payload or a tuple key, each with a
    bare library error that says nothing of the event.
    """
    if not isinstance(event, Event):
        raise UserInputError(f"emit takes a tunesmith.hooktypes.Event, got {type(event).__name__}")
    texts = {name: getattr(event, name) for name in ("kind", "message", "source", "created_at")}
    texts["id"] = event.id
    for name, value in texts.items():
        required = name in ("kind", "id")
        if not isinstance(value, str) or (required and not value):
            what = "a non-empty string" if required else "a string"
            raise UserInputError(f"event {name} must be {what}, got {value!r}")
    if not isinstance(event.payload, dict):
        raise UserInputError(f"event payload must be a dict, got {type(event.payload).__name__}")
    try:
        texts["payload"] = strict_json(event.payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UserInputError(
            f"event {event.kind!r}: payload is not JSON-serialisable ({exc})"
        ) from None
    for name, text in texts.items():
        if found := lone_surrogate(text):
            raise UserInputError(
                f"event {event.kind!r}: {name} holds U+{found[1]:04X}, a lone "
                "surrogate that is not a character"
            )
    return texts["payload"]


def _record(store: Store, event: Event, names: list[str], payload: str) -> None:
    """Write the event and a pending delivery per sink in one transaction, before any send."""
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO outbox_events(id, kind, source, message, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
            (
                event.id,
                event.kind,
                event.source,
                event.message,
                payload,
                event.created_at or utc_now(),
            ),
        )
        owner = _owner()
        # Marked from the event row as stored (an id recorded before keeps its first content).
        key = _outbox_key(create=True)
        stored = tx.query("SELECT * FROM outbox_events WHERE id = ?", (event.id,))[0]
        marks = [_mark(key, stored, name) if key is not None else None for name in names]
        tx.executemany(
            "INSERT INTO outbox_deliveries(event_id, sink, status, owner, mark) "
            "VALUES (?, ?, 'pending', ?, ?) "
            "ON CONFLICT(event_id, sink) DO UPDATE SET status = 'pending', owner = ?, mark = ?",
            [
                (event.id, name, owner, mark, owner, mark)
                for name, mark in zip(names, marks, strict=True)
            ],
        )


def _send_within(sink: Any, event: Event, timeout: float | None) -> None:
    """``sink.send(event)``, given up on after ``timeout`` seconds (a ``TimeoutError``).

    The send runs in a daemon thread: Python cannot stop a call that hangs, so a timed-out send
    is abandoned there, and the delivery is recorded as failed (``events retry`` re-sends it).
    """
    if timeout is None:
        sink.send(event)
        return
    outcome: dict[str, BaseException] = {}

    def send() -> None:
        try:
            sink.send(event)
        except BaseException as exc:  # handed to the caller's thread, which decides
            outcome["error"] = exc

    worker = threading.Thread(target=send, name="tunesmith-sink-send", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"the sink did not return within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]


def _deliver(store: Store, event: Event, name: str, sink: Any, policy: RetryPolicy) -> str | None:
    """Send with retries, recording every attempt; the last error, or None once delivered."""
    error = None
    for attempt in range(1, policy.tries + 1):
        time.sleep(policy.delay(attempt))
        try:
            _send_within(sink, event, policy.send_timeout)
        except Exception as exc:  # any delivery failure is retried and recorded, never fatal
            # A library's error may quote the URL, token and all (kept in the outbox and shown
            # by `events list`): the sink's own URL is replaced by its shown form.
            error = _without_secrets(f"{type(exc).__name__}: {exc}", name)[:2000]
            status = "failed" if attempt == policy.tries else "pending"
            # Still ours while pending (between attempts); no one's once it rests as failed.
            store.execute(
                "UPDATE outbox_deliveries SET attempts = attempts + 1, last_error = ?, "
                "last_attempt_at = ?, status = ?, owner = CASE WHEN ? = 'failed' THEN NULL "
                "ELSE owner END WHERE event_id = ? AND sink = ?",
                (error, utc_now(), status, status, event.id, name),
            )
            continue
        now = utc_now()
        store.execute(
            "UPDATE outbox_deliveries SET attempts = attempts + 1, status = 'delivered', "
            "last_attempt_at = ?, delivered_at = ?, owner = NULL WHERE event_id = ? AND sink = ?",
            (now, now, event.id, name),
        )
        return None
    return error


def _send_all(
    store: Store, event: Event, named: list[tuple[str, Any]], policy: RetryPolicy
) -> EmitReport:
    report = EmitReport(event.id)
    for name, sink in named:
        error = _deliver(store, event, name, sink, policy)
        if error is None:
            report.delivered.append(name)
        else:
            report.failed.append(name)
            report.errors[name] = error
    return report


def _say_failed(report: EmitReport, store: Store) -> None:
    if report.failed:
        # Logged by servers (`support serve`, `finance watch`): a webhook's token stays out.
        details = "; ".join(
            f"{shown_sink(name)}: {_without_secrets(report.errors[name], name)}"
            for name in report.failed
        )
        print(
            f"tunesmith: event {report.event_id} not delivered to {details} (kept in the outbox "
            f"{store.path}; `{retry_command(store.path)}` re-sends it)",
            file=sys.stderr,
        )


def retry_command(outbox: str | Path) -> str:
    """The command that re-sends the failed deliveries of ``outbox``: ``--outbox`` named unless
    it is the default one (a KB's or finance database's outbox: a bare `tunesmith events retry`
    looked in the default outbox and said "re-sent 0 deliveries; 0 still failing")."""
    if Path(outbox).resolve() == default_outbox_path().resolve():
        return "tunesmith events retry"
    return f"tunesmith events retry --outbox {shlex.quote(str(outbox))}"


def emit(
    event: Event,
    sinks: list[str | EventSink],
    *,
    outbox: Store | str | Path | None = None,
    retry: RetryPolicy | None = None,
) -> EmitReport:
    """Record ``event`` in the outbox, then deliver it to every sink (URLs or sink objects).

    One failing sink does not stop the others. A bad sink URL, or an event the outbox cannot
    store (a payload that is not JSON-serialisable), raises before anything is recorded.
    Returns which sinks got the event; failures are also said on stderr.
    """
    return send(record(event, sinks, outbox=outbox), retry=retry)


@dataclass
class Outgoing:
    """An event recorded in the outbox with a pending delivery per sink, not yet sent
    (:func:`record`); :func:`send` delivers it."""

    store: Store
    event: Event
    sinks: list[tuple[str, Any]]


def record(
    event: Event, sinks: list[str | EventSink], *, outbox: Store | str | Path | None = None
) -> Outgoing:
    """The first half of :func:`emit`: check ``event`` and record it with a pending delivery per
    sink, without sending. Inside a caller's ``with store.transaction()`` on the outbox's store,
    the event commits with the caller's own writes or not at all (a transactional outbox);
    :func:`send` it after the transaction, so that no sink waits on an open transaction."""
    payload = _check_event(event)
    if isinstance(sinks, str) or not isinstance(sinks, list | tuple):
        # A string would be taken for one sink URL per character.
        raise UserInputError(f"sinks must be a list of sink URLs or objects, got {sinks!r}")
    named: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for item in sinks:
        sink = make_sink(item) if isinstance(item, str) else item
        name = base = sink_name(sink)
        if lone_surrogate(name):
            raise UserInputError(
                f"event sink {name!r} holds a lone surrogate, not a character; the outbox "
                "cannot record it"
            )
        if name in seen and (isinstance(item, str) or getattr(item, "sink_url", None)):
            continue  # the same URL twice in one call: deliver once
        n = 2
        while name in seen:  # two URL-less sink objects of one class: keep their rows apart
            name, n = f"{base}#{n}", n + 1
        seen.add(name)
        named.append((name, sink))
    store = open_outbox(outbox)
    _record(store, event, [name for name, _sink in named], payload)
    return Outgoing(store, event, named)


def send(outgoing: Outgoing, *, retry: RetryPolicy | None = None) -> EmitReport:
    """The second half of :func:`emit`: deliver a :func:`record`-ed event to its sinks, with
    retries; failures stay in the outbox and are said on stderr."""
    report = _send_all(outgoing.store, outgoing.event, outgoing.sinks, retry or RetryPolicy())
    _say_failed(report, outgoing.store)
    return report


def _row_to_delivery(row: Any) -> Delivery:
    event = Event(
        kind=row["kind"],
        message=row["message"],
        payload=json.loads(row["payload"]),
        source=row["source"],
        created_at=row["created_at"],
        id=row["id"],
    )
    return Delivery(
        event=event,
        sink=row["sink"],
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        last_attempt_at=row["last_attempt_at"],
        delivered_at=row["delivered_at"],
    )


def _holds_no_outbox(outbox: Store | str | Path | None) -> bool:
    """True for a path with no file yet, and for a database file that exists without the
    outbox's tables: reading must create neither the file nor the tables (and WAL mode) in it,
    such as another program's file named by mistake. A file SQLite cannot read is left to the
    store's one-line error."""
    import sqlite3

    if isinstance(outbox, Store) or str(outbox) == ":memory:":
        return False
    path = Path(outbox) if outbox is not None else default_outbox_path()
    if not path.exists():
        return True
    if outbox is None or not path.is_file():
        return False
    try:
        db = sqlite3.connect(f"{Path(outbox).absolute().as_uri()}?mode=ro", uri=True)
        try:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox_events'"
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return found is None


def list_deliveries(
    outbox: Store | str | Path | None = None,
    *,
    status: str | None = None,
    event_ids: list[str] | None = None,
    newest: int | None = None,
) -> list[Delivery]:
    """Deliveries in the outbox, oldest first; ``newest=N`` keeps the N most recent."""
    if status is not None and status not in STATUSES:
        raise UserInputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if isinstance(event_ids, str):
        raise UserInputError(f"event_ids must be a list of ids, got {event_ids!r}")
    if newest is not None and newest < 0:
        raise UserInputError(f"newest must be 0 or more, got {newest}")
    if _holds_no_outbox(outbox):
        return []
    store = open_outbox(outbox)
    where, params = [], []
    if status is not None:
        where.append("d.status = ?")
        params.append(status)
    if event_ids:
        where.append(f"e.id IN ({', '.join('?' * len(event_ids))})")
        params.extend(event_ids)
    sql = (
        "SELECT e.*, d.sink, d.status, d.attempts, d.last_error, d.last_attempt_at, "
        "d.delivered_at FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY e.created_at DESC, e.rowid DESC, d.sink DESC"
        + (f" LIMIT {int(newest)}" if newest is not None else "")
    )
    rows = store.query(sql, params)
    return [_row_to_delivery(row) for row in reversed(rows)]


def retry(
    outbox: Store | str | Path | None = None,
    *,
    status: str = "failed",
    event_ids: list[str] | None = None,
    sinks: dict[str, EventSink] | None = None,
    policy: RetryPolicy | None = None,
    allow_sinks: Iterable[str] = (),
) -> list[EmitReport]:
    """Re-send the deliveries in ``status`` (``failed``, or ``pending`` left by a dead process).

    Sinks are rebuilt from their recorded URLs; ``sinks`` supplies objects by recorded name for
    those that have no URL. A sink that cannot be rebuilt counts as failed, with the reason.
    ``event_ids`` may be unique prefixes (``tunesmith events list`` shows 12 characters); an id
    that names no event in the outbox is a :class:`UserInputError`.

    Only deliveries this setup recorded (their mark checks out under ``outbox.key``) are
    rebuilt from their URLs, besides ``stdout``, the names in ``sinks`` and those in
    ``allow_sinks`` (the user's consent, by recorded name): any other one, from an outbox made
    elsewhere or edited since, counts as failed with the reason and stays as it was.
    """
    if isinstance(event_ids, str):
        raise UserInputError(f"event_ids must be a list of ids, got {event_ids!r}")
    if isinstance(allow_sinks, str):
        raise UserInputError(f"allow_sinks must be a list of sink names, got {allow_sinks!r}")
    allowed = set(allow_sinks)
    if _holds_no_outbox(outbox):  # nothing to re-send, and nothing written into that file
        if event_ids:
            raise UserInputError(f"no event with id {event_ids[0]!r} in the outbox {outbox}")
        return []
    store = open_outbox(outbox)
    if event_ids:
        event_ids = [_resolve_event_id(store, given) for given in event_ids]
    grouped: dict[str, tuple[Event, list[str]]] = {}
    for delivery in list_deliveries(store, status=status, event_ids=event_ids):
        grouped.setdefault(delivery.event.id, (delivery.event, []))[1].append(delivery.sink)
    reports = []
    for event, names in grouped.values():
        named: list[tuple[str, Any]] = []
        unbuildable: dict[str, str] = {}
        for name in names:
            given = (sinks or {}).get(name)
            if given is None and not _may_rebuild(store, event.id, name, allowed):
                unbuildable[name] = (
                    "not sent: this setup did not record this delivery (an outbox from another "
                    "machine or TUNESMITH_HOME, from before tunesmith marked its deliveries, or "
                    "edited since); check the sink with `tunesmith events list --json`, then re-send "
                    f"with `tunesmith events retry --allow-sink '{name}'`"
                )
                continue
            try:
                sink = given or make_sink(name)
            except UserInputError as exc:  # make_sink says any factory failure this way
                unbuildable[name] = f"cannot rebuild the sink: {exc}"
                continue
            # Claimed just before it is sent: a row another retry (or a live emitter) is
            # sending is left to it, so no delivery goes out twice from two processes.
            if _claim(store, event.id, name, status):
                named.append((name, sink))
        if not named and not unbuildable:
            continue
        report = _send_all(store, event, named, policy or RetryPolicy())
        for name, error in unbuildable.items():
            report.failed.append(name)
            report.errors[name] = error
        reports.append(report)
    return reports


def _may_rebuild(store: Store, event_id: str, sink: str, allowed: set[str]) -> bool:
    """True when :func:`retry` may rebuild ``sink`` from its recorded name and send to it:
    ``stdout`` (this terminal), a sink the caller allowed, or a delivery this setup recorded."""
    return sink == "stdout" or sink in allowed or _recorded_here(store, event_id, sink)


def _claim(store: Store, event_id: str, sink: str, status: str) -> bool:
    """Make this process the one delivering a row still in ``status``; False when another
    retry took it first, or (``pending``) when a live process is delivering it: each would
    send it again."""
    me = _owner()
    with store.transaction() as tx:
        rows = tx.query(
            "SELECT owner FROM outbox_deliveries WHERE event_id = ? AND sink = ? AND status = ?",
            (event_id, sink, status),
        )
        if not rows:
            return False
        owner = rows[0]["owner"]
        if status == "pending" and owner != me and _owner_alive(owner):
            return False
        tx.execute(
            "UPDATE outbox_deliveries SET status = 'pending', owner = ? "
            "WHERE event_id = ? AND sink = ?",
            (me, event_id, sink),
        )
    return True


def _resolve_event_id(store: Store, given: str) -> str:
    """The full id of the one event whose id is ``given`` or starts with it."""
    if not isinstance(given, str) or not given:
        raise UserInputError(f"an event id must be a non-empty string, got {given!r}")
    rows = store.query(
        "SELECT id FROM outbox_events WHERE id = ? OR substr(id, 1, ?) = ? LIMIT 3",
        (given, len(given), given),
    )
    ids = sorted({row["id"] for row in rows})
    if given in ids:
        return given
    if not ids:
        raise UserInputError(f"no event with id {given!r} in the outbox {store.path}")
    if len(ids) > 1:
        raise UserInputError(
            f"event id {given!r} is ambiguous in the outbox {store.path}: give more characters"
        )
    return ids[0]
