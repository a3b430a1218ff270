"""Hook implementations of the recommend plugin; the work lives in modules beside this one."""

from __future__ import annotations

from typing import Any

import typer

from tunesmith import hookimpl


@hookimpl
def tunesmith_cli(app: typer.Typer) -> None:
    from tunesmith_recommend.cli import build_group

    app.add_typer(build_group(), name="recommend")


@hookimpl
def tunesmith_sample_data() -> list[Any]:
    from tunesmith.hooktypes import SampleData
    from tunesmith_recommend.data import sample_paths

    return [
        SampleData(
            name="recommend_films",
            description=(
                "150 fictional films (title, genres, theme, description) and 588 viewing events "
                "of 60 users simulated from stated tastes (users.csv)"
            ),
            paths=sample_paths(),
            task="recommendation",
            text_col="description",
            label_col="item_id",
        )
    ]


@hookimpl
def tunesmith_demos() -> list[Any]:
    from tunesmith.hooktypes import Demo
    from tunesmith_recommend.demo import DESCRIPTION, build_demo

    return [
        Demo(name="recommend", title="Recommendations", build=build_demo, description=DESCRIPTION)
    ]
