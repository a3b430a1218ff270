"""The built-in sinks, and building a sink from its URL (``stdout``, ``jsonl:PATH``, ``webhook:URL``,
``env:NAME`` for one held in an environment variable, or a plugin's scheme) or naming one for
the outbox."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.events.envsink import EnvSink
from tunesmith.events.serialize import event_to_json
from tunesmith.events.shown import shown_sink, shown_url
from tunesmith.events.webhook import WebhookSink
from tunesmith.hooktypes import Event, EventSink
from tunesmith.locks import holding_lock
from tunesmith.plugins import collect_dict


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


BUILTIN_SINKS: dict[str, Any] = {
    "stdout": StdoutSink,
    "jsonl": JsonlSink,
    "webhook": WebhookSink,
    "env": lambda variable: env_sink(variable),
}


def env_sink(variable: str) -> EnvSink:
    """The ``env:NAME`` sink, built with this module's :func:`make_sink` and schemes."""
    return EnvSink(variable, make_sink=make_sink, sink_factories=sink_factories)


def sink_factories() -> dict[str, Any]:
    """The sink factories by scheme: the built-ins and every plugin's."""
    factories = collect_dict("tunesmith_event_sinks")
    # Always the core's: a plugin's `env` would be handed the secret and could record it.
    factories["env"] = env_sink
    return factories


def make_sink(url: str) -> EventSink:
    """Build the sink a URL names, from the built-ins and every plugin's schemes."""
    factories = sink_factories()
    scheme, _, rest = url.partition(":")
    if scheme == "webhook" and rest.startswith("//"):
        rest = "https:" + rest
    if scheme not in factories:
        known = ", ".join(sorted(factories))
        raise UserInputError(
            f"unknown event sink {scheme!r} in {_typed(url)}; known: {known}"
            f"{_sink_hint(url, scheme, factories)}"
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


def _typed(url: str) -> str:
    """A sink as typed, quoted for an error, a URL in it with its token hidden (stderr goes to
    cron mail and service logs): ``webhok:https://hooks.slack.com/<hidden 1a2b3c4d>``."""
    if url.startswith(("http://", "https://")):
        return f"'{shown_url(url)}'"
    return f"'{shown_sink(url)}'" if "://" in url else _quoted(url)


def _sink_hint(url: str, scheme: str, factories: Iterable[str]) -> str:
    """What a URL with an unknown scheme was likely meant as: a file (``C:\\x.jsonl``, or a
    bare ``feed.jsonl``), a webhook (a bare ``https://...``) or a known scheme misspelt."""
    if url.startswith(("http://", "https://")):
        return "; for a webhook write webhook:https://..."  # the URL may hold a token
    close = difflib.get_close_matches(scheme.lower(), list(factories), n=1, cutoff=0.6)
    if close and ":" in url:  # `jsnol:a.jsonl` is a misspelt scheme, not a file named so
        return f"; did you mean {close[0]}:?"
    if _DRIVE_PATH.match(url) or url.lower().endswith(JSONL_SUFFIXES):
        return f"; for a file write jsonl:{url}"
    return f"; did you mean {close[0]}?" if close else ""  # `stdot`


def refuse_stdout_sink_with_json(sinks: Iterable[str] | None, as_json: bool) -> None:
    """Refuse a ``stdout`` sink beside ``--json``, before any work.

    Both write to standard output: the event lines would come before the result and break the
    one JSON document a script reads there."""
    if as_json and any(_scheme(str(url)) == "stdout" for url in sinks or ()):
        raise UserInputError(
            "--sink stdout cannot be combined with --json (both write to standard output); "
            "use --sink jsonl:FILE.jsonl, or leave out --json"
        )


def _scheme(url: str) -> str:
    """The scheme of the sink ``url`` names; for ``env:NAME``, of the sink the variable holds
    (one unset or unusable is left to :func:`make_sink` to say)."""
    scheme, _, rest = url.partition(":")
    if scheme == "env":
        return os.environ.get(rest, "").strip().partition(":")[0]
    return scheme


def sink_name(sink: str | EventSink) -> str:
    """The name a delivery is recorded under: the sink's URL, else its class."""
    if isinstance(sink, str):
        return sink
    url = getattr(sink, "sink_url", None)
    if isinstance(url, str) and url:
        return url
    return f"{type(sink).__module__}.{type(sink).__qualname__}"
