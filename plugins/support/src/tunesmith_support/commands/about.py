"""``tunesmith support about``: what the plugin does and where to start."""

from __future__ import annotations

import typer


def about_command() -> None:
    """Say what the support plugin does and where its sample data and docs are."""
    import shlex

    from tunesmith_support.sample import SAMPLE_DIR

    typer.echo(
        "Customer support: answers questions from a FAQ/document knowledge base with a "
        "calibrated confidence; asks to clarify when two answers are close and hands off to a "
        "person (a support.handoff event) when unsure or asked to."
    )
    typer.echo(f"Sample knowledge base: {SAMPLE_DIR}")
    # The real folder, quoted for a shell: a "$SAMPLE/kb" nobody had set, copied as printed,
    # asked for "/kb".
    kb = shlex.quote(str(SAMPLE_DIR / "kb"))
    typer.echo(f"Start: tunesmith support index --kb {kb} --out kb; see docs/support.md")
