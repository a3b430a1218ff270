"""The core's playground demo: trains on sample data once, then classifies and explains."""

from __future__ import annotations

import pytest

#: Tiny models on one torch thread: on a busy shared CPU two threads made each 50-step
#: explanation of a page's text take seconds instead of a tenth of one.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def test_playground_says_when_a_long_text_was_read_only_in_part(demo_home):
    from tunesmith.testing import make_tiny_classifier
    from tunesmith.ui.core_demos import classify

    folder = demo_home / "home" / "demo-models" / "m"
    model = make_tiny_classifier(folder, ["card_lost", "refund"], ["my card is lost"])
    _, _, short = classify(str(model), "my card is lost")
    assert "only its beginning" not in short
    # 600 words for a model that reads 128 tokens: the page said nothing of the cut.
    _, highlights, note = classify(str(model), "my card is lost " * 150)
    assert "only its beginning (the highlighted words) was classified and explained" in note
    assert sum(score is not None for _, score in highlights) < 128


def test_playground_asks_for_a_model_before_classifying(demo_home):
    from tunesmith.ui.core_demos import classify

    with pytest.raises(ValueError, match="Train a model"):
        classify("", "hello")


def test_playground_classifies_a_multi_label_model_instead_of_failing(demo_home):
    from tunesmith.testing import make_tiny_classifier
    from tunesmith.ui.core_demos import classify

    folder = demo_home / "home" / "demo-models" / "tags"
    model = make_tiny_classifier(
        folder, ["late", "lost", "refund"], ["my card is lost"], multilabel=True
    )
    probabilities, highlights, note = classify(str(model), "my card is lost")
    assert set(probabilities) == {"late", "lost", "refund"}
    assert "the most probable label" in note and "Something went wrong" not in note
    assert highlights


def test_playground_shows_a_taggers_entities_and_why_the_first_was_tagged(demo_home):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts
    from tunesmith.testing import make_tiny_tagger
    from tunesmith.ui.core_demos import classify

    folder = demo_home / "home" / "demo-models" / "ner"
    text = "John lives in Paris"
    model = make_tiny_tagger(folder, ["O", "B-PER", "I-PER", "B-LOC"], [text])
    entities = predict_texts(load_model(model), [text])[0]["entities"]
    assert entities  # the untrained tagger tags something, so the test shows a result
    scores, highlights, note = classify(str(model), text)
    assert list(scores) == [f"{e['text']} ({e['type']})" for e in entities]
    assert note.startswith(f"Found {len(entities)} entit")
    assert highlights and "".join(piece for piece, _ in highlights) == text


def test_two_pages_training_the_same_sample_at_once_train_it_once(demo_home, monkeypatch):
    import threading
    import time
    from pathlib import Path

    from tunesmith.ui import core_demos

    runs = []

    def slow_train(run):  # the real one refused the second run: "another tunesmith run ..."
        runs.append(run.out)
        time.sleep(0.3)
        Path(run.out).mkdir(parents=True, exist_ok=True)
        (Path(run.out) / "config.json").write_text("{}")
        return Path(run.out)

    monkeypatch.setattr(core_demos, "train", slow_train)
    shown = []

    def press_train():
        shown.append(core_demos.train_for_page("support_intents"))

    pages = [threading.Thread(target=press_train) for _ in range(2)]
    for page in pages:
        page.start()
    for page in pages:
        page.join(timeout=10)
    assert len(runs) == 1
    # Both pages are given the one model, by its name in the demo's folder.
    assert [directory for directory, _ in shown] == [Path(runs[0]).name] * 2


def test_playground_scores_a_seed_ensemble_as_predict_does_by_its_members_mean(demo_home):
    import json

    import numpy as np

    from tunesmith.engine.ensemble import MEMBERS_FILE, load_ensemble, mean_probabilities
    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith.ui.core_demos import classify

    labels = ["negative", "neutral", "positive"]
    texts = ["shares plunge on losses", "results due on thursday", "profit beats estimates"]
    folder = demo_home / "home" / "demo-models" / "ens"
    first = make_tiny_trained_classifier(folder, labels, texts, [0, 1, 2], steps=5)
    make_tiny_trained_classifier(first / "members" / "seed43", labels, texts, [2, 1, 0], steps=30)
    (first / MEMBERS_FILE).write_text(json.dumps({"members": ["members/seed43"]}))
    models = load_ensemble(first)
    mean = mean_probabilities(models, texts[:1])[0]
    alone = mean_probabilities(models[:1], texts[:1])[0]
    assert not np.allclose(mean, alone, atol=1e-3)  # the members differ: a real test
    probabilities, highlights, _note = classify(str(first), texts[0])
    got = np.asarray([probabilities[label] for label in labels])
    np.testing.assert_allclose(got, mean, atol=1e-5)
    assert highlights


def test_playground_says_a_seed_ensemble_is_the_mean_of_its_models(demo_home):
    import json

    from tunesmith.engine.ensemble import MEMBERS_FILE
    from tunesmith.testing import make_tiny_classifier
    from tunesmith.ui.core_demos import classify

    labels, texts = ["negative", "positive"], ["shares plunge", "profit beats"]
    single = make_tiny_classifier(demo_home / "home" / "demo-models" / "one", labels, texts)
    first = make_tiny_classifier(demo_home / "home" / "demo-models" / "ens", labels, texts)
    make_tiny_classifier(first / "members" / "seed43", labels, texts, seed=1)
    (first / MEMBERS_FILE).write_text(json.dumps({"members": ["members/seed43"]}))
    # A `finance train --members 2` model read "Predicted negative (56%)" as one model's.
    _, _, note = classify(str(first), texts[0])
    assert "seed ensemble" in note and "mean of its 2 models" in note
    _, _, alone = classify(str(single), texts[0])
    assert "ensemble" not in alone


def test_playground_lists_an_entity_named_twice_as_two_rows(demo_home, monkeypatch):
    from tunesmith.testing import make_tiny_tagger
    from tunesmith.ui import core_demos

    text = "Apple sued Apple"
    model = make_tiny_tagger(demo_home / "home" / "demo-models" / "ner", ["O", "B-ORG"], [text])
    found = [
        {"text": "Apple", "type": "ORG", "start": 0, "end": 5, "score": 0.9},
        {"text": "Apple", "type": "ORG", "start": 11, "end": 16, "score": 0.6},
    ]
    monkeypatch.setattr(core_demos, "predict_texts", lambda *a, **k: [{"entities": found}])
    monkeypatch.setattr(core_demos, "explain_loaded", lambda *a, **k: [[]])
    scores, _, note = core_demos.classify(str(model), text)
    # One key for both: the table showed one row while the note said "Found 2 entities".
    assert note.startswith("Found 2 entities")
    assert list(scores.values()) == [0.9, 0.6]
    assert list(scores) == ["Apple (ORG)", "Apple (ORG) at character 11"]


def test_playground_says_when_a_tagger_read_a_long_text_only_in_part(demo_home, monkeypatch):
    from tunesmith.testing import make_tiny_tagger
    from tunesmith.ui import core_demos

    folder = demo_home / "home" / "demo-models" / "ner"
    model = make_tiny_tagger(folder, ["O", "B-PER", "B-LOC"], ["John lives in Paris"])
    monkeypatch.setattr(core_demos, "predict_texts", lambda *a, **k: [{"entities": []}])
    _, _, short = core_demos.classify(str(model), "John lives in Paris")
    assert short == "No entities found in the text."
    # 400 words for a tagger that reads 128 tokens: "No entities found in the text".
    _, _, cut = core_demos.classify(str(model), "John lives in Paris " * 100)
    assert cut == "No entities found in the beginning of the text the model reads."


def test_playground_shows_the_faithfulness_figures_explain_prints_for_the_text(demo_home, cli):
    """`tunesmith explain` prints delta, comprehensiveness and sufficiency; the page showed the
    words alone, computed with another method whose figures differ (its delta is large)."""
    import json

    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith.ui.core_demos import classify

    labels, texts = ["negative", "positive"], ["bad card and bad app", "great card and great app"]
    folder = demo_home / "home" / "demo-models" / "m"
    model = make_tiny_trained_classifier(folder, labels, texts, [0, 1], steps=10)
    text = "great card and a bad app"
    _, _, note = classify(str(model), text)
    result = cli("explain", "--model", str(model), "--text", text, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert f"- delta **{data['delta']:+.5f}**: how far the word scores miss" in note
    assert f"- comprehensiveness **{data['comprehensiveness']:.3f}**: how much" in note
    assert f"- sufficiency **{data['sufficiency']:.3f} (top {data['k']} words)**: " in note


def test_small_and_large_probabilities_are_written_so_they_do_not_read_as_none_or_certain():
    from tunesmith.ui.core_demos import Classified, percent, scores_html

    assert [percent(p) for p in (0.005, 0.0004, 1 / 77, 0.16, 0.994, 0.9998, 0.0, 1.0)] == [
        "0.5%",
        "<0.1%",
        "1.3%",
        "16%",
        "99.4%",
        ">99.9%",
        "0%",
        "100%",
    ]
    # gr.Label wrote every percent rounded: 0.5 % read "0%" beside the other labels.
    shown = scores_html(Classified({"refund": 0.9948, "card_lost": 0.0052}, None, "", "x"))
    assert ">0.5%</td>" in shown and ">99.5%</td>" in shown and ">0%<" not in shown
    # The box is HTML: a label is shown as text, never as markup.
    assert "&lt;img src=x&gt;" in scores_html(Classified({"<img src=x>": 1.0}, None, "", "x"))


def test_a_low_top_probability_is_called_low_confidence_not_just_predicted(demo_home):
    from tunesmith.testing import make_tiny_classifier
    from tunesmith.ui.core_demos import classify_for_page, low_confidence

    # Below halfway from chance (1 / labels) to certainty.
    assert low_confidence(0.16, 77) and low_confidence(0.74, 2) and low_confidence(0.66, 3)
    assert not low_confidence(0.8, 2) and not low_confidence(0.55, 77)
    labels = [f"intent_{i}" for i in range(77)]
    folder = demo_home / "home" / "demo-models" / "many"
    model = make_tiny_classifier(folder, labels, ["where is my card"])  # untrained: a few %
    box, _, note = classify_for_page(str(model), "where is my card")
    assert "with **low confidence** (" in note and "chance, 1.3% with 77 labels" in note
    assert "read it as a guess" in note
    assert box["label"] == "Probabilities" and "(low confidence)" in box["value"]
    assert "72 more labels, together" in box["value"]


def test_a_taggers_box_lists_entities_without_a_prediction_heading(demo_home):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts
    from tunesmith.testing import make_tiny_tagger
    from tunesmith.ui.core_demos import classify_for_page

    folder = demo_home / "home" / "demo-models" / "ner"
    text = "John lives in Paris"
    model = make_tiny_tagger(folder, ["O", "B-PER", "I-PER", "B-LOC"], [text])
    entities = predict_texts(load_model(model), [text])[0]["entities"]
    assert entities
    box, _, _ = classify_for_page(str(model), text)
    # gr.Label's large heading named the first entity as if it were the text's prediction.
    assert box["label"] == "Entities" and "font-size" not in box["value"]
    assert "with its confidence in it" in box["value"]
    assert f"{entities[0]['text']} ({entities[0]['type']})" in box["value"]
