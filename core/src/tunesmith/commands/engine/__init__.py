"""``tunesmith train``, ``evaluate`` and ``predict``: the engine's commands.

One module per command: ``train.py`` (its options and their checks; the ``RunConfig`` they build
in ``train_config.py``; ``--task pairs`` in ``train_pairs.py``), ``predict.py`` and
``evaluate.py``; ``output.py`` is the JSON and table output they share, ``ensemble_note.py`` the
seed-ensemble note that ``calibrate`` and ``explain`` print too.

Heavy libraries are imported inside the command bodies, so ``tunesmith --help`` stays fast.
"""

from __future__ import annotations

import typer

from tunesmith.commands.engine.ensemble_note import say_if_ensemble
from tunesmith.commands.engine.evaluate import evaluate_command
from tunesmith.commands.engine.predict import predict_command
from tunesmith.commands.engine.train import train_command

# Read by tests/core/test_engine_train.py from this package, where they lived before the split.
from tunesmith.commands.engine.train_config import _RENAMED_OPTIONS as _RENAMED_OPTIONS
from tunesmith.commands.engine.train_config import _run_config as _run_config

__all__ = ["evaluate_command", "predict_command", "register", "say_if_ensemble", "train_command"]


def register(app: typer.Typer) -> None:
    """Add this package's commands to ``app``."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("predict")(predict_command)
