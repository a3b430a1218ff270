from __future__ import annotations

import csv
import json

import pytest

from tunesmith.errors import UserInputError
from tunesmith_support.answer import Answerer
from tunesmith_support.learning import Labelled, split_held_out, train_kb
from tunesmith_support.sample import sample_paths


def test_held_out_split_keeps_a_training_question_for_every_answer():
    rows = [Labelled(f"q{i}", "a" if i < 3 else "b", "f", i) for i in range(5)]
    rows.append(Labelled("single", "c", "f", 9))
    train, held = split_held_out(rows, 0.5)
    assert {r.answer_id for r in train} == {"a", "b", "c"}
    assert held and len(train) + len(held) == len(rows)


def test_train_tunes_the_encoder_reencodes_the_kb_and_calibrates(kb_copy, cli):
    result = train_kb(
        kb_copy,
        [sample_paths()["history"]],
        epochs=1.0,
        target_precision=0.5,
        log=lambda _m: None,
    )
    assert {"tuned", "untuned"} <= set(result["pair_metrics"])
    meta = json.loads((kb_copy / "kb.json").read_text())
    # One generation number (``index`` took the first, for its BM25 folder).
    generation = next((kb_copy / "encoders").glob("g*")).name
    assert meta["model"] == f"kb:encoders/{generation}" and meta["index"] == f"index-{generation}"
    assert (kb_copy / "encoders" / generation / "modules.json").exists()
    assert not (kb_copy / "index").exists()  # the old index is removed once unused
    calibration = json.loads((kb_copy / "calibration.json").read_text())
    assert calibration["report"]["questions"] == result["held_out"]
    answerer = Answerer(kb_copy)
    assert answerer.encoder.name == f"kb:encoders/{generation}"
    assert len(answerer.entries) == 75
    # The CLI still answers from the retrained KB.
    assert cli("support", "ask", "--kb", str(kb_copy), "how much is shipping").exit_code == 0


def test_intent_classifier_scores_join_the_candidates_and_weights_are_measured(kb_copy):
    import csv

    import numpy as np

    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith_support.learning import calibrate_kb, read_labelled, scorer_for

    with sample_paths()["history"].open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["answer_id"]][:40]
    labels = sorted({r["answer_id"] for r in rows})
    make_tiny_trained_classifier(
        kb_copy / "classifier",
        labels,
        [r["question"] for r in rows],
        [labels.index(r["answer_id"]) for r in rows],
        steps=10,
    )
    scorer = scorer_for(kb_copy)
    found = scorer.components(["can I rent a kayak"], everything=True)[0]
    probs = np.array([c.intent for c in found])
    assert probs.max() > 0 and probs.sum() <= 1.0 + 1e-5
    ids = {e.id for e in scorer.entries}
    calibration = calibrate_kb(kb_copy, read_labelled([sample_paths()["history"]], ids))
    assert "mrr_best_with_intent" in calibration.report
    answer = Answerer(kb_copy).ask("can I rent a kayak")
    assert answer.decision in {"answer", "clarify", "handoff"}


def test_classifier_learns_out_of_scope_questions_as_their_own_label(kb_copy, monkeypatch):
    import csv

    import tunesmith.engine.ensemble as engine_ensemble
    import tunesmith_support.learning as learning
    from tunesmith_support.learning import read_labelled, train_classifier
    from tunesmith_support.scoring import OUT_OF_SCOPE

    seen = {}

    def fake_train(run, log=None):
        with open(run.data, encoding="utf-8") as handle:
            seen["rows"] = list(csv.DictReader(handle))
        seen["model"] = run.model
        seen["epochs"] = run.epochs
        with open(run.eval_data, encoding="utf-8") as handle:
            seen["held"] = list(csv.DictReader(handle))
        return run.out

    monkeypatch.setattr(engine_ensemble, "train", fake_train)  # what train_ensemble calls
    monkeypatch.setattr(learning, "save_examples", lambda out, qs, **_: seen.update(examples=qs))
    ids = {e.id for e in Answerer(kb_copy).entries}
    rows = read_labelled([sample_paths()["history"]], ids)
    train, held = split_held_out(rows, 0.3)
    train_classifier(kb_copy, train, held=held, epochs=2.0, log=lambda _m: None)
    labels = [r["label"] for r in seen["rows"]]
    assert labels.count(OUT_OF_SCOPE) == sum(1 for r in train if not r.answer_id) >= 5
    # The stored examples are the in-scope training questions only.
    assert seen["examples"] == [r.question for r in train if r.answer_id]
    assert "" not in labels and len(labels) == len(train)
    # Held-out questions are the engine's held-out data, with labels it was trained on.
    assert seen["held"] and {r["label"] for r in seen["held"]} <= set(labels)
    assert seen["epochs"] == 2.0
    # The classifier starts from the KB's own encoder (here the tiny model it was built with).
    assert seen["model"] == json.loads((kb_copy / "kb.json").read_text())["model"]


def test_answers_read_the_classifier_the_confidence_was_fitted_with(kb_copy):
    """The confidence reads the classifier's scores even when its ranking weight is zero."""
    import csv

    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith_support.learning import calibrate_kb, read_labelled
    from tunesmith_support.scoring import OUT_OF_SCOPE

    with sample_paths()["history"].open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    labels = sorted({r["answer_id"] or OUT_OF_SCOPE for r in rows})
    make_tiny_trained_classifier(
        kb_copy / "classifier",
        labels,
        [r["question"] for r in rows],
        [labels.index(r["answer_id"] or OUT_OF_SCOPE) for r in rows],
        steps=10,
    )
    ids = {e.id for e in Answerer(kb_copy).entries}
    calibrate_kb(kb_copy, read_labelled([sample_paths()["history"]], ids))
    saved = json.loads((kb_copy / "calibration.json").read_text())
    assert saved["uses_classifier"] and "intent_oos" in saved["features"]
    saved["weights"]["intent"] = 0.0  # as when the classifier does not raise validation MRR
    (kb_copy / "calibration.json").write_text(json.dumps(saved))
    answerer = Answerer(kb_copy)
    assert answerer.scorer.intent is not None
    top = answerer.scorer.candidates(["will it rain tomorrow"], k=3)[0][0]
    assert 0.0 < top.out_of_scope < 1.0 and top.intent > 0.0


def test_index_questions_makes_past_questions_match_their_entries(kb_copy):
    from tunesmith_support.learning import scorer_for

    result = train_kb(
        kb_copy,
        [sample_paths()["history"]],
        encoder=False,
        index_questions=True,
        target_precision=0.5,
        log=lambda _m: None,
    )
    assert result["indexed_questions"] > 50
    with sample_paths()["history"].open(encoding="utf-8") as handle:
        past = [r for r in csv.DictReader(handle) if r["answer_id"]]
    scorer = scorer_for(kb_copy)
    top = scorer.candidates([r["question"] for r in past], k=1)
    matched = [t[0] for t, r in zip(top, past, strict=True) if t[0].question_score > 0.999]
    # Every indexed (training) question is found again as a question of its own entry.
    assert len(matched) == result["indexed_questions"]
    assert all(
        c.entry.id == r["answer_id"]
        for t, r in zip(top, past, strict=True)
        for c in t
        if c.question_score > 0.999
    )
    assert len(Answerer(kb_copy).entries) == 75


def test_classifier_members_train_one_run_per_seed_listed_in_the_manifest(kb_copy, monkeypatch):
    from pathlib import Path

    import tunesmith.engine.ensemble as engine_ensemble
    import tunesmith_support.learning as learning
    from tunesmith.engine.ensemble import read_members
    from tunesmith_support.learning import read_labelled, train_classifier

    seeds = []

    def fake_train(run, log=None):
        seeds.append((run.seed, Path(run.out)))
        Path(run.out).mkdir(parents=True, exist_ok=True)
        return run.out

    monkeypatch.setattr(engine_ensemble, "train", fake_train)  # what train_ensemble calls
    monkeypatch.setattr(learning, "save_examples", lambda out, qs, **_: None)
    ids = {e.id for e in Answerer(kb_copy).entries}
    train, held = split_held_out(read_labelled([sample_paths()["history"]], ids), 0.3)
    out = train_classifier(kb_copy, train, held=held, members=2, seed=7, log=lambda _m: None)
    assert seeds == [(7, out), (8, out / "members" / "seed8")]
    assert read_members(out) == [(out / "members" / "seed8").resolve()]


def test_an_ensemble_classifier_scores_with_its_members_mean(tmp_path):
    import numpy as np

    from tunesmith.engine.ensemble import MEMBERS_FILE
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits, probabilities
    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith_support.scoring import IntentModel

    texts = ["rent a kayak", "opening hours", "cancel my booking"]
    first = make_tiny_trained_classifier(tmp_path / "c", ["a", "b", "c"], texts, [0, 1, 2], steps=3)
    second = first / "members" / "seed43"
    make_tiny_trained_classifier(second, ["a", "b", "c"], texts, [0, 1, 2], steps=25)
    (first / MEMBERS_FILE).write_text(json.dumps({"members": ["members/seed43"]}))
    each = [probabilities(m, predict_logits(m, texts)) for m in map(load_model, (first, second))]
    assert not np.allclose(each[0], each[1])
    got = IntentModel(first).probabilities(texts)
    np.testing.assert_allclose(got, (each[0] + each[1]) / 2, atol=1e-5)


def test_stored_examples_make_a_training_question_nearer_than_an_unrelated_one(tmp_path):
    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith_support.scoring import EXAMPLES_FILE, IntentModel, save_examples

    texts = ["rent a kayak", "opening hours", "cancel my booking"]
    directory = make_tiny_trained_classifier(tmp_path / "c", ["a", "b", "c"], texts, [0, 1, 2])
    assert IntentModel(directory).similarity(texts) is None  # classifiers trained before
    save_examples(directory, texts)
    assert (directory / EXAMPLES_FILE).exists()
    near = IntentModel(directory).similarity(["opening hours", "zebra quantum violin"])
    assert near[0] == pytest.approx(1.0, abs=1e-4)
    assert near[1] < near[0]


def test_train_refuses_too_few_held_out_questions_before_changing_the_kb(kb_copy, tmp_path):
    # Calibration needs 20 held-out questions; refused only after re-encoding, the KB was left
    # on a new encoder and index with the old encoder's calibration.
    data = tmp_path / "few.csv"
    with sample_paths()["history"].open(encoding="utf-8") as handle:
        data.write_text("".join(handle.readlines()[:31]), encoding="utf-8")
    meta = (kb_copy / "kb.json").read_text()
    with pytest.raises(UserInputError, match="at least 20 held-out questions, got"):
        train_kb(kb_copy, [data], epochs=1.0, log=lambda _m: None)
    assert (kb_copy / "kb.json").read_text() == meta
    assert not (kb_copy / "encoders").exists()


def test_train_whose_calibration_is_refused_leaves_the_kb_as_it_was(kb_copy, tmp_path):
    # The FAQ's own questions, held out: all answered right by the KB with its past questions
    # indexed, so the calibration is refused after training changed the scores. The KB kept
    # what was trained (with the old calibration, or none): nothing is committed now.
    with sample_paths()["faq"].open(encoding="utf-8") as handle:
        faq = list(csv.DictReader(handle))[:40]
    data = tmp_path / "own.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer_id"])
        for row in faq:  # each id twice: one question trains, the FAQ's own is held out
            writer.writerows([[row["question"], row["id"]], [row["question"] + " ?", row["id"]]])
    before = sorted(p.name for p in kb_copy.iterdir())
    meta, calibration = (
        (kb_copy / "kb.json").read_text(),
        (kb_copy / "calibration.json").read_text(),
    )
    with pytest.raises(UserInputError, match="The knowledge base is unchanged"):
        train_kb(
            kb_copy, [data], encoder=False, index_questions=True, held_out=0.5,
            log=lambda _m: None,
        )  # fmt: skip
    assert (kb_copy / "kb.json").read_text() == meta
    assert (kb_copy / "calibration.json").read_text() == calibration
    assert sorted(p.name for p in kb_copy.iterdir()) == before
    assert len(Answerer(kb_copy).entries) == 75
