"""Hook implementations of the suite: it adds ``tunesmith ui``."""

from __future__ import annotations

import typer

from tunesmith import hookimpl


@hookimpl
def tunesmith_cli(app: typer.Typer) -> None:
    from tunesmith_suite.command import ui_command

    app.command("ui")(ui_command)
