"""``tunesmith sample-data``: list the built-in sample data sets and where they are."""

from __future__ import annotations

import json

import typer


def sample_data_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the sample data sets that the core and plugins ship, with their file paths."""
    from tunesmith.plugins import collect_by_name

    sets = list(collect_by_name("tunesmith_sample_data").values())
    if as_json:
        payload = [
            {
                "name": s.name,
                "description": s.description,
                "task": s.task,
                "paths": {k: str(v) for k, v in s.paths.items()},
            }
            for s in sets
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    for s in sets:
        typer.echo(f"{s.name} ({s.task}): {s.description}")
        for split, path in s.paths.items():
            typer.echo(f"  {split}: {path}")


def register(app: typer.Typer) -> None:
    """Add ``sample-data`` to ``app``."""
    app.command("sample-data")(sample_data_command)
