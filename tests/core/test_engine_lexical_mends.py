"""The lexical model (``--lexical W``) as a stranger uses it: refits (not measurable again,
stopped, locked, plots), the model card (a run that had no use for it, plain transformers and
ONNX beside it, mixed against the transformer's own figures), explanations, calibration and
reliability diagrams of a mixed model, directories whose lexical files do not belong to the
model, scoring memory, and the UI's model cache."""

from __future__ import annotations

import json

import pytest
from lexical_texts import LABELS, TARGETS, TEXTS


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from tunesmith.testing import make_tiny_base_model

    return make_tiny_base_model(tmp_path_factory.mktemp("base") / "base", TEXTS)


def _run(tmp_path, base, share, **extra):
    from tunesmith.engine.config import RunConfig
    from tunesmith.testing import write_csv

    rows = [[f"{TEXTS[i % 6]} row{i}", TARGETS[i % 6]] for i in range(180)]
    data = write_csv(tmp_path / "train.csv", rows)
    return RunConfig(data=str(data), out=str(tmp_path / "model"), model=str(base),
                     strategy="head", epochs=1.0, seed=42, force=True, lexical=share,
                     **extra)  # fmt: skip


def _remembered_held_out(out):
    """As training writes a model whose carved held-out texts joined its nearest examples (the
    default model often keeps them): those texts can no longer measure it."""
    path = out / "run_config.json"
    config = json.loads(path.read_text())
    config["resolved"]["nearest"] = {"weight": 1.0, "source": "held-out score",
                                     "held_out_added": 6}  # fmt: skip
    path.write_text(json.dumps(config))


@pytest.mark.slow
def test_a_refit_that_cannot_measure_again_says_which_share_the_report_describes(
    tmp_path, base, one_torch_thread
):
    from tunesmith.engine.ensemble import train_ensemble

    out = tmp_path / "model"
    train_ensemble(_run(tmp_path, base, 0.3), 1, log=lambda _m: None)
    before = json.loads((out / "metrics.json").read_text())
    assert before["lexical"]["weight"] == 0.3 and "mixed_accuracy" in before["lexical"]
    _remembered_held_out(out)

    train_ensemble(_run(tmp_path, base, 0.0), 1, reuse=True, log=lambda _m: None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["report"] == before["report"]  # not measured again: the 0.3 mix
    assert metrics["lexical"]["weight"] == 0.0 and metrics["lexical"]["report_share"] == 0.3
    assert "measured with lexical share 0.3, not 0" in (out / "README.md").read_text()

    # Another refit carries the share the report was measured with, not the last one asked.
    train_ensemble(_run(tmp_path, base, 0.5), 1, reuse=True, log=lambda _m: None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["lexical"]["weight"] == 0.5 and metrics["lexical"]["report_share"] == 0.3

    # Back to the share it was measured with: the measurement is that model's again.
    train_ensemble(_run(tmp_path, base, 0.3), 1, reuse=True, log=lambda _m: None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["lexical"]["weight"] == 0.3 and "report_share" not in metrics["lexical"]
    assert "Note: the held-out report" not in (out / "README.md").read_text()


def test_the_playground_highlights_the_words_of_the_label_it_predicts(
    tmp_path, monkeypatch, explained_targets
):
    import tunesmith.ui.core_demos as core_demos
    from tunesmith.testing import make_tiny_classifier, overrule_with_lexical

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    folder = tmp_path / "home" / "demo-models" / "m"  # the UI opens models under its roots only
    model = make_tiny_classifier(folder, LABELS, TEXTS)
    text = TEXTS[0]
    other = overrule_with_lexical(model, LABELS, TEXTS, text)  # a large share that says otherwise
    asked = explained_targets(core_demos)
    probabilities, _highlights, note = core_demos.classify(str(model), text)
    assert max(probabilities, key=probabilities.get) == other and f"**{other}**" in note
    assert asked == [other]


def _card(task, share, pooling):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.model_card import render_model_card
    from tunesmith.engine.resolved import Resolved

    run = RunConfig(data="train.csv", out="m", lexical=share)
    run.resolved = Resolved(task=task, pooling=pooling, labels=LABELS, max_length=64)
    calibration = {"temperature": 1.2, "ece_before": 0.1, "ece_after": 0.05}
    return render_model_card(run, {"report": {"accuracy": 0.9}, "calibration": calibration})


def test_the_card_of_a_multilabel_or_ner_run_with_lexical_does_not_claim_a_lexical_model():
    for task in ("multilabel", "ner"):
        assert "Lexical model" not in _card(task, 0.3, "cls"), task
        assert "lexical.json" not in _card(task, 0.3, "cls"), task
    assert "Lexical model" in _card("classification", 0.3, "cls")


def test_the_card_of_a_lexical_model_says_transformers_refuses_it_and_onnx_leaves_the_share_out():
    for pooling in ("cls", "mean"):  # a lexical share marks even a plain-head directory
        card = _card("classification", 0.3, pooling).replace("\n", " ")
        assert "plain Hugging Face directory" not in card, pooling
        assert "mixes in a lexical n-gram model's probabilities" in card, pooling
        assert "`pipeline` refuse this directory" in card, pooling
        assert "calibration included, but without the lexical model's 0.3 share" in card, pooling
    plain = _card("classification", 0.0, "cls")
    assert "plain Hugging Face directory" in plain and "lexical model's" not in plain


def test_the_card_of_a_lexical_model_says_explanations_mix_the_share_in():
    # `explain` scores words on the mixed probabilities (explain/lexical.py); the card said
    # the share was left out of explanations.
    line = next(x for x in _card("classification", 0.3, "cls").splitlines() if "Lexical" in x)
    assert "not in explanations" not in line and "`explain` mixes it in" in line


@pytest.mark.slow
def test_calibrate_reports_the_accuracy_of_the_mixed_labels_it_changes(
    disagreeing_model, tmp_path, cli
):
    import shutil

    from tunesmith.engine.evaluate import evaluate_model, load_eval_dataset
    from tunesmith.engine.loading import load_model

    model = tmp_path / "m"
    shutil.copytree(disagreeing_model[0], model)
    held = disagreeing_model[1]

    def accuracy() -> float:
        loaded = load_model(model)
        return evaluate_model(loaded, load_eval_dataset(loaded, held))["accuracy"]

    before = accuracy()
    result = cli("calibrate", "--model", str(model), "--data", str(held), "--json")
    assert result.exit_code == 0, result.output
    reported = json.loads(result.stdout)
    after = accuracy()
    assert before != after  # the temperature moved the mixed labels
    assert reported["accuracy_before"] == pytest.approx(before, abs=1e-6)
    assert reported["accuracy"] == pytest.approx(after, abs=1e-6)
    printed = cli("calibrate", "--model", str(model), "--data", str(held)).stdout
    assert "(unchanged)" not in printed and "mixed with the lexical model" in printed
    # The mix's own temperature is refitted on the same file and saved with the lexical model.
    assert "the mix's own temperature" in printed
    stored = json.loads((model / "lexical.json").read_text())["temperature"]
    assert stored == pytest.approx(reported["lexical_temperature"])


def test_the_training_reliability_diagram_has_the_lexical_share_before_and_after():
    from types import SimpleNamespace

    import numpy as np

    from tunesmith.data.records import TextDataset
    from tunesmith.engine.stages import lexical as lexical_stage

    data = TextDataset(TEXTS * 3, [[t] for t in TARGETS * 3], LABELS)
    before = np.full((len(data), 3), 1 / 3)  # the transformer before its temperature
    after = np.tile([0.6, 0.3, 0.1], (len(data), 1))
    y = np.array([LABELS.index(t) for t in TARGETS * 3])
    state = SimpleNamespace(
        run=SimpleNamespace(lexical=0.4, eval_data="eval.csv", class_weights="none"),
        prepared=SimpleNamespace(task="classification", train=data, held=data, labels=LABELS),
        metrics={"report": {"accuracy": 0.0}},
        plots=(before, after, y),
        lexical=None,
        calibration={"temperature": 1.0},
        note=lambda _t: None,
        log=lambda _m: None,
    )
    lexical_stage.run(state)
    drawn_before, drawn_after, _ = state.plots
    share = state.lexical.probabilities(data.texts)
    # After calibration: the mix with its own temperature; before: the plain mix.
    from tunesmith.engine.lexical import with_temperature

    mixed = 0.6 * after + 0.4 * share
    np.testing.assert_allclose(drawn_after, with_temperature(mixed, state.lexical.temperature))
    np.testing.assert_allclose(drawn_before, 0.6 * before + 0.4 * share)


@pytest.fixture(scope="module")
def disagreeing_model(tmp_path_factory):
    """(model, held-out file): a tiny intent classifier with a 0.45 lexical share fitted on
    shifted labels, so the mix and the transformer disagree on many texts."""
    from tunesmith.data.load import load_text_dataset
    from tunesmith.data.sample import builtin_sample_data
    from tunesmith.engine.lexical import LexicalModel
    from tunesmith.testing import make_tiny_trained_classifier

    sample = {s.name: s for s in builtin_sample_data()}["support_intents"]
    train = load_text_dataset(sample.paths["train"])
    labels = sorted(set(train.first_labels))
    y = [labels.index(label) for label in train.first_labels]
    model = tmp_path_factory.mktemp("disagreeing") / "m"
    make_tiny_trained_classifier(model, labels, train.texts, y, steps=60)
    wrong = [labels[(i + 1) % len(labels)] for i in y]
    LexicalModel.fit(train.texts, wrong, labels, weight=0.45).save(model)
    return model, sample.paths["eval"]


@pytest.mark.slow
def test_evaluate_plots_and_prints_the_calibration_of_the_mixed_probabilities(
    disagreeing_model, tmp_path, monkeypatch, cli
):
    import shutil

    import numpy as np

    import tunesmith.engine.evaluate as evaluate
    from tunesmith.engine.calibration import calibration_probs
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits

    model = tmp_path / "m"
    shutil.copytree(disagreeing_model[0], model)
    held = disagreeing_model[1]
    assert cli("calibrate", "--model", str(model), "--data", str(held)).exit_code == 0

    drawn = {}
    real = evaluate.save_reliability_diagram

    def spy(probs, y, path, **options):
        drawn["before"], drawn["after"] = probs, options.get("probs_after")
        return real(probs, y, path, **options)

    monkeypatch.setattr(evaluate, "save_reliability_diagram", spy)
    result = cli("evaluate", "--model", str(model), "--data", str(held), "--plot",
                 str(tmp_path / "plots"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "with the lexical model's 0.45 share: ECE" in result.stdout

    loaded = load_model(model)
    texts = evaluate.load_eval_dataset(loaded, held).texts
    raw = calibration_probs(predict_logits(loaded, texts), None, False)
    np.testing.assert_allclose(drawn["before"], loaded.extra["lexical"].mix(raw, texts), atol=1e-6)


def _lexical_classifier(tmp_path, change=lambda _spec: None):
    """A tiny classifier with a lexical model, whose lexical.json ``change`` edits."""
    from tunesmith.engine.lexical import LEXICAL_FILE, LexicalModel
    from tunesmith.testing import make_tiny_classifier

    model = make_tiny_classifier(tmp_path / "m", LABELS, TEXTS)
    LexicalModel.fit(TEXTS, TARGETS, LABELS, weight=0.3).save(model)
    spec = json.loads((model / LEXICAL_FILE).read_text())
    change(spec)
    (model / LEXICAL_FILE).write_text(json.dumps(spec))
    return model


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(labels=list(reversed(s["labels"]))), "are not the model's"),
        (lambda s: s.update(labels=[*s["labels"][:2], "other"]), "are not the model's"),
        (lambda s: s.update(classes=s["classes"][:2]), "do not match its classes"),
        (lambda s: s.update(classes=[0, 1, 9]), "are not label indices"),
        (lambda s: s.update(weight=5), "share 5 is not from 0 below 1"),
    ],
)
def test_a_lexical_json_that_does_not_fit_the_model_is_refused_at_load(tmp_path, change, message):
    from tunesmith.engine.loading import load_model
    from tunesmith.errors import ModelNotFoundError

    model = _lexical_classifier(tmp_path, change)
    with pytest.raises(ModelNotFoundError, match=message):
        load_model(model)


def test_lexical_arrays_without_their_json_are_refused_not_ignored(tmp_path):
    from tunesmith.engine.lexical import LEXICAL_FILE
    from tunesmith.engine.loading import load_model
    from tunesmith.errors import ModelNotFoundError

    model = _lexical_classifier(tmp_path)
    (model / LEXICAL_FILE).unlink()
    with pytest.raises(ModelNotFoundError, match=r"lexical\.npz: .* no lexical\.json"):
        load_model(model)


@pytest.mark.slow
def test_a_refit_stopped_while_fitting_leaves_the_old_lexical_model_in_place(
    tmp_path, base, one_torch_thread, monkeypatch
):
    from tunesmith.engine.ensemble import train_ensemble
    from tunesmith.engine.lexical import LexicalModel
    from tunesmith.engine.loading import load_model

    out = tmp_path / "model"
    train_ensemble(_run(tmp_path, base, 0.3), 1, log=lambda _m: None)

    def stopped(*_args, **_kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(LexicalModel, "fit", stopped)
        with pytest.raises(KeyboardInterrupt):
            train_ensemble(_run(tmp_path, base, 0.5), 1, reuse=True, log=lambda _m: None)
    # Going back to the share it was trained with reuses it: with its lexical model intact.
    logged: list[str] = []
    train_ensemble(_run(tmp_path, base, 0.3), 1, reuse=True, log=logged.append)
    assert any("(same settings)" in line for line in logged), logged
    assert load_model(out).extra["lexical"].weight == 0.3


@pytest.mark.slow
def test_a_refit_measured_again_redraws_the_plots_of_its_new_report(
    tmp_path, base, one_torch_thread, monkeypatch
):
    import tunesmith.engine.stages.write as write
    from tunesmith.engine.ensemble import train_ensemble

    out = tmp_path / "model"
    train_ensemble(_run(tmp_path, base, 0.0), 1, log=lambda _m: None)
    drawn: dict[str, object] = {}
    monkeypatch.setattr(
        write,
        "save_confusion_matrix_png",
        lambda report, path: drawn.update(matrix=report["confusion_matrix"]),
    )
    monkeypatch.setattr(write, "save_reliability_diagram",
                        lambda before, y, path, **o: drawn.update(after=o["probs_after"]))  # fmt: skip
    train_ensemble(_run(tmp_path, base, 0.4), 1, reuse=True, log=lambda _m: None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["lexical"]["weight"] == 0.4  # measured again
    assert drawn["matrix"] == metrics["report"]["confusion_matrix"]
    assert "after" in drawn


def test_scoring_turns_texts_into_n_gram_features_a_bounded_chunk_at_a_time(monkeypatch):
    import numpy as np

    import tunesmith.engine.lexical as lexical

    model = lexical.LexicalModel.fit(TEXTS * 3, TARGETS * 3, LABELS, weight=0.3)
    probe = [f"{text} number {i}" for i, text in enumerate(TEXTS * 2)]
    whole = model.probabilities(probe)
    sizes: list[int] = []
    transform = type(model.char).transform

    def counted(self, texts):
        sizes.append(len(texts))
        return transform(self, texts)

    monkeypatch.setattr(type(model.char), "transform", counted)
    monkeypatch.setattr(lexical, "CHUNK", 5, raising=False)
    chunked = model.probabilities(probe)
    assert sizes and max(sizes) <= 5  # a --data file of any size: bounded memory
    np.testing.assert_allclose(chunked, whole, atol=1e-12)


def test_long_documents_fill_a_scoring_chunk_with_fewer_texts(monkeypatch):
    import numpy as np

    import tunesmith.engine.lexical as lexical

    model = lexical.LexicalModel.fit(TEXTS * 3, TARGETS * 3, LABELS, weight=0.3)
    probe = [" ".join([text] * 40) for text in TEXTS * 2]  # about 1,000 characters each
    whole = model.probabilities(probe)
    sizes: list[int] = []
    transform = type(model.char).transform

    def counted(self, texts):
        sizes.append(sum(len(t) for t in texts))
        return transform(self, texts)

    monkeypatch.setattr(type(model.char), "transform", counted)
    monkeypatch.setattr(lexical, "CHUNK_CHARS", 3000, raising=False)
    chunked = model.probabilities(probe)
    assert sizes and max(sizes) <= 3000  # articles, not only tweets: bounded memory
    np.testing.assert_allclose(chunked, whole, atol=1e-12)


def test_the_ui_model_cache_sees_a_new_lexical_share_and_a_new_temperature(tmp_path, monkeypatch):
    from tunesmith.engine.calibration import load_calibration, save_calibration
    from tunesmith.engine.lexical import LexicalModel
    from tunesmith.ui import model_access

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(model_access, "_cache", type(model_access._cache)())
    model = _lexical_classifier(tmp_path / "home" / "demo-models")
    assert model_access.load_allowed(str(model)).extra["lexical"].weight == 0.3
    # A refit for another share (train_ensemble reuse) rewrites the lexical files only.
    LexicalModel.fit(TEXTS, TARGETS, LABELS, weight=0.6).save(model)
    assert model_access.load_allowed(str(model)).extra["lexical"].weight == 0.6
    # tunesmith calibrate rewrites calibration.json only.
    calibration = load_calibration(model) or {"method": "temperature"}
    save_calibration(model, {**calibration, "temperature": 2.5})
    assert model_access.load_allowed(str(model)).temperature == 2.5


def test_the_card_tells_the_mixed_figures_from_the_transformers_own():
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.model_card import render_model_card
    from tunesmith.engine.resolved import Resolved

    run = RunConfig(data="train.csv", out="m", lexical=0.3)
    run.resolved = Resolved(task="classification", pooling="mean", labels=LABELS)
    metrics = {
        "report": {"accuracy": 0.9, "ece": 0.15},
        "calibration": {"temperature": 1.4, "ece_before": 0.12, "ece_after": 0.11},
        "lexical": {
            "weight": 0.3,
            "transformer_accuracy": 0.85,
            "lexical_accuracy": 0.8,
            "mixed_accuracy": 0.9,
        },  # fmt: skip
    }
    card = render_model_card(run, metrics)
    assert "| accuracy of the transformer / the lexical model alone | 0.8500 / 0.8000 |" in card
    assert "| ECE before / after calibration (the transformer alone) | 0.1200 / 0.1100 |" in card
    metrics.pop("lexical")
    assert "| ECE before / after calibration | 0.1200 / 0.1100 |" in render_model_card(
        RunConfig(data="train.csv", out="m"), metrics
    )


@pytest.mark.slow
def test_a_refit_is_refused_while_another_run_writes_the_model(tmp_path, base, one_torch_thread):
    from tunesmith.engine.ensemble import train_ensemble
    from tunesmith.engine.lexical_refit import refit_lexical
    from tunesmith.locks import RunLockedError, run_lock

    out = tmp_path / "model"
    train_ensemble(_run(tmp_path, base, 0.3), 1, log=lambda _m: None)
    with run_lock(out), pytest.raises(RunLockedError):  # a train --force or calibrate of it
        refit_lexical(out, _run(tmp_path, base, 0.5), log=lambda _m: None)
    assert json.loads((out / "run_config.json").read_text())["lexical"] == 0.3


def test_only_the_main_process_fits_the_lexical_model_under_torchrun(monkeypatch):
    from types import SimpleNamespace

    from tunesmith.engine.stages import lexical as lexical_stage

    monkeypatch.setattr(lexical_stage, "is_main_process", lambda: False)
    monkeypatch.setattr(lexical_stage, "fit", lambda *_a, **_k: pytest.fail("fitted"))
    state = SimpleNamespace(run=SimpleNamespace(lexical=0.3), prepared=None, lexical=None)
    lexical_stage.run(state)
    assert state.lexical is None


@pytest.mark.slow
def test_a_refit_replaces_the_lexical_notes_of_the_share_before(
    tmp_path, base, one_torch_thread, monkeypatch
):
    from tunesmith.engine.ensemble import train_ensemble
    from tunesmith.engine.lexical import LexicalModel
    from tunesmith.engine.loading import load_model
    from tunesmith.errors import UserInputError

    out = tmp_path / "model"

    def cannot(*_args, **_kwargs):
        raise UserInputError("no terms")

    def notes():
        return json.loads((out / "run_config.json").read_text())["resolved"].get("notes", [])

    with monkeypatch.context() as patched:
        patched.setattr(LexicalModel, "fit", cannot)
        train_ensemble(_run(tmp_path, base, 0.3), 1, log=lambda _m: None)
    assert notes() == ["--lexical: not used (no terms)"]

    train_ensemble(_run(tmp_path, base, 0.4), 1, reuse=True, log=lambda _m: None)
    assert notes() == [] and load_model(out).extra["lexical"].weight == 0.4

    # A refit that cannot fit keeps the transformer, without a lexical part, and says why once.
    with monkeypatch.context() as patched:
        patched.setattr(LexicalModel, "fit", cannot)
        train_ensemble(_run(tmp_path, base, 0.5), 1, reuse=True, log=lambda _m: None)
    assert notes() == ["--lexical: not used (no terms)"]
    assert "lexical" not in load_model(out).extra
