"""The core's sample data: a small customer-support intent set and a tiny NER file."""

from __future__ import annotations

from pathlib import Path

from tunesmith.hooktypes import SampleData

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


def builtin_sample_data() -> list[SampleData]:
    """The core's sample sets, with absolute paths to files inside the installed package."""
    return [
        SampleData(
            name="support_intents",
            description=(
                "150 customer-support messages in 6 intents (card_lost, refund_request, "
                "delivery_late, password_reset, cancel_subscription, greeting), plus 48 for eval"
            ),
            paths={
                "train": SAMPLE_DIR / "support_intents.csv",
                "eval": SAMPLE_DIR / "support_intents_eval.csv",
            },
            task="classification",
            text_col="text",
            label_col="label",
        ),
        SampleData(
            name="sample_entities",
            description="42 short sentences tagged with PER, ORG and LOC entities (BIO)",
            paths={"train": SAMPLE_DIR / "sample_entities.conll"},
            task="ner",
            text_col="tokens",
            label_col="tags",
        ),
    ]
