"""The flags several `tunesmith finance` commands share: their Typer options and help texts.

Only typer is imported here, so that ``tunesmith --help`` stays fast.
"""

from __future__ import annotations

import typer

MODEL_HELP = "Sentiment model directory (from `tunesmith finance train`)."
DB_HELP = "The finance database (SQLite; created when missing)."
#: trends and alerts refuse a missing database rather than create an empty one.
READ_DB_HELP = "The finance database (SQLite) that `finance ingest` filled."
RULES_HELP = "Topic and ticker rules (.toml or .json): keywords, cashtags, aliases, regexes."
NAIVE_TZ = typer.Option("UTC", "--naive-tz", help="Zone of times without one.")
#: ingest.DEFAULT_BATCH (not imported here: the CLI starts without the ingest module).
DEFAULT_BATCH = 1024
BATCH_SIZE = typer.Option(
    DEFAULT_BATCH,
    "--batch-size",
    min=1,
    help="Documents scored together and stored in one transaction.",
)
TOPIC_MODEL = typer.Option(
    None,
    "--topic-model",
    help="A topic classifier (`finance train --topics`); its labels become topics beside the "
    "rules'.",
)
TOPIC_THRESHOLD = typer.Option(
    0.5,
    "--topic-threshold",
    min=0.0,
    max=1.0,
    help="Least probability of a --topic-model label to become a topic (0 to 1).",
)

# The surge detector's settings, the same flags for alerts, watch --alerts and replay.
BY = typer.Option("topic", "--by", help="topic | ticker | all.")
BUCKET = typer.Option(
    "1h", "--bucket", help="Step of the rolling window: 15m, 1h, 1d, 1w (from Monday), ..."
)
WINDOW = typer.Option(3, "--window", help="Window length in buckets.")
HALF_LIFE = typer.Option(
    None,
    "--half-life",
    help="Half-life of the EWMA baseline (default: 24 buckets, 24h with --bucket 1h, 24d with 1d; replay's bucket is its --step).",
)
MIN_VOLUME = typer.Option(8, "--min-volume", help="Fewest documents in a window.")
MIN_LIFT = typer.Option(0.15, "--min-lift", help="Least share above the baseline.")
P_VALUE = typer.Option(0.001, "--p-value", help="One-sided binomial test level.")
COOLDOWN = typer.Option(
    None,
    "--cooldown",
    help="Quiet time per key after an alert (default: the window's length, at least 6h).",
)
MIN_HISTORY_HELP = (
    "Documents a key must have had before a window for the window to be tested (default: 20 "
    "without --prior, so that a young key is measured against its own past; 0 with it)."
)
MIN_HISTORY = typer.Option(None, "--min-history", help=MIN_HISTORY_HELP)
TZ_HELP = (
    "Time zone whose wall clock cuts the buckets (IANA name: UTC, America/New_York, ...); a 1d "
    "bucket is a local day"
)
TZ = typer.Option("UTC", "--tz", help=TZ_HELP + ".")
STORED_PRIOR = typer.Option(
    None,
    "--prior",
    min=0.0,
    max=1.0,
    help="Starting baseline rate (default: the stored negative share).",
)

#: The options of the commands that store documents (``ingest``, ``watch``); ``score`` and
#: ``replay`` share ``--rules``.
RULES = typer.Option(None, "--rules", help=RULES_HELP)
MAX_CHARS = typer.Option(5000, "--max-chars", min=1, help="Longer texts are cut (counted).")
QUANTIZE = typer.Option(None, "--quantize", help="'int8' for faster scoring.")
LOCK_TIMEOUT = typer.Option(
    5.0, "--timeout", min=0.0, help="Seconds to wait for a locked database."
)
