"""A plugin's roadmap, shown by its CLI group and its demo tab until its features arrive.

A plugin that is announced before it is built says so plainly instead of offering commands
that do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import typer


@dataclass(frozen=True)
class Roadmap:
    """What a plugin is for and what is coming."""

    name: str
    title: str
    summary: str
    coming: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """The roadmap as Markdown."""
        items = "\n".join(f"- {item}" for item in self.coming)
        return (
            f"## {self.title}\n\n{self.summary}\n\n"
            f"**Status:** not yet available. Coming:\n\n{items}\n"
        )

    def typer_group(self) -> typer.Typer:
        """A command group whose ``about`` command prints the roadmap."""
        group = typer.Typer(
            help=f"{self.title}: {self.summary} (not yet available; see 'about')",
            no_args_is_help=True,
        )

        @group.command("about")
        def about() -> None:
            """Say what this plugin will do and what is coming."""
            typer.echo(f"{self.title}: {self.summary}")
            typer.echo("Status: not yet available. Coming:")
            for item in self.coming:
                typer.echo(f"  - {item}")

        return group

    def build_demo(self) -> Any:
        """A demo tab showing the roadmap (gradio imported here, when the UI starts)."""
        import gradio as gr

        with gr.Blocks() as blocks:
            gr.Markdown(self.markdown())
        return blocks
