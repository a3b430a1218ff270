"""``tunesmith support demo``: the plugin's Gradio demo served on its own."""

from __future__ import annotations

from pathlib import Path

import typer


def demo_command(
    kb: Path | None = typer.Option(
        None, "--kb", help="Knowledge base to open (default: the sample KB, built on first start)."
    ),
    port: int = typer.Option(7861, "--port", help="Port to listen on (0: any free port)."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes it to others."
    ),
) -> None:
    """The Gradio demo on its own: chat, sources, confidence, hand-off, feedback, why."""
    from tunesmith.ui.launch import check_address, launch
    from tunesmith_support.demo import build_demo
    from tunesmith_support.kbindex import read_meta

    check_address(host, port)  # before the sample KB is built for a server that cannot start
    if kb is not None:
        read_meta(kb)  # not a KB: one line now, not an error on every action once it serves
    launch(build_demo(kb), host=host, port=port, share=False)
