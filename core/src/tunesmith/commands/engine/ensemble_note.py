"""The one-line note on stderr that a model directory is a seed ensemble (``predict``,
``evaluate``, ``explain`` and ``calibrate`` print it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def say_if_ensemble(
    model: Path, loaded: Any, members: list[Any], *, words: bool = False, how: str | None = None
) -> None:
    """Say once on stderr that ``model`` is a seed ensemble and how it is read (``predict``,
    ``explain`` and ``evaluate`` showed its figures as one model's, nothing telling the two
    apart). Not in the JSON on stdout: ``predict``'s records are per text, and ``explain``'s
    already hold ``"members": N``. ``words``: the word scores are averaged too (``explain``).
    ``how``: what the command did with the members instead (``calibrate``; ``loaded`` unused)."""
    if not members:
        return
    if how is None and loaded.task == "ner":
        # predict_texts, explain_loaded and evaluate_model read a tagger with its first model.
        how = "a tagger's entities are its first model's alone"
    elif how is None:
        averaged = "its probabilities and word scores are" if words else "its probabilities are"
        how = f"{averaged} the mean of its members'"
    typer.echo(f"note: {model} is a seed ensemble of {len(members) + 1} models; {how}", err=True)
