"""Every tunesmith hook, typed and documented. ``docs/plugin_hooks.md`` mirrors this file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

    from tunesmith.engine.config import RunConfig
    from tunesmith.hooktypes import (
        AttributionMethod,
        Augmenter,
        Demo,
        Reader,
        SampleData,
        SinkFactory,
    )

hookspec = pluggy.HookspecMarker("tunesmith")


@hookspec
def tunesmith_cli(app: typer.Typer) -> None:
    """Add commands or a command group (``app.add_typer``) to the ``tunesmith`` CLI."""


@hookspec
def tunesmith_demos() -> list[Demo]:
    """Return demos, each shown as one tab of ``tunesmith ui``."""


@hookspec
def tunesmith_data_readers() -> dict[str, Reader]:
    """Return readers by file suffix (``".csv"``); a later plugin's reader wins for a suffix."""


@hookspec
def tunesmith_augmenters() -> list[Augmenter]:
    """Return data augmenters, chosen by name with ``tunesmith train --augment NAME``."""


@hookspec
def tunesmith_train_callbacks(run: RunConfig) -> list[Any]:
    """Return ``transformers.TrainerCallback`` objects to attach to a training run."""


@hookspec
def tunesmith_attribution_methods() -> dict[str, AttributionMethod]:
    """Return attribution methods by name, chosen with ``tunesmith explain --method NAME``."""


@hookspec
def tunesmith_event_sinks() -> dict[str, SinkFactory]:
    """Return event-sink factories by URL scheme (``stdout``, ``jsonl``, ``webhook``)."""


@hookspec
def tunesmith_sample_data() -> list[SampleData]:
    """Return small sample data sets for the quick start, demos and tests."""
