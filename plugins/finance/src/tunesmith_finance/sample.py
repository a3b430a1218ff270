"""The plugin's fictional sample data: a headline stream with a surge, labelled sentences, rules."""

from __future__ import annotations

from pathlib import Path

from tunesmith.hooktypes import SampleData

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"
STREAM = SAMPLE_DIR / "headlines.jsonl"
TRAIN = SAMPLE_DIR / "finance_sentences.csv"
EVAL = SAMPLE_DIR / "finance_sentences_eval.csv"
RULES = SAMPLE_DIR / "topics.toml"


def sample_data() -> list[SampleData]:
    """The finance sample sets, with absolute paths inside the installed package."""
    return [
        SampleData(
            name="finance_sentences",
            description=(
                "450 fictional finance sentences labelled negative / neutral / positive, "
                "plus 90 for eval (to fine-tune a sentiment model)"
            ),
            paths={"train": TRAIN, "eval": EVAL},
            task="classification",
        ),
        SampleData(
            name="finance_headlines",
            description=(
                "435 fictional headlines over five days (ids, ISO 8601 times in several zones, "
                "sources, tickers, topics) with a negative banking surge on day four, and the "
                "topic/ticker rules file"
            ),
            paths={"stream": STREAM, "rules": RULES},
            task="stream",
        ),
    ]
