"""`tunesmith support ...`: build a knowledge base, train, answer, serve and review.

This module makes the Typer group; each command lives in ``tunesmith_support.commands``.
"""

from __future__ import annotations

import typer

from tunesmith_support.commands.about import about_command
from tunesmith_support.commands.ask_chat import _print_turn as _print_turn
from tunesmith_support.commands.ask_chat import ask_command, chat_command, is_rating
from tunesmith_support.commands.demo import demo_command
from tunesmith_support.commands.eval import eval_command
from tunesmith_support.commands.feedback_stats import (
    export_feedback_command,
    feedback_command,
    stats_command,
)
from tunesmith_support.commands.handoffs import handoffs_command
from tunesmith_support.commands.index import index_command
from tunesmith_support.commands.serve import _sigterm_returns as _sigterm_returns
from tunesmith_support.commands.serve import serve_command
from tunesmith_support.commands.shared import stored_db
from tunesmith_support.commands.train_calibrate import (
    calibrate_command,
    threshold_text,
    train_command,
)

# The command functions and helpers that lived here before the commands moved to their own
# modules are still importable from here; tests import ``_print_turn`` and ``_sigterm_returns``.
__all__ = [
    "about_command",
    "ask_command",
    "build_group",
    "calibrate_command",
    "chat_command",
    "demo_command",
    "eval_command",
    "export_feedback_command",
    "feedback_command",
    "handoffs_command",
    "index_command",
    "is_rating",
    "serve_command",
    "stats_command",
    "stored_db",
    "threshold_text",
    "train_command",
]


def build_group() -> typer.Typer:
    """The `support` command group."""
    group = typer.Typer(
        help="Customer support: answer from a knowledge base, clarify or hand off when unsure.",
        no_args_is_help=True,
    )
    group.command("about")(about_command)
    group.command("index")(index_command)
    group.command("calibrate")(calibrate_command)
    group.command("train")(train_command)
    group.command("ask")(ask_command)
    group.command("chat")(chat_command)
    group.command("feedback")(feedback_command)
    group.command("handoffs")(handoffs_command)
    group.command("eval")(eval_command)
    group.command("export-feedback")(export_feedback_command)
    group.command("stats")(stats_command)
    group.command("serve")(serve_command)
    group.command("demo")(demo_command)
    return group
