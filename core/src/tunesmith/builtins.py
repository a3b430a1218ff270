"""The core's own hook implementations: built-ins take the same path as third-party plugins.

Each hook imports its module inside the body, so registering this module stays cheap.
"""

from __future__ import annotations

from typing import Any

import typer

from tunesmith import hookimpl


@hookimpl
def tunesmith_cli(app: typer.Typer) -> None:
    from tunesmith.commands import register_core_commands

    register_core_commands(app)


@hookimpl
def tunesmith_data_readers() -> dict[str, Any]:
    from tunesmith.data.readers import BUILTIN_READERS

    return dict(BUILTIN_READERS)


@hookimpl
def tunesmith_augmenters() -> list[Any]:
    from tunesmith.data.augment import builtin_augmenters

    return builtin_augmenters()


@hookimpl
def tunesmith_attribution_methods() -> dict[str, Any]:
    from tunesmith.explain.methods import builtin_methods

    return builtin_methods()


@hookimpl
def tunesmith_event_sinks() -> dict[str, Any]:
    from tunesmith.events import BUILTIN_SINKS

    return dict(BUILTIN_SINKS)


@hookimpl
def tunesmith_sample_data() -> list[Any]:
    from tunesmith.data.sample import builtin_sample_data

    return builtin_sample_data()


@hookimpl
def tunesmith_demos() -> list[Any]:
    from tunesmith.ui.core_demos import core_demos

    return core_demos()
