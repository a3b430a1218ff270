"""``tunesmith support serve``: the HTTP JSON API, with its access checks and a clean stop."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from tunesmith.devices import device_option
from tunesmith.signals import stopped_note
from tunesmith_support.commands.shared import DB_HELP, KB_OPTION, SINK_HELP, open_service

#: Seconds of silence before a connection is closed (uvicorn's 5), seconds a client has for a
#: request's headers and again for its body (a phone on a slow link sends 1 MiB in them),
#: connections and requests at once (well under the usual 1,024 open files).
IDLE_TIMEOUT, REQUEST_TIMEOUT, LIMIT_CONCURRENCY = 5.0, 20.0, 200
#: Seconds between checks for a rewritten knowledge base (tunesmith_support.reload).
RELOAD_EVERY = 30.0


@contextmanager
def _sigterm_returns() -> Iterator[list[int]]:
    """Ignore a SIGTERM that arrives while inside (uvicorn handles its own, then raises it again
    for the handler it found): a service manager's stop (systemd, ``docker stop``) then ends
    like Ctrl-C, the database closed and "stopped" said, instead of killing the process. A
    SIGHUP (the terminal closed) is passed to uvicorn as a SIGTERM: uvicorn does not handle it,
    and raised inside its event loop it stopped the server with a traceback. Yields the list of
    the stop signals received (as uvicorn raises them again when it has stopped)."""
    import signal
    import threading

    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: received.append(signum))
    hangup = getattr(signal, "SIGHUP", None)
    previous_hangup = signal.getsignal(hangup) if hangup is not None else None
    if previous_hangup not in (None, signal.SIG_IGN):  # nohup's choice stands

        def hung_up(signum: int, _frame: object) -> None:
            received.append(signum)
            signal.raise_signal(signal.SIGTERM)  # to uvicorn's handler: a graceful stop

        signal.signal(hangup, hung_up)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_hangup not in (None, signal.SIG_IGN):
            signal.signal(hangup, previous_hangup)


def serve_command(
    kb: Path = KB_OPTION,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0: all)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    sink: list[str] | None = typer.Option(None, "--sink", help=SINK_HELP),
    token_file: Path | None = typer.Option(
        None,
        "--token-file",
        help="File holding the token every request must send as 'Authorization: Bearer "
        "<token>' (default: $TUNESMITH_SUPPORT_TOKEN; neither: no token needed).",
    ),
    cors_origin: list[str] | None = typer.Option(
        None,
        "--cors-origin",
        help="A web origin whose pages may call the API from a browser, e.g. "
        "https://shop.example (repeatable; default: none). Feedback must then name its "
        "conversation_id.",
    ),
    feedback_needs_conversation: bool = typer.Option(
        False,
        "--feedback-needs-conversation",
        help="Feedback must name the turn's conversation_id (as with --cors-origin): for a "
        "public widget that reaches this server through a back end of yours.",
    ),
    idle_timeout: float = typer.Option(
        IDLE_TIMEOUT,
        "--idle-timeout",
        min=0.1,
        max=3600,
        help="Seconds a connection may stay silent (new, or kept alive between requests) "
        "before the server closes it.",
    ),
    request_timeout: float = typer.Option(
        REQUEST_TIMEOUT,
        "--request-timeout",
        min=0.1,
        max=3600,
        help="Seconds a client has to send a request's headers (else its connection is "
        "closed), then again its body (else a 408 request_timeout).",
    ),
    limit_concurrency: int = typer.Option(
        LIMIT_CONCURRENCY,
        "--limit-concurrency",
        min=1,
        help="Most connections open, and requests in flight, at once; past it a request is "
        "a 503 service_unavailable with Retry-After: 1.",
    ),
    reload_every: float = typer.Option(
        RELOAD_EVERY,
        "--reload-every",
        min=0,
        max=86400,
        help="Seconds between checks whether index, calibrate or train rewrote the knowledge "
        "base; a new copy is loaded beside the old one and swapped in between requests "
        "(0: never; restart to pick changes up).",
    ),
    device: str = device_option(),
) -> None:
    """HTTP JSON API: POST /v1/ask, POST /v1/feedback, GET /v1/health, /openapi.json, /docs."""
    import uvicorn

    from tunesmith.ui.launch import check_address
    from tunesmith_support.api import create_app, is_loopback
    from tunesmith_support.api_access import TOKEN_ENV, check_origin, read_token
    from tunesmith_support.reload import KbReloader
    from tunesmith_support.serve_limits import BodyDeadline, guarded_protocol

    # Everything that can be refused is, before the model loads.
    origins = [check_origin(origin) for origin in cors_origin or []]
    token = read_token(token_file)
    check_address(host, port)
    loopback = is_loopback(host)
    if token is None and not loopback:
        typer.echo(
            f"warning: serving {host} without a token: anyone who can reach port {port} can ask, "
            f"send feedback and read answers (--token-file or ${TOKEN_ENV} sets one)",
            err=True,
        )
    # A hand-off's delivery must not hold the customer's request (a webhook that is down).
    service = open_service(kb, db, sink, background_delivery=True, device=device)
    reloader = KbReloader(service, reload_every)
    try:
        app = create_app(
            service,
            loopback_only=loopback,
            token=token,
            cors_origins=origins,
            feedback_needs_conversation=feedback_needs_conversation,
            reloader=reloader,
        )
        access = "token required" if token is not None else "no token"
        if token is None or origins:
            # The queue holds every customer's questions (api.py serves it only then).
            access += "; hand-off queue off: it needs --token-file and no --cors-origin"
        typer.echo(
            f"serving {kb} on http://{host}:{port} ({access}; docs: /docs; Ctrl-C stops)",
            err=True,
        )
        # uvicorn stops on Ctrl-C or SIGTERM once the requests in flight are answered (a
        # second Ctrl-C stops at once), then raises the signal again with the handler it found.
        reloader.start()
        with _sigterm_returns() as stop_signals:
            uvicorn.run(
                BodyDeadline(app, request_timeout),
                host=host,
                port=port,
                log_level="warning",
                http=guarded_protocol(request_timeout, limit_concurrency, origins),
                timeout_keep_alive=idle_timeout,
            )
    finally:
        reloader.stop()
        # Hand-offs still queued stay pending in the outbox instead of holding the exit
        # through a webhook's retries (docs: `events retry --status pending`).
        service.close()
    typer.echo(stopped_note(stop_signals[0] if stop_signals else None), err=True)
