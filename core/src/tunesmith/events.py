"""Events and the sinks that deliver them: alerts and hand-offs go through here.

A sink is named by a URL: ``stdout``, ``jsonl:PATH``, ``webhook:https://...``. Plugins add schemes
through the ``tunesmith_event_sinks`` hook.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.hooktypes import Event, EventSink


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict, with ``created_at`` filled in when it was empty."""
    data = asdict(event)
    if not data["created_at"]:
        data["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return data


class StdoutSink:
    """Prints each event as one JSON line on stdout."""

    def __init__(self, _rest: str = "") -> None:
        pass

    def send(self, event: Event) -> None:
        print(json.dumps(event_to_dict(event), ensure_ascii=False), flush=True)


class JsonlSink:
    """Appends each event as one JSON line to a file; one write per line, so lines stay whole."""

    def __init__(self, path: str) -> None:
        if not path:
            raise UserInputError("the jsonl sink needs a file: jsonl:PATH")
        self.path = Path(path)
        self._lock = threading.Lock()

    def send(self, event: Event) -> None:
        line = json.dumps(event_to_dict(event), ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)


class WebhookSink:
    """POSTs each event as JSON to a URL, with a timeout; a failure raises, so callers can retry."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise UserInputError(f"the webhook sink needs an http(s) URL, got {url!r}")
        self.url = url
        self.timeout = timeout

    def send(self, event: Event) -> None:
        import urllib.request

        body = json.dumps(event_to_dict(event)).encode("utf-8")
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            response.read()


BUILTIN_SINKS: dict[str, Any] = {
    "stdout": StdoutSink,
    "jsonl": JsonlSink,
    "webhook": WebhookSink,
}


def make_sink(url: str) -> EventSink:
    """Build the sink a URL names, from the built-ins and every plugin's schemes."""
    from tunesmith.plugins import get_plugin_manager

    factories: dict[str, Any] = {}
    for group in get_plugin_manager().hook.tunesmith_event_sinks():
        factories.update(group)
    scheme, _, rest = url.partition(":")
    if scheme == "webhook" and rest.startswith("//"):
        rest = "https:" + rest
    if scheme not in factories:
        known = ", ".join(sorted(factories))
        raise UserInputError(f"unknown event sink {scheme!r} in {url!r}; known: {known}")
    return factories[scheme](rest)


def emit(event: Event, sinks: list[EventSink]) -> None:
    """Send ``event`` to every sink; one failing sink does not stop the others."""
    failures = []
    for sink in sinks:
        try:
            sink.send(event)
        except Exception as exc:  # delivery problems are reported, not fatal
            failures.append(f"{type(sink).__name__}: {exc}")
    if failures:
        print("tunesmith: event delivery failed: " + "; ".join(failures), file=sys.stderr)
