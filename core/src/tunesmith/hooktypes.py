"""The small types that hooks return. Light: importing this pulls in nothing heavy."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import random


@dataclass(frozen=True)
class Demo:
    """One tab of the suite UI.

    ``build()`` returns a ``gradio.Blocks``. It is called only when the UI starts, each demo in
    its own ``try``, so a broken demo shows its error in its own tab. Load models on first use inside
    event handlers, not in ``build()``.
    """

    name: str
    title: str
    build: Callable[[], Any]
    description: str = ""


@dataclass(frozen=True)
class SampleData:
    """A small data set shipped with a plugin: for the quick start, demos and tests."""

    name: str
    description: str
    paths: dict[str, Path]
    task: str = "classification"
    text_col: str = "text"
    label_col: str = "label"


@runtime_checkable
class Reader(Protocol):
    """Reads one file into row dicts; registered per file suffix (``.csv``).

    Called with a :class:`~pathlib.Path`; yields one ``dict`` per row (column name to value) with
    ``"__row__"``, the 1-based line number users see (rows are numbered in order without it).
    """

    def __call__(self, path: Path) -> Iterable[dict[str, Any]]: ...


@runtime_checkable
class Augmenter(Protocol):
    """Makes extra training examples; applied to the training split only.

    ``labels`` holds one list of label names per text (one name for single-label data); return
    only the new ``(texts, labels)``, in the same shapes.
    """

    name: str

    def augment(
        self, texts: Sequence[str], labels: Sequence[list[str]], rng: random.Random
    ) -> tuple[list[str], list[list[str]]]: ...


@runtime_checkable
class AttributionMethod(Protocol):
    """Scores each input token's share in a prediction (``ig``, ``occlusion``, ...)."""

    name: str

    def attribute(self, model: Any, tokenizer: Any, texts: Sequence[str], **kwargs: Any) -> Any: ...


def _event_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> str:
    """The current time in UTC, ISO 8601 with milliseconds (``2026-12-06T01:22:57.123+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Event:
    """Something that happened and that people or systems should hear about.

    Finance alerts and support hand-offs are events; sinks deliver them. ``id`` (uuid4 hex) and
    ``created_at`` (ISO UTC) are filled at creation; receivers can drop repeats by ``id``, since
    delivery is at least once.
    """

    kind: str
    message: str
    payload: dict[str, Any] = field(default_factory=dict)
    source: str = "tunesmith"
    created_at: str = field(default_factory=utc_now)
    id: str = field(default_factory=_event_id)


class EventSink(Protocol):
    """Delivers events somewhere: stdout, a JSON-lines file, a webhook."""

    def send(self, event: Event) -> None: ...


#: Makes a sink from the rest of its URL, e.g. ``jsonl:alerts.jsonl`` -> ``"alerts.jsonl"``.
SinkFactory = Callable[[str], EventSink]
