"""A saved model predicts the same wherever it is loaded, or plain loading refuses it loudly.

For every strategy (full, freeze:K, head, lora), pooling (mean, cls) and task (single-label,
multi-label, NER): a directory the standard classes compute exactly gives through
``transformers.pipeline`` what ``tunesmith predict --no-calibrate`` gives (same argmax,
probabilities within 1e-4); one they would compute wrongly (mean pooling, nearest-example
scores) makes ``AutoConfig``, ``AutoModelFor*`` and ``pipeline`` raise an error naming what to
do. The model card's snippet for using the model outside tunesmith runs as written.

Each case trains a tiny BERT once for the whole module (a few seconds each).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from tunesmith.engine.modeling import MARKER_SUFFIX

SUBJECTS = ["i", "we", "my wife", "my son", "the user", "a friend"]
INTENTS = {
    "card_lost": ["lost my card", "cannot find my card", "had my card stolen"],
    "refund": ["want a refund", "need my money back", "ask for a refund now"],
    "delivery": ["order is late", "delivery never came", "order did not arrive"],
}
_NER = [
    ("Maria works for Northwind in Madrid", "B-PER O O B-ORG O B-LOC"),
    ("John flew to Boston", "B-PER O O B-LOC"),
    ("Acme hired Paul in Paris", "B-ORG O B-PER O B-LOC"),
    ("Anna visited Globex in Berlin", "B-PER O B-ORG O B-LOC"),
]
#: Texts of several lengths, so that the pipeline's and tunesmith's batches pad differently.
TEXTS = [
    "i lost my card",
    "we want a refund please",
    "my son order is late and the delivery never came to me",
    "hello",
]
SENTENCES = ["Maria flew to Paris", "Paul works for Acme in Boston with Anna", "hello"]

#: case -> (train flags, data file key, what plain transformers should do)
CASES = {
    "full-cls-single": (["--strategy", "full", "--pooling", "cls"], "train", "plain"),
    # Few-shot data without held-out texts: the nearest-example share stays 0.5 (with held-out
    # texts a tiny model ties at 1, off); calibrated afterwards by `tunesmith calibrate`.
    "full-mean-single": (["--pooling", "mean"], "few-shot", "refused"),
    "freeze-cls-single": (["--strategy", "freeze:1", "--pooling", "cls"], "train", "plain"),
    "head-mean-single": (["--strategy", "head", "--pooling", "mean"], "train", "refused"),
    "lora-cls-single": (["--strategy", "lora", "--pooling", "cls"], "train", "plain"),
    "lora-mean-multi": (["--strategy", "lora", "--pooling", "mean"], "multi", "refused"),
    "head-cls-multi": (["--strategy", "head", "--pooling", "cls"], "multi", "plain"),
    "full-ner": (["--strategy", "full"], "ner", "plain"),
    "lora-ner": (["--strategy", "lora"], "ner", "plain"),
}
PLAIN = [name for name, case in CASES.items() if case[2] == "plain"]
REFUSED = [name for name, case in CASES.items() if case[2] == "refused"]


def _write_csv(path: Path, rows) -> Path:
    from tunesmith.testing import write_csv

    return write_csv(path, rows)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models train several times faster on one thread than on a busy shared CPU."""


@pytest.fixture(scope="module")
def runner():
    """``runner("predict", ...)``: the CLI in-process (a click Result)."""
    from typer.testing import CliRunner

    from tunesmith.cli import build_app

    invoke = CliRunner()
    return lambda *args: invoke.invoke(build_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny base model and training files (single-label, multi-label, CoNLL)."""
    from tunesmith.testing import make_tiny_base_model

    root = tmp_path_factory.mktemp("portable")
    rows = [(f"{s} {p}", label) for label, ps in INTENTS.items() for p in ps for s in SUBJECTS[:4]]
    held = [(f"{s} {p}", label) for label, ps in INTENTS.items() for p in ps for s in SUBJECTS[4:]]
    texts = [t for t, _ in rows] + [w for w, _ in _NER] + TEXTS + SENTENCES
    multi = [(t, f"{label}|urgent" if i % 2 else label) for i, (t, label) in enumerate(rows)]
    conll = "\n\n".join(
        "\n".join(f"{w}\t{t}" for w, t in zip(words.split(), tags.split(), strict=True))
        for words, tags in _NER * 6
    )
    (root / "ner.conll").write_text(conll + "\n", encoding="utf-8")
    return {
        "root": root,
        "base": make_tiny_base_model(root / "base", texts),
        "train": _write_csv(root / "train.csv", rows),
        "eval": _write_csv(root / "eval.csv", held),
        "multi": _write_csv(root / "multi.csv", multi),
        "ner": root / "ner.conll",
    }


@pytest.fixture(scope="module")
def trained(files, runner):
    """``trained(case)``: the model directory of ``case``, trained once per module."""
    done: dict[str, Path] = {}

    def train(case: str) -> Path:
        if case not in done:
            flags, data, _ = CASES[case]
            out = files["root"] / case
            extra = {
                "train": ["--eval", files["eval"]],
                "few-shot": [],
                "multi": ["--label-sep", "|", "--eval-fraction", "0.25"],
                "ner": ["--eval-fraction", "0.25"],
            }[data]
            source = files["train" if data == "few-shot" else data]
            result = runner(
                "train", "--data", source, "--model", files["base"], "--out", out,
                "--epochs", "2", "--lr", "0.01", "--batch-size", "8", *flags, *extra,
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            if data == "few-shot":
                result = runner("calibrate", "--model", out, "--data", files["eval"])
                assert result.exit_code == 0, result.output
            done[case] = out
        return done[case]

    return train


def _tunesmith_probabilities(runner, model: Path, texts: list[str], *calibrate: str):
    result = runner("predict", "--model", model, *[a for t in texts for a in ("--text", t)],
                    "--json", *calibrate)  # fmt: skip
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    labels = list(records[0]["probabilities"])
    return labels, np.array([[r["probabilities"][label] for label in labels] for r in records])


def _pipeline_probabilities(model: Path, texts: list[str], labels: list[str]) -> np.ndarray:
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(model), top_k=None)
    rows = classify(texts)
    return np.array([[{d["label"]: d["score"] for d in row}[label] for label in labels]
                     for row in rows])  # fmt: skip


@pytest.mark.parametrize("case", [c for c in PLAIN if CASES[c][1] != "ner"])
def test_plain_directory_gives_the_same_probabilities_through_pipeline(runner, trained, case):
    model = trained(case)
    config = json.loads((model / "config.json").read_text())
    assert config["model_type"] == "bert" and "tunesmith_base_model_type" not in config
    labels, ours = _tunesmith_probabilities(runner, model, TEXTS, "--no-calibrate")
    theirs = _pipeline_probabilities(model, TEXTS, labels)
    np.testing.assert_allclose(theirs, ours, atol=1e-4)
    assert (theirs.argmax(1) == ours.argmax(1)).all()
    if CASES[case][1] == "multi":  # the pipeline reads problem_type and applies a sigmoid
        assert config["problem_type"] == "multi_label_classification"
        assert not np.allclose(ours.sum(1), 1.0)


@pytest.mark.parametrize("case", [c for c in PLAIN if CASES[c][1] == "ner"])
def test_plain_tagger_gives_the_same_tags_and_scores_through_pipeline(runner, trained, case):
    from transformers import pipeline

    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_tags, split_words

    model = trained(case)
    result = runner("predict", "--model", model, *[a for t in SENTENCES for a in ("--text", t)],
                    "--json", "--no-calibrate")  # fmt: skip
    assert result.exit_code == 0, result.output
    tags = [record["tags"] for record in json.loads(result.stdout)]
    words = [[w for w, _, _ in split_words(s)] for s in SENTENCES]
    _, scores = predict_tags(load_model(model), words)
    tag = pipeline("token-classification", model=str(model), ignore_labels=[])
    # The tiny tokenizer has one token per word, so the pipeline's tokens are tunesmith's words.
    for sentence, want_tags, want_scores in zip(tag(SENTENCES), tags, scores, strict=True):
        assert [t["entity"] for t in sentence] == want_tags
        np.testing.assert_allclose([t["score"] for t in sentence], want_scores, atol=1e-4)


@pytest.mark.parametrize("case", REFUSED)
def test_mean_pooled_directory_is_refused_by_plain_transformers_with_what_to_do(trained, case):
    from transformers import AutoConfig, AutoModelForSequenceClassification, pipeline

    model = trained(case)
    config = json.loads((model / "config.json").read_text())
    assert config["tunesmith_base_model_type"] == "bert"
    assert config["model_type"].startswith("tunesmith_mean_pooling")
    assert config["model_type"].endswith("__load_with_tunesmith_or_export_to_onnx")
    loaders = [
        AutoConfig.from_pretrained,
        AutoModelForSequenceClassification.from_pretrained,
        lambda path: pipeline("text-classification", model=path),
    ]
    for load in loaders:
        with pytest.raises(ValueError, match=re.escape(config["model_type"])):
            load(str(model))


def test_nearest_example_scores_are_named_in_the_refusal(trained):
    config = json.loads((trained("full-mean-single") / "config.json").read_text())
    assert config["tunesmith_nearest"]["weight"] < 1
    assert config["model_type"] == ("tunesmith_mean_pooling_and_nearest_examples" + MARKER_SUFFIX)


def test_refused_directory_would_have_answered_differently_through_plain_transformers(
    runner, trained, tmp_path
):
    """Why refusing is right: unmarked, the same weights pool [CLS] and lose the scores."""
    model = trained("full-mean-single")
    labels, ours = _tunesmith_probabilities(runner, model, TEXTS, "--no-calibrate")
    copy = shutil.copytree(model, tmp_path / "unmarked")
    config = json.loads((copy / "config.json").read_text())
    config["model_type"] = config.pop("tunesmith_base_model_type")
    (copy / "config.json").write_text(json.dumps(config))
    theirs = _pipeline_probabilities(copy, TEXTS, labels)
    assert np.abs(theirs - ours).max() > 0.01


@pytest.mark.parametrize("case", ["full-mean-single", "lora-mean-multi"])
def test_directories_written_before_marking_still_load_with_the_same_logits(
    runner, trained, tmp_path, case
):
    model = trained(case)
    old = shutil.copytree(model, tmp_path / "old")
    config = json.loads((old / "config.json").read_text())
    config["model_type"] = config.pop("tunesmith_base_model_type")
    (old / "config.json").write_text(json.dumps(config))
    _, new_probs = _tunesmith_probabilities(runner, model, TEXTS)
    _, old_probs = _tunesmith_probabilities(runner, old, TEXTS)
    np.testing.assert_allclose(old_probs, new_probs, atol=1e-6)


def test_old_unmerged_lora_directory_still_loads(files, tmp_path):
    """The adapter layout tunesmith wrote before LoRA was merged on save."""
    import torch
    from transformers import AutoTokenizer

    from tunesmith.engine.loading import load_model
    from tunesmith.engine.modeling import ADAPTER_KEY, build_classifier
    from tunesmith.engine.strategies import wrap_lora

    torch.manual_seed(0)
    model = build_classifier(
        files["base"], task="classification", labels=list(INTENTS), pooling="mean",
        base_name=str(files["base"]),
    )  # fmt: skip
    peft_model = wrap_lora(model)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.2)  # an adapter that changes the outputs
    out = tmp_path / "old_lora"
    peft_model.save_pretrained(str(out))
    inner = peft_model.get_base_model()
    inner.config.update({ADAPTER_KEY: "lora"})
    inner.config.architectures = [type(inner).__name__]
    inner.config.save_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(files["base"])
    tokenizer.save_pretrained(str(out))
    assert (out / "adapter_model.safetensors").is_file()
    peft_model.eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        want = peft_model(**batch).logits
        got = load_model(out).model(**batch).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_lora_is_merged_into_plain_weights_on_save(trained):
    model = trained("lora-cls-single")
    assert (model / "model.safetensors").is_file()
    assert not (model / "adapter_config.json").exists()
    config = json.loads((model / "config.json").read_text())
    assert config["tunesmith_adapter"] == "lora-merged"


def _card_block(card: str, language: str) -> str:
    section = card.split("## Use outside tunesmith", 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block in the card's section:\n{section}"
    return match.group(1)


def test_card_snippet_of_a_plain_directory_runs_and_matches_tunesmith(runner, trained):
    model = trained("full-cls-single")
    snippet = _card_block((model / "README.md").read_text(), "python")
    assert "pipeline(" in snippet and str(model) in snippet
    scope: dict = {}
    exec(compile(snippet, "model card", "exec"), scope)
    texts = re.search(r"classify\((\[.*?\])", snippet).group(1)
    labels, ours = _tunesmith_probabilities(runner, model, eval(texts), "--no-calibrate")
    theirs = np.array([[{d["label"]: d["score"] for d in row}[x] for x in labels]
                       for row in scope["scores"]])  # fmt: skip
    np.testing.assert_allclose(theirs, ours, atol=1e-4)


def test_card_snippet_of_a_plain_directory_truncates_a_long_text_as_predict_does(runner, trained):
    # The snippet called classify(texts) untruncated: a text past the 128 tokens predict reads
    # failed in the position embeddings (and one past a --max-length got another answer).
    model = trained("full-cls-single")
    snippet = _card_block((model / "README.md").read_text(), "python")
    long_text = " ".join(TEXTS * 12)
    texts = re.search(r"classify\((\[.*?\])", snippet).group(1)
    scope: dict = {}
    exec(compile(snippet.replace(texts, repr([long_text, "hello"])), "model card", "exec"), scope)
    labels, ours = _tunesmith_probabilities(runner, model, [long_text, "hello"], "--no-calibrate")
    theirs = np.array([[{d["label"]: d["score"] for d in row}[x] for x in labels]
                       for row in scope["scores"]])  # fmt: skip
    np.testing.assert_allclose(theirs, ours, atol=1e-4)


def test_card_snippet_of_a_tagger_runs_and_finds_entities_as_groups(trained):
    snippet = _card_block((trained("full-ner") / "README.md").read_text(), "python")
    scope: dict = {}
    exec(compile(snippet, "model card", "exec"), scope)
    (entities,) = scope["entities"]
    assert all({"entity_group", "score", "word"} <= set(e) for e in entities)


def test_card_of_a_refused_directory_exports_onnx_that_matches_calibrated_tunesmith(
    runner, trained
):
    model = trained("full-mean-single")
    card = (model / "README.md").read_text()
    assert "refuse this directory" in card
    command = shlex.split(_card_block(card, "bash").strip())
    assert command[:2] == ["tunesmith", "export"]
    result = runner(*command[1:])
    assert result.exit_code == 0, result.output
    snippet = _card_block(card, "python")
    scope: dict = {}
    exec(compile(snippet, "model card", "exec"), scope)
    labels, ours = _tunesmith_probabilities(runner, model, scope["texts"])
    assert (model / "calibration.json").is_file()  # so the comparison includes the temperature
    assert scope["labels"] == labels
    np.testing.assert_allclose(scope["probabilities"], ours, atol=1e-4)
