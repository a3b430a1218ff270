"""``tunesmith ui``: serve the suite on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

from pathlib import Path

import typer


def ui_command(
    host: str = typer.Option("127.0.0.1", help="Address to bind; 0.0.0.0 exposes it to others."),
    port: int = typer.Option(
        7860, min=0, max=65535, help="Port to listen on (0: any free port, printed)."
    ),
    only: str = typer.Option("", help="Comma-separated demo names to show (default: all)."),
    share: bool = typer.Option(
        False, "--share", help="Open a public Gradio share link (off unless asked)."
    ),
    models: list[Path] | None = typer.Option(
        None,
        "--models",
        help="A folder the UI may open model directories from (repeat for several); "
        "besides it, only the demo's own trained models.",
    ),
) -> None:
    """Serve one tab per registered demo. Models load on first use, not at start."""
    from tunesmith.ui.launch import check_address, launch
    from tunesmith.ui.model_access import set_model_roots
    from tunesmith_suite.suite import build_suite, parse_only

    check_address(host, port)  # before the suite is built and its address printed
    set_model_roots(models or [])
    names = parse_only(only)
    app = build_suite(only=names)
    # Said once the server answers: printed before the few seconds (tens on a cold first run)
    # of loading, the address was opened to "connection refused".
    typer.echo("tunesmith suite: starting...", err=True)
    launch(
        app,
        host=host,
        port=port,
        share=share,
        inbrowser=False,
        quiet=True,
        prevent_thread_lock=True,
    )
    typer.echo(f"tunesmith suite on http://{host}:{app.server_port}", err=True)
    app.block_thread()
