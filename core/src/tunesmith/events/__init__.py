"""Events, the sinks that deliver them, and the outbox that makes delivery reliable.

A sink is named by a URL: ``stdout``, ``jsonl:PATH``, ``webhook:https://...``, or ``env:NAME`` for
the one the environment variable NAME holds (a webhook's token off the command line and out of
the outbox, which records ``env:NAME``). Plugins add schemes through the ``tunesmith_event_sinks``
hook. :func:`emit` first records the event and one delivery row per sink in an outbox (tables
``outbox_events`` and ``outbox_deliveries`` of a :class:`~tunesmith.store.Store`, by default
``$TUNESMITH_HOME/events.sqlite``), then delivers to each sink, retrying a failure with
exponential backoff a bounded number of times. A delivery that still fails stays in the outbox
as ``failed`` with its attempts and last error, until ``tunesmith events retry`` (or
:func:`retry`) delivers it. Delivery is at least once: receivers drop repeats by the event's
``id``.

An outbox is a file, and a file can come from elsewhere (a KB folder someone sent). Each delivery
row therefore carries a mark: an HMAC of the event and the sink under a key kept in
``$TUNESMITH_HOME/outbox.key``. :func:`retry` re-sends a row only when its mark is this setup's
(it recorded that event for that sink), the sink is ``stdout``, or the caller allows the sink by
name: a foreign outbox cannot make a retry POST to a URL, or append to a file, it chose.

The modules, each with one job (import from ``tunesmith.events``, which re-exports them):

- ``outgoing``: :func:`emit`, and its halves :func:`record` and :func:`send`;
- ``delivery``: sending one event to its sinks with retries (:class:`RetryPolicy`,
  :class:`EmitReport`), each attempt recorded;
- ``resend``: :func:`retry`, re-sending what the outbox holds, each row claimed first;
- ``holds``: a sink that keeps failing held for a cool-down, shared by the processes emitting
  into one outbox (:func:`list_holds`);
- ``listing``: :func:`list_deliveries` and :func:`iter_deliveries` (page by page), the outbox
  read back as :class:`Delivery` rows;
- ``retention``: :func:`prune`, removing events delivered before a cut-off, in batches;
- ``ages``: the times ``--since`` and ``--delivered-before`` take (``30d``, ISO 8601);
- ``outbox``: the tables, the default path and :func:`open_outbox`;
- ``marks``: the ``outbox.key`` and the HMAC marks of deliveries;
- ``owners``: which process is delivering a row, and whether it still runs;
- ``sinks``: the built-in sinks, :func:`make_sink` and :func:`sink_name`; ``webhook``: the
  webhook sink; ``envsink``: the ``env:NAME`` sink;
- ``shown``: sink URLs with their tokens hidden; ``serialize``: :func:`strict_json`.
"""

from __future__ import annotations

from tunesmith.events.delivery import EmitReport, RetryPolicy, retry_command
from tunesmith.events.envsink import EnvSink
from tunesmith.events.holds import SinkHold, list_holds
from tunesmith.events.listing import Delivery, iter_deliveries, list_deliveries
from tunesmith.events.marks import OUTBOX_KEY_FILE, outbox_key_path
from tunesmith.events.marks import _create_key as _create_key
from tunesmith.events.outbox import (
    OUTBOX_MIGRATIONS,
    OUTBOX_NAMESPACE,
    STATUSES,
    default_outbox_path,
    open_outbox,
)
from tunesmith.events.outgoing import Outgoing, emit, record, send
from tunesmith.events.owners import _start_time as _start_time
from tunesmith.events.resend import retry
from tunesmith.events.retention import (
    PrunePlan,
    PruneReport,
    plan_prune,
    prune,
    prune_cutoff,
    pruned_before,
)
from tunesmith.events.serialize import event_to_dict, event_to_json, strict_json
from tunesmith.events.shown import shown_sink, shown_url
from tunesmith.events.sinks import (
    BUILTIN_SINKS,
    JSONL_SUFFIXES,
    JsonlSink,
    StdoutSink,
    make_sink,
    refuse_stdout_sink_with_json,
    sink_name,
)
from tunesmith.events.webhook import WebhookSink
from tunesmith.hooktypes import Event

# Besides these, `_create_key` and `_start_time`, which tests import from here, are re-exported.
__all__ = [
    "BUILTIN_SINKS",
    "JSONL_SUFFIXES",
    "OUTBOX_KEY_FILE",
    "OUTBOX_MIGRATIONS",
    "OUTBOX_NAMESPACE",
    "STATUSES",
    "Delivery",
    "EmitReport",
    "EnvSink",
    "Event",
    "JsonlSink",
    "Outgoing",
    "PrunePlan",
    "PruneReport",
    "RetryPolicy",
    "SinkHold",
    "StdoutSink",
    "WebhookSink",
    "default_outbox_path",
    "emit",
    "event_to_dict",
    "event_to_json",
    "iter_deliveries",
    "list_deliveries",
    "list_holds",
    "make_sink",
    "open_outbox",
    "outbox_key_path",
    "plan_prune",
    "prune",
    "prune_cutoff",
    "pruned_before",
    "record",
    "refuse_stdout_sink_with_json",
    "retry",
    "retry_command",
    "send",
    "shown_sink",
    "shown_url",
    "sink_name",
    "strict_json",
]
