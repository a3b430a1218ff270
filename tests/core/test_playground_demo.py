"""The core's playground demo: trains on sample data once, then classifies and explains."""

from __future__ import annotations

import pytest


@pytest.fixture
def demo_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    return tmp_path


def test_playground_trains_on_sample_data_once_and_reuses_the_model(demo_home):
    from tunesmith.data.load import load_text_dataset
    from tunesmith.testing import make_tiny_base_model
    from tunesmith.ui.core_demos import sample_sets, train_on_sample

    sample = sample_sets()["support_intents"]
    texts = load_text_dataset(sample.paths["train"]).texts
    base = make_tiny_base_model(demo_home / "base", texts)
    first = train_on_sample("support_intents", base_model=str(base))
    stamp = (
        (demo_home / "home" / "demo-models" / "support_intents" / "config.json").stat().st_mtime_ns
    )
    assert train_on_sample("support_intents", base_model=str(base)) == first
    assert (
        demo_home / "home" / "demo-models" / "support_intents" / "config.json"
    ).stat().st_mtime_ns == stamp


def test_playground_classify_returns_probabilities_highlights_and_a_note(demo_home):
    from tunesmith.testing import make_tiny_classifier
    from tunesmith.ui.core_demos import classify

    # Inside the demo's model folder: the UI opens models only under its allowed roots.
    folder = demo_home / "home" / "demo-models" / "m"
    model = make_tiny_classifier(folder, ["card_lost", "refund"], ["my card is lost"])
    probabilities, highlights, note = classify(str(model), "my card is lost")
    assert set(probabilities) == {"card_lost", "refund"}
    assert abs(sum(probabilities.values()) - 1) < 1e-4
    assert "Predicted" in note
    assert highlights


def test_playground_asks_for_a_model_before_classifying(demo_home):
    from tunesmith.ui.core_demos import classify

    with pytest.raises(ValueError, match="Train a model"):
        classify("", "hello")
