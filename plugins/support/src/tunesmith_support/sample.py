"""The support plugin's sample knowledge base: a fictional outdoor-gear shop, Fernhill Outdoor Co."""

from __future__ import annotations

from pathlib import Path

from tunesmith.hooktypes import SampleData

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"


def sample_paths() -> dict[str, Path]:
    """The sample files by role: ``faq`` and ``docs`` make the KB, ``history`` trains and
    calibrates, ``questions`` tests (answer ids; an empty id means out of scope), ``followups``
    are two-turn conversations (a question, a follow-up and the follow-up's answer id)."""
    return {
        "kb": SAMPLE_DIR / "kb",
        "faq": SAMPLE_DIR / "kb" / "faq.csv",
        "docs": SAMPLE_DIR / "kb" / "docs",
        "history": SAMPLE_DIR / "history.csv",
        "questions": SAMPLE_DIR / "questions.csv",
        "followups": SAMPLE_DIR / "followups.csv",
    }


def support_sample_data() -> list[SampleData]:
    """The sample knowledge base as a :class:`SampleData` (task ``support``)."""
    return [
        SampleData(
            name="support_fernhill",
            description=(
                "Knowledge base of a fictional outdoor-gear shop: 60 FAQ entries in 8 categories "
                "and 4 documents (Markdown, HTML); 155 past questions with their answer ids for "
                "training and calibration, 88 test questions (15 out of scope)"
            ),
            paths=sample_paths(),
            task="support",
            text_col="question",
            label_col="answer_id",
        )
    ]
