"""Hook implementations of the support plugin; the work lives in modules beside this one."""

from __future__ import annotations

from typing import Any

import typer

from tunesmith import hookimpl


@hookimpl
def tunesmith_cli(app: typer.Typer) -> None:
    from tunesmith_support.cli import build_group

    app.add_typer(build_group(), name="support")


@hookimpl
def tunesmith_demos() -> list[Any]:
    from tunesmith.hooktypes import Demo

    def build() -> Any:
        from tunesmith_support.demo import build_demo

        return build_demo()

    return [
        Demo(
            name="support",
            title="Customer support",
            build=build,
            description=(
                "Answers customer questions from a knowledge base with a calibrated confidence; "
                "asks to clarify or hands off to a person when unsure."
            ),
        )
    ]


@hookimpl
def tunesmith_sample_data() -> list[Any]:
    from tunesmith_support.sample import support_sample_data

    return support_sample_data()
