"""The core's CLI commands, one module per concern; each module has ``register(app)``."""

from __future__ import annotations

import typer


def register_core_commands(app: typer.Typer) -> None:
    """Add the core commands (train, evaluate, predict, explain, calibrate, ...) to ``app``."""
    from tunesmith.commands import calibrate, engine, events, explain, export, int8_ranges, sample

    for module in (engine, calibrate, int8_ranges, export, explain, sample, events):
        module.register(app)
