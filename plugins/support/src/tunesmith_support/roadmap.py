"""What the support plugin is for and what is coming."""

from __future__ import annotations

from tunesmith.roadmap import Roadmap

ROADMAP = Roadmap(
    name="support",
    title="Customer support",
    summary="Answers customer questions from a knowledge base and hands off to a person when unsure.",
    coming=[
        "index FAQ and documents into a FAISS knowledge base with stable ids",
        "answer, ask to clarify, or hand off to a person (an event) by calibrated confidence",
        "a conversation log in SQLite, feedback export back into training data",
        "explanations of which words in the question and the passage drove each answer",
    ],
)
