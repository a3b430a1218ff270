"""Fixtures of the finance tests: a tiny sentiment model (built once), stores and the sample."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

LABELS = ["negative", "neutral", "positive"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny BERT sentiment classifier (negative / neutral / positive) fitted on 60 sentences."""
    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith_finance.sample import TRAIN

    with TRAIN.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:60]
    extra = ["helix bank shares plunge on deposit worries", "orcana beats estimates"]
    return make_tiny_trained_classifier(
        tmp_path_factory.mktemp("tiny_sentiment"),
        LABELS,
        [r["text"] for r in rows] + extra,
        [LABELS.index(r["label"]) for r in rows] + [0, 2],
        steps=15,
    )


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test drew (``trends.plot``, the demo's charts): pyplot keeps every
    figure until closed, and past 20 warned "More than 20 figures have been opened"."""
    yield
    if "matplotlib.pyplot" in sys.modules:  # never import matplotlib for a test that did not
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def db(tmp_path):
    from tunesmith_finance.storage import open_store

    store = open_store(tmp_path / "finance.sqlite")
    yield store
    store.close()


@pytest.fixture(scope="session")
def sample_rules():
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.sample import RULES

    return load_rules(RULES)
