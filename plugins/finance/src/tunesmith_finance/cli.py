"""``tunesmith finance``: the command group. Each command lives in its own module of
``tunesmith_finance.commands`` (train, score, ingest, watch, trends, alerts, prune, replay,
demo), with the flags, checks and printing they share in ``options``, ``checks`` and ``output``.

Heavy libraries are imported inside the commands, so ``tunesmith --help`` stays fast.
"""

from __future__ import annotations

import typer

from tunesmith_finance.commands import (
    alerts,
    demo,
    ingest,
    prune,
    replay,
    score,
    train,
    trends,
    watch,
)
from tunesmith_finance.commands.alerts import alerts_command
from tunesmith_finance.commands.demo import demo_command
from tunesmith_finance.commands.ingest import ingest_command
from tunesmith_finance.commands.options import BATCH_SIZE, DEFAULT_BATCH
from tunesmith_finance.commands.replay import replay_command
from tunesmith_finance.commands.score import score_command
from tunesmith_finance.commands.train import train_command
from tunesmith_finance.commands.trends import trends_command
from tunesmith_finance.commands.watch import watch_command

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_BATCH",
    "alerts_command",
    "app",
    "demo_command",
    "ingest_command",
    "replay_command",
    "score_command",
    "train_command",
    "trends_command",
    "watch_command",
]

app = typer.Typer(
    help="Financial news sentiment: score a stream, store it, follow trends per topic and "
    "ticker, alert on negative surges and explain them.",
    no_args_is_help=True,
)

# In this order: `tunesmith finance --help` lists the commands as they are registered.
for _module in (train, score, ingest, watch, trends, alerts, prune, replay, demo):
    _module.register(app)
