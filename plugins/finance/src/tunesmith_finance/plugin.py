"""Hook implementations of the finance plugin; the work lives in modules beside this one."""

from __future__ import annotations

from typing import Any

import typer

from tunesmith import hookimpl


@hookimpl
def tunesmith_cli(app: typer.Typer) -> None:
    from tunesmith_finance.cli import app as finance_app

    app.add_typer(finance_app, name="finance")


@hookimpl
def tunesmith_demos() -> list[Any]:
    from tunesmith.hooktypes import Demo
    from tunesmith_finance.demo import DESCRIPTION, TITLE, build_demo

    return [Demo(name="finance", title=TITLE, build=build_demo, description=DESCRIPTION)]


@hookimpl
def tunesmith_sample_data() -> list[Any]:
    from tunesmith_finance.sample import sample_data

    return sample_data()
