"""Serving a demo: every ``tunesmith ... demo`` command and ``tunesmith ui`` start it here.

transformers resolves its names lazily, and not thread-safely: two first uses at once (a question
in one tab while another tab's set-up loads its model in a background thread) can fail with
"cannot import name 'AutoModel'". Resolving them once, in the serving thread, before the first
request avoids that for every demo.

Gradio's ``launch`` then asks the new server for its page with a 3-second timeout and, at the
first timeout, fails with "When localhost is not accessible, a shareable link must be created"
(a check meant for notebooks behind a proxy). On a busy machine (a model loading in another
thread, a test suite on two cores) the page took longer than that and a sound server was
refused. :func:`serve` skips that probe and, when it is asked not to block, waits for the page
itself, patiently.
"""

from __future__ import annotations

import sys
from typing import Any

#: The transformers names the demos' handlers import.
TRANSFORMERS_NAMES = (
    "AutoConfig",
    "AutoModel",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoTokenizer",
    "Trainer",
    "TrainerCallback",
    "TrainingArguments",
)


def preload_transformers() -> None:
    """Resolve :data:`TRANSFORMERS_NAMES` in this thread (a few seconds; no model is loaded)."""
    import importlib

    transformers = importlib.import_module("transformers")
    for name in TRANSFORMERS_NAMES:
        getattr(transformers, name)


def check_address(host: str, port: int) -> int:
    """Refuse, in one line and before anything loads, an address the UI cannot listen on;
    returns the port to serve on: ``port``, or for 0 a free one the system chose.

    Gradio said "Cannot find empty port ... set GRADIO_SERVER_PORT or pass server_port to
    launch()" for a port in use, and the same (after a uvicorn "ERROR:" line) for an unknown
    host. Given port 0 it bound a free port but then checked, and printed, ``host:0`` and
    failed with "Connection refused": 0 is resolved here, to a port free at this moment (the
    probe releases it for the server, which binds it next)."""
    import socket

    from tunesmith.errors import UserInputError

    if not 0 <= port <= 65535:  # getaddrinfo wraps 99999 round, and Gradio raised OverflowError
        raise UserInputError(
            f"--port {port}: a port is a number from 0 to 65535 (0: any free port)"
        )
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, proto) as probe:
            # As the server binds: a port left in TIME_WAIT by an earlier server is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
            chosen = int(probe.getsockname()[1])
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserInputError(
            f"cannot serve on {host}:{port}: {reason}; choose another --port or --host"
        ) from None
    return chosen


#: How long :func:`serve` waits for a server started without blocking to answer, in seconds.
ANSWER_WITHIN = 120.0


def serve(blocks: Any, **options: Any) -> None:
    """``blocks.launch(**options)`` without Gradio's 3-second reachability probe (see the
    module's docstring). With ``prevent_thread_lock=True`` it returns once the page answers,
    and raises ``RuntimeError`` naming the address if it has not within
    :data:`ANSWER_WITHIN` seconds."""
    import inspect

    if "_frontend" in inspect.signature(blocks.launch).parameters:
        options.setdefault("_frontend", False)  # the flag that guards only that probe
    blocks.launch(**options)
    url = getattr(blocks, "local_url", None)  # Gradio's, set by launch
    if options.get("prevent_thread_lock") and url:
        wait_until_answering(str(url))


def wait_until_answering(url: str, *, within: float | None = None) -> None:
    """Return once ``url`` answers a GET (any HTTP status), asking again until ``within``
    seconds (default :data:`ANSWER_WITHIN`) have passed; then raise ``RuntimeError``."""
    import time

    import httpx

    deadline = time.monotonic() + (ANSWER_WITHIN if within is None else within)
    while True:
        try:
            httpx.get(url, timeout=10)
            return
        except httpx.HTTPError as exc:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the demo at {url} did not answer: {exc}") from None
        time.sleep(0.2)


def launch(blocks: Any, *, host: str, port: int, **options: Any) -> None:
    """Check the address, preload transformers, then serve ``blocks`` (a ``gr.Blocks``) on
    ``host:port``; port 0 serves on a free port, which Gradio prints and ``blocks.server_port``
    holds. The page gets :func:`tunesmith.ui.a11y.page_options` (its live status, control
    names and Gradio's missing "Complete")."""
    from tunesmith.signals import received, stopped_note
    from tunesmith.ui.a11y import page_options

    port = check_address(host, port)
    preload_transformers()
    serve(blocks, server_name=host, server_port=port, **page_options(**options))
    # Gradio ends its serving loop on Ctrl-C, and on SIGTERM/SIGHUP (tunesmith.signals), with
    # its own "Keyboard interruption in main thread": say which stop it was, as serve does.
    if received() is not None:
        print(stopped_note(), file=sys.stderr)
