"""``tunesmith export --format onnx``: the ONNX file computes what tunesmith computes.

Tiny models are built in-process with random weights (exactness needs no training): a
mean-pooling classifier with nearest-example scores and a temperature, a multi-label ``[CLS]``
classifier with one temperature per label, and a tagger. onnxruntime's outputs must match
tunesmith's logits and (calibrated) probabilities within 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

LABELS = ["card_lost", "refund", "delivery"]
TAGS = ["O", "B-PER", "I-PER", "B-LOC"]
TEXTS = [
    "i lost my card",
    "we want a refund please now",
    "my order is late and the delivery never came to me at all",
    "hello",
    "card",
]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from tunesmith.testing import make_tiny_base_model

    root = tmp_path_factory.mktemp("export_base")
    return make_tiny_base_model(root / "base", TEXTS + ["maria flew to paris"])


def _save(model, base: Path, out: Path, calibration: dict | None = None) -> Path:
    from transformers import AutoTokenizer

    from tunesmith.engine.calibration import save_calibration
    from tunesmith.engine.modeling import save_classifier

    save_classifier(model, out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    if calibration is not None:
        save_calibration(out, calibration)
    return out


def _built(base: Path, out: Path, *, task: str, labels: list[str], pooling: str = "cls"):
    import torch

    from tunesmith.engine.modeling import build_classifier

    torch.manual_seed(0)
    model = build_classifier(base, task=task, labels=labels, pooling=pooling)
    with torch.no_grad():  # a head far from uniform, so that differences would show
        model.classifier.weight.normal_(0.0, 1.0)
    return model.eval()


@pytest.fixture(scope="module")
def mean_nearest_dir(base, tmp_path_factory):
    """Mean pooling, nearest-example scores at share 0.5, temperature 1.7."""
    import torch

    from tunesmith.engine import nearest as nx

    out = tmp_path_factory.mktemp("mean_nearest") / "model"
    model = _built(base, out, task="classification", labels=LABELS, pooling="mean")
    keys = torch.randn(9, model.config.hidden_size)
    memory = nx.NearestExamples(keys, torch.tensor([0, 1, 2] * 3), 3, 0.5, nx.TEMPERATURE)
    nx.attach(model, memory)
    return _save(model, base, out, {"temperature": 1.7})


@pytest.fixture(scope="module")
def multilabel_dir(base, tmp_path_factory):
    out = tmp_path_factory.mktemp("multilabel") / "model"
    model = _built(base, out, task="multilabel", labels=LABELS + ["urgent"])
    return _save(model, base, out, {"temperatures": [0.8, 1.2, 1.5, 2.0]})


@pytest.fixture(scope="module")
def tagger_dir(base, tmp_path_factory):
    out = tmp_path_factory.mktemp("tagger") / "model"
    return _save(_built(base, out, task="ner", labels=TAGS), base, out)


@pytest.fixture(scope="module")
def exported(mean_nearest_dir, multilabel_dir, tagger_dir):
    """Each model exported once through the command; ``exported[name]`` is (dir, onnx, report)."""
    from typer.testing import CliRunner

    from tunesmith.cli import build_app

    done = {}
    for name, model in [("mean", mean_nearest_dir), ("multi", multilabel_dir),
                        ("ner", tagger_dir)]:  # fmt: skip
        out = model.parent / f"{name}.onnx"
        args = ["export", "--model", str(model), "--format", "onnx", "--out", str(out), "--json"]
        result = CliRunner().invoke(build_app(), args)
        assert result.exit_code == 0, result.output
        done[name] = (model, out, json.loads(result.stdout))
    return done


def _session(path: Path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(session, tokenizer, texts, **kwargs):
    batch = tokenizer(texts, padding=True, return_tensors="np", **kwargs)
    feeds = {name: batch[name] for name in ("input_ids", "attention_mask")}
    return session.run(["logits", "probabilities"], feeds), batch


@pytest.mark.parametrize("name", ["mean", "multi"])
def test_onnx_logits_and_calibrated_probabilities_match_tunesmith(exported, name):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits, predict_texts

    model, onnx_file, _ = exported[name]
    loaded = load_model(model)
    session = _session(onnx_file)
    want_logits = predict_logits(loaded, TEXTS)
    want_probs = [list(r["probabilities"].values()) for r in predict_texts(loaded, TEXTS)]
    # One padded batch, and every text alone (no padding): both must match.
    (logits, probs), _ = _run(session, loaded.tokenizer, TEXTS)
    np.testing.assert_allclose(logits, want_logits, atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(probs, want_probs, atol=1e-4)
    for i, text in enumerate(TEXTS):
        (alone, _), _ = _run(session, loaded.tokenizer, [text])
        np.testing.assert_allclose(alone[0], want_logits[i], atol=1e-4, rtol=1e-5)


def test_onnx_of_a_mean_pooled_model_with_nearest_scores_differs_from_its_bare_cls_head(
    exported,
):
    """The file really holds the pooling and the scores: the stock head answers otherwise."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from tunesmith.engine.modeling import read_config

    model, onnx_file, report = exported["mean"]
    assert any("mean pooling" in x for x in report["includes"])
    assert any("nearest-example" in x for x in report["includes"])
    tokenizer = AutoTokenizer.from_pretrained(model)
    (logits, _), batch = _run(_session(onnx_file), tokenizer, TEXTS)
    stock = BertForSequenceClassification.from_pretrained(model, config=read_config(model)).eval()
    with torch.inference_mode():
        cls_probs = torch.softmax(stock(**{k: torch.from_numpy(v) for k, v in batch.items()})
                                  .logits, -1).numpy()  # fmt: skip
    onnx_probs = np.exp(logits)  # the mixture's logits are log-probabilities
    np.testing.assert_allclose(onnx_probs.sum(-1), 1.0, atol=1e-5)
    assert np.abs(onnx_probs - cls_probs).max() > 0.01


def test_onnx_of_nearest_scores_runs_without_onnxruntime_shape_warnings(exported, capfd):
    """The tracer's wrong shapes inside the scatter's If branches made every run warn."""
    import onnxruntime

    from tunesmith.engine.loading import load_model

    model, onnx_file, _ = exported["mean"]
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 2  # warnings, onnxruntime's default
    session = onnxruntime.InferenceSession(
        str(onnx_file), options, providers=["CPUExecutionProvider"]
    )
    capfd.readouterr()
    tokenizer = load_model(model).tokenizer
    for texts in (TEXTS, TEXTS[:1], TEXTS * 5):
        _run(session, tokenizer, texts)
    assert "VerifyOutputSizes" not in capfd.readouterr().err


def test_onnx_tagger_matches_tunesmith_word_logits(exported):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_word_logits

    model, onnx_file, report = exported["ner"]
    loaded = load_model(model)
    sentences = [["maria", "flew", "to", "paris"], ["hello"]]
    want = predict_word_logits(loaded, sentences)
    (logits, probs), batch = _run(_session(onnx_file), loaded.tokenizer, sentences,
                                  is_split_into_words=True)  # fmt: skip
    for i, words in enumerate(sentences):
        # The tiny tokenizer has one token per word: positions 1..n after [CLS].
        np.testing.assert_allclose(logits[i, 1 : len(words) + 1], want[i], atol=1e-4)
        np.testing.assert_allclose(probs[i].sum(-1), 1.0, atol=1e-5)
    assert any("word alignment" in x for x in report["leaves_out"])
    assert report["temperature"] is None


def test_onnx_metadata_names_labels_task_temperature_and_what_is_left_out(exported):
    _, onnx_file, report = exported["multi"]
    meta = _session(onnx_file).get_modelmeta().custom_metadata_map
    assert json.loads(meta["labels"]) == LABELS + ["urgent"]
    assert meta["task"] == "multilabel"
    assert json.loads(meta["temperature"]) == [0.8, 1.2, 1.5, 2.0]
    assert json.loads(meta["leaves_out"]) == report["leaves_out"]
    assert any("int8" in x for x in report["leaves_out"])
    assert report["max_difference"]["probabilities"] <= 1e-4


def test_export_of_a_seed_ensemble_says_the_graph_is_its_first_member_alone(
    cli, exported, tmp_path
):
    """Ensemble scoring averages every member; the file holds one, and its report says so."""
    import shutil

    model, _, single = exported["multi"]
    assert not any("member" in x for x in single["leaves_out"])
    ensemble = tmp_path / "ensemble"
    shutil.copytree(model, ensemble)
    shutil.copytree(model, ensemble / "members" / "seed43")
    (ensemble / "ensemble.json").write_text(json.dumps({"members": ["members/seed43"]}))
    out = tmp_path / "ensemble.onnx"
    result = cli("export", "--model", str(ensemble), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    noted = [x for x in report["leaves_out"] if "ensemble" in x]
    assert len(noted) == 1 and "other 1 member" in noted[0] and "first member" in noted[0]
    meta = _session(out).get_modelmeta().custom_metadata_map
    assert json.loads(meta["leaves_out"]) == report["leaves_out"]


def test_existing_output_is_refused_without_force_and_replaced_with_it(cli, exported):
    model, onnx_file, _ = exported["multi"]
    target = onnx_file.with_name("again.onnx")
    target.write_bytes(b"keep")
    result = cli("export", "--model", str(model), "--out", str(target))
    assert result.exit_code == 2 and "--force" in result.output
    assert target.read_bytes() == b"keep"
    result = cli("export", "--model", str(model), "--out", str(target), "--force")
    assert result.exit_code == 0, result.output
    assert "checked with onnxruntime" in result.output and "left to the caller" in result.output
    assert _session(target).get_outputs()[1].name == "probabilities"
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def test_unknown_format_and_missing_model_are_one_line_errors(cli, tmp_path):
    result = cli("export", "--model", str(tmp_path), "--format", "tflite")
    assert result.exit_code == 2 and "'tflite' is not supported" in result.output
    result = cli("export", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "m.onnx"))
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_missing_onnxruntime_says_which_extra_to_install(cli, exported, monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "onnxruntime" else real(n, *a)
    )
    model, _, _ = exported["multi"]
    result = cli("export", "--model", str(model), "--out", str(tmp_path / "m.onnx"))
    assert result.exit_code == 2 and "tunesmith[export]" in result.output


def test_export_that_does_not_match_writes_nothing(exported, monkeypatch, tmp_path):
    from tunesmith.engine import export_onnx as module
    from tunesmith.errors import TunesmithError

    monkeypatch.setattr(module, "TOLERANCE", -1.0)  # any difference at all counts as too large
    model, _, _ = exported["multi"]
    with pytest.raises(TunesmithError, match="nothing was written"):
        module.export_onnx(model, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_help_names_the_extra_to_install(cli, monkeypatch):
    # Rich read "[export]" as markup and printed "pip install 'tunesmith'"
    monkeypatch.setenv("COLUMNS", "200")
    result = cli("export", "--help")
    assert result.exit_code == 0
    assert "pip install 'tunesmith[export]'" in result.output


def test_export_to_a_folder_says_it_is_a_folder_not_to_pass_force(tmp_path):
    # "exists already; pass --force" was the advice, and --force cannot make a folder a file
    from tunesmith.engine.export_onnx import export_onnx
    from tunesmith.errors import UserInputError

    with pytest.raises(UserInputError, match="is a directory; --out names the .onnx file"):
        export_onnx(tmp_path / "no-model", tmp_path)


@pytest.mark.parametrize("own_file", ["config.json", "model.safetensors", "members/seed43/x.bin"])
def test_force_never_replaces_a_file_of_the_model_directory(cli, exported, tmp_path, own_file):
    # `--out DIR/config.json --force` wrote the ONNX graph over the model's config: gone.
    import shutil

    model = shutil.copytree(exported["multi"][0], tmp_path / "model")
    target = model / own_file
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.write_bytes(b"keep")
    before = target.read_bytes()
    result = cli("export", "--model", str(model), "--out", str(target), "--force")
    assert result.exit_code == 2, result.output
    assert "inside the model directory" in result.output and "*.onnx" in result.output
    assert target.read_bytes() == before
    inside = model / "exports" / "model.onnx"  # an .onnx file inside is the intended use
    result = cli("export", "--model", str(model), "--out", str(inside))
    assert result.exit_code == 0, result.output


def test_export_under_a_file_names_that_file(cli, exported, tmp_path):
    # Was "[Errno 17] File exists: ...", after the model had been loaded
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    result = cli("export", "--model", str(exported["multi"][0]), "--out", str(blocker / "m.onnx"))
    assert result.exit_code == 2
    assert f"{blocker} is a file, not a folder" in result.output


def test_truncation_left_to_the_caller_names_the_models_max_length(cli, exported, tmp_path):
    """Tokenising as the export says gives predict's probabilities for a text longer than the
    model reads; `truncation=True` alone cut at the tokenizer's 128, not the 8 trained with."""
    import shutil

    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts

    model = shutil.copytree(exported["multi"][0], tmp_path / "model")
    (model / "run_config.json").write_text(json.dumps({"task": "multilabel", "max_length": 8}))
    out = tmp_path / "m.onnx"
    result = cli("export", "--model", str(model), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    said = [x for x in report["leaves_out"] if "truncation" in x]
    assert said == ["truncation to 8 tokens (tokenize with truncation=True, max_length=8)"]
    long_text = " ".join(TEXTS)
    loaded = load_model(model)
    want = list(predict_texts(loaded, [long_text])[0]["probabilities"].values())
    (_, probs), _ = _run(_session(out), loaded.tokenizer, [long_text], truncation=True,
                         max_length=8)  # fmt: skip
    np.testing.assert_allclose(probs[0], want, atol=1e-4)
    (_, untruncated), _ = _run(_session(out), loaded.tokenizer, [long_text], truncation=True)
    assert np.abs(untruncated[0] - want).max() > 3e-4  # why the number must be said


def test_export_into_a_read_only_model_folder_names_the_onnx_file_not_its_temporary(
    cli, exported, tmp_path, monkeypatch
):
    # A model shipped read-only (a Docker image): `export` without --out said
    # "Read-only file system: '.../.model.onnx.1234-abcd1234.tmp'".
    import errno
    import shutil
    import tempfile

    model = shutil.copytree(exported["multi"][0], tmp_path / "model")
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == model:
            raise OSError(errno.EROFS, "Read-only file system", f"{dir}/.model.onnx.1-x.tmp")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = cli("export", "--model", str(model), "--format", "onnx")
    assert result.exit_code == 1
    assert f"'{model / 'model.onnx'}'" in result.output and ".tmp" not in result.output
