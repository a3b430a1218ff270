"""``tunesmith int8-ranges``: record the activation ranges ``--quantize int8`` uses."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def int8_ranges_command(
    model: Path = typer.Option(..., "--model", "-m", help="A model directory."),
    data: Path = typer.Option(
        ..., "--data", help="Texts like those the model will serve (labels are ignored)."
    ),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the text."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
) -> None:
    """Record each linear layer's activation range on up to 512 texts of --data.

    Writes int8_ranges.json beside the weights, atomically; `--quantize int8` then quantises with
    these ranges, so a text gets the same prediction alone as in any batch. `tunesmith train`
    records them itself; this is for models trained elsewhere or before it did. A seed ensemble
    (ensemble.json) gets every member's recorded, as `--quantize int8` quantises every member.
    """
    import contextlib

    from tunesmith.data.load import read_texts
    from tunesmith.engine.ensemble import read_members
    from tunesmith.engine.int8_ranges import save_int8_ranges
    from tunesmith.engine.quantize import RANGES_FILE
    from tunesmith.locks import writing_into

    texts = read_texts(data, text_col=text_col)
    members = read_members(model)
    with contextlib.ExitStack() as held:  # one writer of each model directory at a time
        removed: list[Path] = []
        for where in [model, *members]:
            removed += held.enter_context(writing_into(where, [RANGES_FILE]))
        if removed:
            typer.echo(f"removed {len(removed)} temporary file(s) a stopped run left", err=True)
        recorded = save_int8_ranges(model, texts)
        # Predict averages every member, each quantised with its own file: a member left without
        # one would be quantised per batch, and the ensemble's answer would move with the batch.
        others = [{"model": str(m), **save_int8_ranges(m, texts)} for m in members]
    if others:
        recorded["members"] = others
    if as_json:
        typer.echo(json.dumps(recorded, indent=2))
        return
    typer.echo(
        f"recorded the int8 ranges of {len(recorded['ranges'])} linear layers "
        f"from {recorded['texts']} texts of {data}"
    )
    for member in others:
        typer.echo(f"ensemble member {member['model']}: {len(member['ranges'])} linear layers")
    for where in [model, *members]:
        typer.echo(f"saved {Path(where) / RANGES_FILE}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``int8-ranges`` to ``app``."""
    app.command("int8-ranges")(int8_ranges_command)
