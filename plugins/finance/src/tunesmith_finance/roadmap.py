"""What the finance plugin is for and what is coming."""

from __future__ import annotations

from tunesmith.roadmap import Roadmap

ROADMAP = Roadmap(
    name="finance",
    title="Finance sentiment",
    summary="Scores financial news for sentiment, tracks trends per topic and raises alerts.",
    coming=[
        "batched scoring of files, a watched folder or stdin into SQLite (idempotent)",
        "per-topic sentiment trends and a surge detector",
        "alerts as events (stdout, JSON lines, webhook) explained by aggregated attributions",
        "comparison with FinBERT-style baselines on the finance data sets",
    ],
)
