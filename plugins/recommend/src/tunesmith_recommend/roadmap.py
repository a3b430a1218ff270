"""What the recommend plugin is for and what is coming."""

from __future__ import annotations

from tunesmith.roadmap import Roadmap

ROADMAP = Roadmap(
    name="recommend",
    title="Recommendations",
    summary="Recommends items from their text and what users liked.",
    coming=[
        "items and events with a time-ordered split",
        "popularity and text baselines, and a text two-tower model with a fine-tuned item encoder",
        "FAISS candidates, re-ranking and full-catalogue evaluation (NDCG, recall)",
        "reasons for each recommendation from the item text",
    ],
)
