"""Loading model directories and predicting with them: order, batching, int8, NER, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tunesmith.cli import build_app
from tunesmith.errors import ModelNotFoundError
from tunesmith.testing import write_csv

LABELS = ["card", "transfer", "refund"]
KEYWORDS = {"card": "card", "transfer": "transfer", "refund": "refund"}
TEXTS = [
    "my card is broken",
    "my card was lost yesterday and I need a new card",
    "card",
    "where is my new card please help",
    "transfer money to my account",
    "how do I transfer money",
    "the transfer is late",
    "a transfer to the bank did not arrive and I want to know why it is late",
    "refund please",
    "I want a refund for my order",
    "the refund is late",
    "can I get a refund for the broken app payment that was not good",
]
TRUE = [LABELS.index(next(k for k in KEYWORDS if k in t)) for t in TEXTS]


def train_tiny_classifier(directory: Path, *, steps: int = 80, multilabel: bool = False) -> Path:
    """A tiny classifier trained for a few full-batch steps so its predictions mean something."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunesmith.testing import make_tiny_classifier

    make_tiny_classifier(directory, LABELS, TEXTS, multilabel=multilabel)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    target = torch.tensor(TRUE)
    if multilabel:
        target = torch.nn.functional.one_hot(target, len(LABELS)).float()
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains fastest on one thread
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.eval()  # no dropout: a tiny model learns these twelve texts in fewer steps
    try:
        for _ in range(steps):
            output = model(**batch, labels=target)
            optimizer.zero_grad()
            output.loss.backward()
            optimizer.step()
            if multilabel:
                learned = bool(((output.logits > 0).float() == target).all())
            else:
                learned = bool((output.logits.argmax(-1) == target).all())
            if learned and output.loss.item() < 0.3:
                break
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny_classifier(tmp_path_factory.mktemp("models") / "clf")


@pytest.fixture(scope="module")
def loaded(trained):
    from tunesmith.engine.loading import load_model

    return load_model(trained)


def reference_logits(loaded, texts):
    """One text per forward pass, unpadded: the answer batching must reproduce."""
    import torch

    rows = []
    with torch.no_grad():
        for text in texts:
            rows.append(loaded.model(**loaded.tokenizer([text], return_tensors="pt")).logits[0])
    return torch.stack(rows).numpy()


def test_predict_logits_match_unbatched_forward_in_input_order(loaded):
    from tunesmith.engine.predict import predict_logits

    logits = predict_logits(loaded, TEXTS, batch_size=4)
    assert logits.shape == (len(TEXTS), len(LABELS))
    np.testing.assert_allclose(logits, reference_logits(loaded, TEXTS), atol=1e-4)


def test_parallel_streams_give_the_same_logits_in_input_order(loaded):
    from tunesmith.engine.predict import predict_logits

    one = predict_logits(loaded, TEXTS, batch_size=2, streams=1)
    for streams in (2, 3):
        got = predict_logits(loaded, TEXTS, batch_size=2, streams=streams)
        np.testing.assert_allclose(got, one, atol=1e-5)
    np.testing.assert_allclose(one, reference_logits(loaded, TEXTS), atol=1e-4)


def test_batches_are_length_sorted_and_padded_only_to_their_longest(loaded, monkeypatch):
    from tunesmith.engine import predict

    widths: list[int] = []
    real = predict.pad_rows

    def recording(tokenizer, rows, **options):
        batch = real(tokenizer, rows, **options)
        widths.append(batch["input_ids"].shape[1])
        lengths = [len(r["input_ids"]) for r in rows]
        assert max(lengths) == batch["input_ids"].shape[1]
        return batch

    monkeypatch.setattr(predict, "pad_rows", recording)
    predict.predict_logits(loaded, TEXTS, batch_size=3)
    assert len(widths) == 4
    assert widths == sorted(widths, reverse=True)
    assert widths[0] > widths[-1]


def test_the_trained_tiny_model_learned_the_keywords(loaded):
    from tunesmith.engine.predict import predict_texts

    results = predict_texts(loaded, TEXTS)
    assert [r["label"] for r in results] == [LABELS[i] for i in TRUE]


def test_predict_texts_gives_label_score_and_all_probabilities(loaded):
    from tunesmith.engine.predict import predict_texts

    [result] = predict_texts(loaded, ["transfer money please"], top_k=2)
    assert set(result["probabilities"]) == set(LABELS)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert result["score"] == max(result["probabilities"].values())
    assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)
    assert [t["label"] for t in result["top"]][0] == result["label"]
    assert len(result["top"]) == 2
    assert result["calibrated"] is False


def test_empty_input_gives_empty_output(loaded):
    from tunesmith.engine.predict import predict_logits, predict_texts

    assert predict_logits(loaded, []).shape == (0, 3)
    assert predict_texts(loaded, []) == []


def test_int8_predictions_mostly_agree_with_fp32(trained, loaded):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits

    quantized = load_model(trained, quantize="int8")
    assert quantized.quantized
    fp32 = predict_logits(loaded, TEXTS).argmax(axis=1)
    int8 = predict_logits(quantized, TEXTS).argmax(axis=1)
    assert np.mean(fp32 == int8) >= 0.9
    # The fp32 model itself is untouched by quantising a fresh copy.
    assert "Quantized" not in type(loaded.model.classifier).__name__


def test_model_dir_without_calibration_file_loads_with_no_temperature(trained, loaded):
    assert not (trained / "calibration.json").exists()
    assert loaded.temperature is None
    assert loaded.task == "classification"
    assert loaded.labels == LABELS


def test_missing_directory_raises_model_not_found(tmp_path):
    from tunesmith.engine.loading import load_model

    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model(tmp_path / "nothing-here")


def test_directory_without_model_files_raises_model_not_found(tmp_path):
    from tunesmith.engine.loading import load_model

    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelNotFoundError, match="not a model directory"):
        load_model(tmp_path)


def test_config_without_weights_is_not_a_trained_model(tmp_path):
    from tunesmith.engine.loading import load_model

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="no weights"):
        load_model(tmp_path)


def test_base_encoder_without_a_head_is_refused_not_given_a_random_head(tmp_path):
    from tunesmith.engine.loading import load_model
    from tunesmith.testing import make_tiny_base_model

    base = make_tiny_base_model(tmp_path / "base", TEXTS)
    with pytest.raises(ModelNotFoundError, match="is a base model"):
        load_model(base)


def test_multilabel_predictions_list_labels_above_one_half(tmp_path):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts

    loaded = load_model(train_tiny_classifier(tmp_path / "ml", multilabel=True))
    assert loaded.task == "multilabel"
    results = predict_texts(loaded, TEXTS)
    for result in results:
        above = sorted(k for k, p in result["probabilities"].items() if p > 0.5)
        assert sorted(result["labels"]) == above
        assert result["scores"] == sorted(result["scores"], reverse=True)
    assert sum(LABELS[i] in r["labels"] for r, i in zip(results, TRUE, strict=True)) >= 10


def test_mean_pooling_model_saved_by_the_trainer_reloads_with_the_same_logits(tmp_path):
    import torch

    from tunesmith.engine.loading import load_model
    from tunesmith.engine.modeling import enable_mean_pooling
    from tunesmith.engine.predict import predict_logits
    from tunesmith.testing import make_tiny_classifier

    directory = make_tiny_classifier(tmp_path / "pooled", LABELS, TEXTS)
    from transformers import AutoModelForSequenceClassification

    model = enable_mean_pooling(AutoModelForSequenceClassification.from_pretrained(directory))
    model.eval()
    model.save_pretrained(directory)
    loaded = load_model(directory)
    assert loaded.model.config.tunesmith_pooling == "mean"
    batch = loaded.tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).logits.numpy()
        cls_pooled = AutoModelForSequenceClassification.from_pretrained(directory)(**batch)
    got = predict_logits(loaded, TEXTS[:3])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert not np.allclose(got, cls_pooled.logits.numpy(), atol=1e-3)


def test_bare_peft_adapter_loads_on_its_base_with_the_trained_head(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits
    from tunesmith.testing import make_tiny_classifier

    base_dir = make_tiny_classifier(tmp_path / "base", LABELS, TEXTS)
    base = AutoModelForSequenceClassification.from_pretrained(base_dir)
    config = LoraConfig(
        task_type="SEQ_CLS", r=4, target_modules=["query", "value"], modules_to_save=["classifier"]
    )
    peft_model = get_peft_model(base, config)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                param.add_(torch.randn_like(param) * 0.5)
    peft_model.eval()
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    (adapter_dir / "run_config.json").write_text(json.dumps({"labels": LABELS}))
    assert not (adapter_dir / "config.json").exists()
    loaded = load_model(adapter_dir)
    assert loaded.labels == LABELS
    batch = loaded.tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = peft_model(**batch).logits.numpy()
    np.testing.assert_allclose(predict_logits(loaded, TEXTS[:2]), expected, atol=1e-4)


def test_decode_entities_reads_bio_and_io_spans():
    from tunesmith.engine.predict import decode_entities

    bio = ["B-PER", "I-PER", "O", "B-ORG", "B-ORG", "I-LOC"]
    assert decode_entities(bio, "BIO") == [
        ("PER", 0, 2),
        ("ORG", 3, 4),
        ("ORG", 4, 5),
        ("LOC", 5, 6),
    ]
    io = ["I-PER", "I-PER", "I-ORG", "O", "I-ORG"]
    assert decode_entities(io, "IO") == [("PER", 0, 2), ("ORG", 2, 3), ("ORG", 4, 5)]
    # A foreign model's untyped labels are outside; other prefixes continue like I-.
    odd = ["LABEL_0", "I-PER", "E-PER", "S-ORG", "B-", "B-LOC", "O", "I-LOC"]
    assert decode_entities(odd, "BIO") == [
        ("PER", 1, 3),
        ("ORG", 3, 4),
        ("LOC", 5, 6),
        ("LOC", 7, 8),
    ]
    assert decode_entities(["B-LOC", "B-LOC"], "IO") == [("LOC", 0, 2)]


def test_ner_predictions_give_entities_with_word_and_character_spans(tmp_path):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import decode_entities, predict_texts
    from tunesmith.testing import make_tiny_tagger

    tags = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    loaded = load_model(make_tiny_tagger(tmp_path / "tagger", tags, ["John Smith works at Acme"]))
    assert loaded.task == "ner"
    text = "John Smith works at Acme, in London."
    [result] = predict_texts(loaded, [text])
    assert result["words"] == ["John", "Smith", "works", "at", "Acme", ",", "in", "London", "."]
    assert len(result["tags"]) == len(result["words"])
    spans = decode_entities(result["tags"], "BIO")
    assert [(e["type"], e["word_start"], e["word_end"]) for e in result["entities"]] == spans
    for entity in result["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert 0.0 < entity["score"] <= 1.0


def test_thread_count_follows_tunesmith_threads(monkeypatch):
    import torch

    from tunesmith.engine import threads

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_configured", None)
    monkeypatch.setenv("TUNESMITH_THREADS", "1")
    try:
        assert threads.configure_threads() == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert threads.physical_cores() >= 1


def test_openmp_waits_passively_only_when_other_work_keeps_the_cores_busy():
    from tunesmith.engine.threads import machine_is_busy

    assert machine_is_busy(3.5, 2)
    assert machine_is_busy(1.0, 2)
    assert not machine_is_busy(0.3, 2)
    assert not machine_is_busy(3.0, 16)


def test_busy_share_is_the_cpu_time_others_used_over_the_interval(monkeypatch):
    import psutil

    from tunesmith.engine import threads

    asked: list[float] = []
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval: asked.append(interval) or 37.5)
    assert threads.busy_share_now(interval=0.05) == 0.375
    assert asked == [0.05]  # measured over the interval now, not the minute-long load average


@pytest.mark.parametrize(("share", "policy"), [(0.0, ""), (0.9, "PASSIVE")])
def test_wait_policy_follows_cpu_use_now_even_when_the_load_average_is_stale(
    monkeypatch, share, policy
):
    import sys

    from tunesmith.engine import threads

    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as before torch is imported
    # Empty counts as unset for tunesmith, and monkeypatch restores the variable afterwards.
    monkeypatch.setenv("OMP_WAIT_POLICY", "")
    monkeypatch.setattr(threads, "busy_share_now", lambda: share)
    monkeypatch.setattr(threads, "physical_cores", lambda: 2)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.7, 1.6, 1.5))  # a job just ended
    threads._choose_wait_policy()
    assert threads.os.environ.get("OMP_WAIT_POLICY") == policy


def test_busy_share_now_reads_this_machine():
    from tunesmith.engine import threads

    share = threads.busy_share_now(interval=0.05)
    if share is None:
        pytest.skip("no /proc/stat here")
    assert 0.0 <= share <= 1.0


def test_predict_command_prints_json_lines_in_file_order(trained, tmp_path):
    path = write_csv(tmp_path / "in.csv", [(t, "") for t in TEXTS])
    result = CliRunner().invoke(
        build_app(), ["predict", "--model", str(trained), "--data", str(path), "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["text"] for line in lines] == TEXTS
    assert [line["label"] for line in lines] == [LABELS[i] for i in TRUE]


def test_predict_command_with_one_text_prints_one_json_object(trained):
    result = CliRunner().invoke(
        build_app(),
        ["predict", "--model", str(trained), "--text", "refund please", "--json", "--top-k", "1"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["label"] == "refund"
    assert doc["top"][0]["label"] == "refund"


def test_predict_command_table_shows_label_and_score(trained):
    result = CliRunner().invoke(
        build_app(),
        ["predict", "--model", str(trained), "--text", "refund please", "--text", "my card"],
    )
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["text", "label", "score"]
    assert lines[1][-2] == "refund" and lines[2][-2] == "card"
    assert 0.0 < float(lines[1][-1]) <= 1.0


def test_predict_command_needs_data_or_text(trained):
    result = CliRunner().invoke(build_app(), ["predict", "--model", str(trained)])
    assert result.exit_code == 2
    # Neither was given: "(not both)" would answer a mistake the user did not make.
    assert "pass --data FILE or --text TEXT: the texts to label" in result.stderr
    both = CliRunner().invoke(
        build_app(), ["predict", "--model", str(trained), "--data", "x.csv", "--text", "hi"]
    )
    assert both.exit_code == 2 and "(not both)" in both.stderr


def test_predict_command_on_a_missing_model_is_one_error_line(tmp_path):
    result = CliRunner().invoke(
        build_app(), ["predict", "--model", str(tmp_path / "gone"), "--text", "hi"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "does not exist" in result.stderr


def test_rows_are_padded_on_the_right_by_the_tokenizer_or_with_id_0_without_a_pad_token(
    tmp_path,
):
    from tunesmith.engine.padding import pad_rows
    from tunesmith.testing import make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer(tmp_path / "tok", ["my card is lost", "refund"])
    tokenizer.padding_side = "left"  # ignored: tunesmith models are trained padded on the right
    rows = [{"input_ids": [2, 5, 3]}, {"input_ids": [2, 5, 6, 7, 3]}]
    padded = pad_rows(tokenizer, rows, attention_mask=True)
    pad = tokenizer.pad_token_id
    assert padded["input_ids"].tolist() == [[2, 5, 3, pad, pad], [2, 5, 6, 7, 3]]
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    tokenizer.pad_token = None
    rows = [
        {"input_ids": [2, 5, 3], "attention_mask": [1, 1, 1]},
        {"input_ids": [2, 5, 6, 3], "attention_mask": [1, 1, 1, 1]},
    ]
    padded = pad_rows(tokenizer, rows)
    assert padded["input_ids"].tolist() == [[2, 5, 3, 0], [2, 5, 6, 3]]
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]


def test_a_model_with_nan_weights_is_refused_in_one_line_not_scored_nan(tmp_path, cli):
    """Weights a diverged run saved as NaN gave `predict` a `nan` score, `predict --json` and
    `evaluate` a traceback; loading now names the directory and the weight."""
    from safetensors.torch import load_file, save_file

    from tunesmith.testing import make_tiny_classifier

    directory = make_tiny_classifier(tmp_path / "model", LABELS, TEXTS)
    weights = load_file(directory / "model.safetensors")
    name = next(k for k in weights if k.startswith("classifier."))
    weights[name].view(-1)[0] = float("nan")
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    for args in (["predict", "--text", "my card", "--json"], ["predict", "--text", "my card"]):
        result = cli(args[0], "--model", str(directory), *args[1:])
        assert result.exit_code == 2, result.output
        assert result.stdout == "" and result.stderr.count("\n") == 1
        assert str(directory) in result.stderr and f"{name} holds NaN" in result.stderr
