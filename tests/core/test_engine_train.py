"""``tunesmith train``: strategies, saving, resume, the frozen-feature cache, tasks and errors.

Every run uses a tiny BERT built in-process and a few dozen examples, so each trains in seconds.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tunesmith import hookimpl

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
NER_SENTENCES = [(words.split(" "), tags.split(" ")) for words, tags in _NER]


def _rows() -> list[tuple[str, str]]:
    return [
        (f"{subject} {phrase}", label)
        for label, phrases in INTENTS.items()
        for phrase in phrases
        for subject in SUBJECTS[:4]
    ]


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def _write_conll(path: Path, sentences) -> Path:
    blocks = [
        "\n".join(f"{w}\t{t}" for w, t in zip(words, tags, strict=True))
        for words, tags in sentences
    ]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny base model and small training files shared by the module's tests."""
    from tunesmith.testing import make_tiny_base_model

    root = tmp_path_factory.mktemp("engine_train")
    rows = _rows()
    texts = [t for t, _ in rows] + [" ".join(w) for w, _ in NER_SENTENCES]
    base = make_tiny_base_model(root / "base", texts)
    eval_rows = [
        (f"{s} {p}", label) for label, ps in INTENTS.items() for p in ps for s in SUBJECTS[4:]
    ]
    multi = [(t, f"{label}|urgent" if i % 2 else label) for i, (t, label) in enumerate(rows)]
    return {
        "base": base,
        "train": _write_csv(root / "train.csv", rows),
        "eval": _write_csv(root / "eval.csv", eval_rows),
        "multi": _write_csv(root / "multi.csv", multi),
        "ner": _write_conll(root / "ner.conll", NER_SENTENCES * 6),
    }


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models train several times faster on one thread than on a busy shared CPU."""


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_CACHE_DIR", str(tmp_path / "cache"))


def _train(cli, files, out: Path, *extra: str):
    return cli(
        "train", "--data", str(files["train"]), "--model", str(files["base"]), "--out", str(out),
        "--epochs", "2", "--lr", "0.01", "--batch-size", "8", *extra,
    )  # fmt: skip


def _logits(model_dir: Path, texts: list[str]):
    import torch
    from transformers import AutoTokenizer

    from tunesmith.engine.modeling import load_classifier

    model = load_classifier(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.inference_mode():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).logits


PROBE_TEXTS = ["i lost my card", "we want a refund", "my son order is late"]


def _assert_complete_model_dir(out: Path, strategy: str) -> None:
    names = ["config.json", "run_config.json", "metrics.json", "cleaning_report.json",
             "README.md", "calibration.json", "confusion_matrix.png", "tokenizer.json"]  # fmt: skip
    names.append("model.safetensors")  # LoRA too: the adapter is merged into it on save
    for name in names:
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert sorted(config["id2label"].values()) == sorted(INTENTS)
    run = json.loads((out / "run_config.json").read_text())
    assert run["strategy"] == strategy and run["resolved"]["n_eval"] == 18
    card = (out / "README.md").read_text()
    assert strategy in card and "CC BY 4.0" in card and "train.csv" in card
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["report"]["accuracy"] <= 1.0
    assert metrics["calibration"]["ece_bins"] == 15
    assert not out.with_name(out.name + ".work").exists()  # removed once training succeeds
    assert _logits(out, PROBE_TEXTS).shape == (3, 3)
    _assert_int8_ranges_cover_every_linear_layer(out)


def _assert_int8_ranges_cover_every_linear_layer(out: Path) -> None:
    import torch

    from tunesmith.engine.loading import load_model
    from tunesmith.engine.quantize import read_int8_ranges

    ranges = read_int8_ranges(out)
    model = load_model(out).model
    linears = {name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert linears and set(ranges) == linears
    assert all(low < high for low, high in ranges.values())


@pytest.mark.parametrize("strategy", ["freeze:1", "head"])
def test_each_strategy_trains_and_saves_a_complete_model_directory(cli, files, tmp_path, strategy):
    out = tmp_path / "model"
    result = _train(cli, files, out, "--strategy", strategy, "--eval", str(files["eval"]),
                    "--data-license", "CC BY 4.0")  # fmt: skip
    assert result.exit_code == 0, result.output
    _assert_complete_model_dir(out, strategy)


def test_full_fine_tuning_learns_the_training_data(cli, files, tmp_path):
    out = tmp_path / "model"
    result = _train(cli, files, out, "--epochs", "6", "--eval", str(files["eval"]), "--json",
                    "--data-license", "CC BY 4.0")  # fmt: skip
    assert result.exit_code == 0, result.output
    _assert_complete_model_dir(out, "full")
    summary = json.loads(result.stdout)
    assert summary["metrics"]["report"]["accuracy"] >= 0.8
    predicted = _logits(out, PROBE_TEXTS).argmax(-1).tolist()
    labels = json.loads((out / "config.json").read_text())["id2label"]
    assert [labels[str(i)] for i in predicted] == ["card_lost", "refund", "delivery"]


def test_saved_directory_loads_in_plain_transformers_with_every_weight(cli, files, tmp_path):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "model"
    assert _train(cli, files, out, "--epochs", "1", "--tensorboard").exit_code == 0
    model, info = AutoModelForSequenceClassification.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.config.id2label[0] in INTENTS
    assert any((out / "runs").rglob("events.out.tfevents.*"))  # --tensorboard logs kept


def test_mean_pooling_is_recorded_in_config_and_honoured_on_reload(cli, files, tmp_path):
    import torch
    from transformers import AutoTokenizer

    from tunesmith.engine.modeling import load_classifier, mean_pool

    out = tmp_path / "model"
    args = ("--pooling", "mean", "--epochs", "1", "--nearest", "off")
    assert _train(cli, files, out, *args).exit_code == 0
    assert json.loads((out / "config.json").read_text())["tunesmith_pooling"] == "mean"
    assert not (out / "nearest_examples.safetensors").exists()
    model = load_classifier(out)
    batch = AutoTokenizer.from_pretrained(out)(PROBE_TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model.bert(**batch).last_hidden_state
        expected = model.classifier(mean_pool(hidden, batch["attention_mask"]))
        assert torch.allclose(model(**batch).logits, expected, atol=1e-6)


def test_held_out_metrics_read_long_texts_as_predict_does_and_the_card_says_that_length(
    cli, files, tmp_path
):
    from tunesmith.engine.evaluate import evaluate_model, load_eval_dataset
    from tunesmith.engine.loading import load_model

    # Training cuts its texts at the data's 99th percentile (8 tokens here); predict reads up to
    # the model's limit. A long held-out text measured cut short gave metrics.json and the
    # temperature of inputs predict never sees.
    long_text = "i lost my card and " * 8 + "my son order is late"
    rows = [(f"{s} {p}", label) for label, ps in INTENTS.items() for p in ps for s in SUBJECTS[4:]]
    held = _write_csv(tmp_path / "held.csv", [*rows, (long_text, "card_lost")])
    out = tmp_path / "model"
    extra = ("--eval", str(held), "--pooling", "mean", "--nearest", "off", "--epochs", "1")
    assert _train(cli, files, out, *extra).exit_code == 0
    loaded = load_model(out)
    measured = json.loads((out / "metrics.json").read_text())["report"]
    report = evaluate_model(loaded, load_eval_dataset(loaded, held))
    assert measured["nll"] == report["nll"] and measured["ece"] == report["ece"]
    resolved = json.loads((out / "run_config.json").read_text())["resolved"]
    assert resolved["max_length"] < resolved["predict_max_length"] == loaded.max_length
    assert f"max_length={loaded.max_length}," in (out / "README.md").read_text()


def test_few_shot_model_mixes_nearest_example_scores_into_its_reloaded_logits(cli, files, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from tunesmith.engine.modeling import load_classifier, mean_pool
    from tunesmith.engine.nearest import FEW_SHOT_WEIGHT, TEMPERATURE

    out = tmp_path / "model"
    assert _train(cli, files, out, "--epochs", "1", "--pooling", "mean").exit_code == 0
    resolved = json.loads((out / "run_config.json").read_text())["resolved"]
    assert resolved["nearest"]["weight"] == FEW_SHOT_WEIGHT
    config = json.loads((out / "config.json").read_text())["tunesmith_nearest"]
    assert config["examples"] == resolved["n_train"] == 39  # 36 rows and 3 label names
    assert "Nearest-example scores" in (out / "README.md").read_text()
    saved = load_file(str(out / "nearest_examples.safetensors"))
    model = load_classifier(out)
    batch = AutoTokenizer.from_pretrained(out)(PROBE_TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        pooled = mean_pool(model.bert(**batch).last_hidden_state, batch["attention_mask"])
        head = torch.softmax(model.classifier(pooled), -1)
        sims = torch.nn.functional.normalize(pooled, dim=-1) @ saved["keys"].T
        best = torch.stack(
            [sims[:, saved["labels"] == c].max(-1).values for c in range(head.shape[1])], -1
        )
        near = torch.softmax(best / TEMPERATURE, -1)
        expected = torch.log(FEW_SHOT_WEIGHT * head + (1 - FEW_SHOT_WEIGHT) * near)
        assert torch.allclose(model(**batch).logits, expected, atol=1e-5)
        assert not torch.allclose(torch.log_softmax(model.classifier(pooled), -1), expected)

    (out / "nearest_examples.safetensors").unlink()
    broken = cli("predict", "--model", str(out), "--text", "i lost my card")
    assert broken.exit_code == 2
    assert "nearest_examples.safetensors: missing" in broken.stderr.strip().splitlines()[-1]


def test_nearest_share_is_chosen_on_held_out_data_from_the_grid(cli, files, tmp_path):
    from tunesmith.engine.nearest import WEIGHT_GRID

    out = tmp_path / "model"
    args = ("--eval", str(files["eval"]), "--nearest", "on", "--pooling", "mean")
    result = _train(cli, files, out, *args)
    assert result.exit_code == 0, result.output
    nearest = json.loads((out / "run_config.json").read_text())["resolved"]["nearest"]
    assert nearest["source"] == "held-out score"
    assert [float(w) for w in nearest["scores"]] == list(WEIGHT_GRID)
    assert nearest["scores"][f"{nearest['weight']:g}"] == max(nearest["scores"].values())
    # A separate --eval file is the user's to measure with: it never joins the stored examples.
    assert "held_out_added" not in nearest


def test_held_out_split_carved_from_training_data_joins_the_nearest_examples(
    cli, files, tmp_path, monkeypatch
):
    from safetensors.torch import load_file

    from tunesmith.engine import nearest

    monkeypatch.setattr(nearest, "WEIGHT_GRID", (0.5,))  # so the scores are surely kept
    out = tmp_path / "model"
    args = ("--eval-fraction", "0.25", "--nearest", "on", "--pooling", "mean")
    result = _train(cli, files, out, *args)
    assert result.exit_code == 0, result.output
    resolved = json.loads((out / "run_config.json").read_text())["resolved"]
    held = resolved["nearest"]["held_out_added"]
    assert held == resolved["n_eval"] == 9 and resolved["n_train"] == 27 + 3  # 3 label names
    saved = load_file(str(out / "nearest_examples.safetensors"))
    config = json.loads((out / "config.json").read_text())["tunesmith_nearest"]
    assert saved["keys"].shape[0] == config["examples"] == resolved["n_train"] + held
    assert "held-out texts joined the stored examples" in (out / "README.md").read_text()


def _write_texts(path: Path, texts: list[str], column: str = "text") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([column])
        writer.writerows([t] for t in texts)
    return path


def test_unlabelled_texts_are_pseudo_labelled_and_join_the_nearest_examples(cli, files, tmp_path):
    from safetensors.torch import load_file

    texts = [f"{s} {p}" for ps in INTENTS.values() for p in ps for s in SUBJECTS[4:]]
    pool = _write_texts(tmp_path / "pool.csv", texts)
    out = tmp_path / "model"
    # Every top probability of 3 labels is at least 1/3, so 0.3 keeps every text: a known count.
    args = ("--epochs", "1", "--pooling", "mean", "--unlabelled", str(pool))
    result = _train(cli, files, out, *args, "--pseudo-threshold", "0.3")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run_config.json").read_text())["resolved"]["self_training"]
    assert record["file"] == "pool.csv" and record["unlabelled_texts"] == len(texts) == 18
    assert [r["pseudo_labelled"] for r in record["rounds"]] == [18, 18] and record["kept"]
    assert record["seconds"] >= 0
    config = json.loads((out / "config.json").read_text())["tunesmith_nearest"]
    assert config["examples"] == 39 + 18  # 36 rows, 3 label names, 18 pseudo-labelled texts
    assert load_file(str(out / "nearest_examples.safetensors"))["keys"].shape[0] == 57
    assert "Self-training:** 18 unlabelled texts from pool.csv" in (out / "README.md").read_text()
    assert cli("predict", "--model", str(out), "--text", "i lost my card").exit_code == 0


def test_unlabelled_with_a_token_file_is_refused_in_one_line(cli, files, tmp_path):
    result = cli(
        "train", "--data", str(files["ner"]), "--model", str(files["base"]),
        "--out", str(tmp_path / "model"), "--unlabelled", str(files["train"]),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "single-label" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "model").exists()


def test_self_training_that_lowers_held_out_accuracy_is_undone(cli, files, tmp_path, monkeypatch):
    from tunesmith.engine import self_training

    calls = iter([1.0, 0.5])  # held-out accuracy before, then after self-training
    real = self_training.self_train

    def worse(*args, score=None, **kwargs):
        return real(*args, score=lambda: next(calls), **kwargs)

    monkeypatch.setattr(self_training, "self_train", worse)
    pool = _write_texts(tmp_path / "pool.csv", ["i lost my card", "we want a refund"])
    out, plain = tmp_path / "model", tmp_path / "plain"
    extra = ("--eval", str(files["eval"]), "--pooling", "mean", "--nearest", "on")
    assert _train(cli, files, out, *extra, "--unlabelled", str(pool)).exit_code == 0
    assert _train(cli, files, plain, *extra).exit_code == 0
    record = json.loads((out / "run_config.json").read_text())["resolved"]["self_training"]
    assert record["kept"] is False and record["held_out_accuracy"] == {"before": 1.0, "after": 0.5}
    assert "undone" in (out / "README.md").read_text()
    import torch

    assert torch.equal(_logits(out, PROBE_TEXTS), _logits(plain, PROBE_TEXTS))


def test_self_train_pseudo_labels_confident_texts_and_refits_the_head():
    import torch

    from tunesmith.engine.nearest import NearestExamples
    from tunesmith.engine.self_training import self_train

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.classifier = torch.nn.Linear(2, 2)
            self.config = type("Config", (), {"num_labels": 2})()

    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    pool_y = torch.arange(200) % 2
    pool = centres[pool_y] + 0.8 * torch.randn(200, 2, generator=generator)
    train_x, train_y = centres.clone(), torch.tensor([0, 1])
    model = Tiny()
    with torch.no_grad():  # a head that leans towards label 0
        model.classifier.weight.copy_(torch.tensor([[1.0, 0.2], [0.0, 1.0]]))
        model.classifier.bias.copy_(torch.tensor([3.0, 0.0]))
    memory = NearestExamples(train_x, train_y, 2, weight=0.5, temperature=0.05)

    def accuracy() -> float:  # of the head alone: the refit is what should improve it
        with torch.inference_mode():
            return float((model.classifier(pool).argmax(-1) == pool_y).float().mean())

    before = accuracy()
    assert before < 0.8
    record = self_train(model, memory, train_x, train_y.tolist(), pool, threshold=0.9, rounds=2)
    kept = record["rounds"][-1]["pseudo_labelled"]
    assert 0 < kept < 200 and record["kept"]
    assert memory.keys.shape[0] == 2 + kept and memory.labels[:2].tolist() == [0, 1]
    assert accuracy() > 0.95

    capped = Tiny()
    small = NearestExamples(train_x, train_y, 2, weight=0.5, temperature=0.05)
    record = self_train(capped, small, train_x, [0, 1], pool, threshold=0.6, rounds=1, max_memory=5)
    assert record["rounds"][0]["joined_memory"] == 5 and small.keys.shape[0] == 2 + 5
    assert record["rounds"][0]["pseudo_labelled"] > 5  # the head still learns from them all

    untouched = Tiny()
    none = self_train(untouched, None, train_x, [0, 1], pool[:0], threshold=0.9, rounds=1)
    assert none["rounds"] == [{"round": 1, "pseudo_labelled": 0}] and none["kept"] is False


def test_lora_model_saved_merged_reloads_with_identical_logits(cli, files, tmp_path, monkeypatch):
    import numpy as np

    from tunesmith.engine.stages import calibrate

    seen = {}
    original = calibrate.run

    def spy(state):
        seen["logits"] = np.asarray(state.held_logits)
        seen["texts"] = state.prepared.held.texts
        return original(state)

    monkeypatch.setattr(calibrate, "run", spy)
    out = tmp_path / "model"
    result = _train(cli, files, out, "--strategy", "lora", "--eval", str(files["eval"]),
                    "--data-license", "CC BY 4.0")  # fmt: skip
    assert result.exit_code == 0, result.output
    _assert_complete_model_dir(out, "lora")
    assert not (out / "adapter_config.json").exists()  # merged: the trained head included
    reloaded = _logits(out, seen["texts"]).numpy()
    np.testing.assert_allclose(reloaded, seen["logits"], atol=1e-5)


@pytest.mark.parametrize("strategy", ["head", "freeze:1"])
def test_feature_cache_gives_the_same_model_as_training_without_it(cli, files, tmp_path, strategy):
    cached, plain = tmp_path / "cached", tmp_path / "plain"
    common = ("--strategy", strategy, "--pooling", "mean", "--eval", str(files["eval"]))
    assert _train(cli, files, cached, *common).exit_code == 0
    assert _train(cli, files, plain, *common, "--no-feature-cache").exit_code == 0
    assert json.loads((cached / "run_config.json").read_text())["resolved"]["feature_cache"]
    assert not json.loads((plain / "run_config.json").read_text())["resolved"]["feature_cache"]
    diff = (_logits(cached, PROBE_TEXTS) - _logits(plain, PROBE_TEXTS)).abs().max()
    assert float(diff) < 1e-4
    # A second run with the same model, data and settings reads the cache instead of computing.
    again = tmp_path / "again"
    assert _train(cli, files, again, *common).exit_code == 0
    hits = json.loads((again / "run_config.json").read_text())["resolved"]["feature_cache_hits"]
    assert hits and all(hits)


class _StopAfter:
    """A plugin whose callback presses Ctrl-C after ``steps`` steps."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.runs = []

    @hookimpl
    def tunesmith_train_callbacks(self, run):
        from transformers import TrainerCallback

        self.runs.append(run)
        steps = self.steps

        class Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step >= steps:
                    raise KeyboardInterrupt

        return [Stop()]


def test_hook_tunesmith_train_callbacks_interrupted_run_resumes_to_the_end(
    cli, files, tmp_path, register_plugin
):
    plugin = _StopAfter(steps=5)
    register_plugin(plugin, "stop-after")
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("old model")
    (out / "config.json").write_text("{}")  # a model folder: what --force may replace
    args = ("--save-steps", "2", "--eval", str(files["eval"]), "--epochs", "3", "--force")
    args += ("--early-stopping", "0")  # the step count below is exact only without it
    result = _train(cli, files, out, *args)
    assert result.exit_code == 130
    assert "--resume" in result.stderr
    assert plugin.runs and plugin.runs[0].strategy == "full"  # the hook got the RunConfig
    assert (out / "keep.txt").read_text() == "old model"  # an interrupted run touches nothing
    assert (tmp_path / "model.work" / "checkpoints" / "checkpoint-4").is_dir()

    plugin.steps = 10_000
    resumed = _train(cli, files, out, *args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "continuing from" in resumed.stderr and "checkpoint-4" in resumed.stderr
    run = json.loads((out / "run_config.json").read_text())
    # 36 examples and 3 label names, batch 8: 5 steps an epoch
    assert run["resolved"]["global_steps"] == 3 * 5
    assert not (out / "keep.txt").exists()
    assert not (tmp_path / "model.work").exists()


def test_interrupted_run_needs_resume_or_force_and_the_same_settings(
    cli, files, tmp_path, register_plugin
):
    plugin = _StopAfter(steps=2)  # after step 1's checkpoint: there is something to resume
    register_plugin(plugin, "stop-after-two")
    out = tmp_path / "model"
    assert _train(cli, files, out, "--save-steps", "1").exit_code == 130
    refused = _train(cli, files, out, "--save-steps", "1")
    assert refused.exit_code == 2 and "--resume" in refused.stderr
    result = _train(cli, files, out, "--save-steps", "1", "--resume", "--seed", "7")
    assert result.exit_code == 2
    assert "--seed" in result.stderr


def test_resume_refuses_a_data_file_edited_since_the_interrupted_run(
    cli, files, tmp_path, register_plugin
):
    """A new label made the checkpoint's head the wrong size (a traceback); new rows with the
    old labels would have mixed two data sets silently."""
    plugin = _StopAfter(steps=2)
    register_plugin(plugin, "stop-after-two-edited")
    data = tmp_path / "train.csv"
    data.write_bytes(files["train"].read_bytes())
    out = tmp_path / "model"
    args = ("train", "--data", str(data), "--model", str(files["base"]), "--out", str(out),
            "--epochs", "2", "--lr", "0.01", "--batch-size", "8", "--save-steps", "1")  # fmt: skip
    assert cli(*args).exit_code == 130
    with data.open("a", encoding="utf-8") as handle:
        handle.writelines(f"what is my balance {i},balance\n" for i in range(6))
    plugin.steps = 10_000
    result = cli(*args, "--resume")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: --resume: the content of --data changed")
    assert "--force" in result.stderr and "Traceback" not in result.output
    assert not out.exists() and (tmp_path / "model.work").is_dir()


def test_existing_output_is_refused_without_force_and_left_untouched(cli, files, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    result = _train(cli, files, out)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and "--force" in result.stderr
    assert (out / "keep.txt").read_text() == "old"
    assert not (tmp_path / "model.work").exists()


def test_multilabel_trains_and_fits_one_temperature_per_label(cli, files, tmp_path):
    out = tmp_path / "model"
    result = cli(
        "train", "--data", str(files["multi"]), "--label-sep", "|", "--model", str(files["base"]),
        "--out", str(out), "--epochs", "2", "--lr", "0.01", "--eval-fraction", "0.25",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert sorted(config["id2label"].values()) == sorted([*INTENTS, "urgent"])
    calibration = json.loads((out / "calibration.json").read_text())
    assert len(calibration["temperatures"]) == 4
    report = json.loads((out / "metrics.json").read_text())["report"]
    assert "micro_f1" in report


def test_ner_trains_and_reports_entity_f1_per_type(cli, files, tmp_path):
    out = tmp_path / "tagger"
    result = cli(
        "train", "--data", str(files["ner"]), "--model", str(files["base"]), "--out", str(out),
        "--epochs", "3", "--lr", "0.01", "--eval-fraction", "0.25",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"]
    assert {"B-PER", "B-ORG", "B-LOC", "O"} <= set(config["id2label"].values())
    report = json.loads((out / "metrics.json").read_text())["report"]
    assert report["task"] == "ner" and set(report["per_type"]) == {"PER", "ORG", "LOC"}
    assert not (out / "calibration.json").exists()
    _assert_int8_ranges_cover_every_linear_layer(out)


def test_few_shot_data_trains_on_everything_with_contrastive_loss_and_says_so(cli, files, tmp_path):
    out = tmp_path / "model"
    result = _train(cli, files, out, "--epochs", "1", "--pooling", "mean")
    assert result.exit_code == 0
    assert "no held-out data, so nothing was measured" in result.stdout
    assert "--eval FILE or --eval-fraction 0.1" in result.stdout
    assert "on no held-out data" not in result.stdout
    run = json.loads((out / "run_config.json").read_text())["resolved"]
    # 36 rows plus the 3 label names ("card lost", "refund", "delivery") as examples.
    assert run["few_shot"] and run["n_eval"] == 0 and run["n_train"] == 39
    assert run["n_label_examples"] == 3
    assert run["contrastive"] == 1.0 and run["head_init"] == "probe"
    assert run["nearest"]["weight"] == 0.5
    card = (out / "README.md").read_text()
    assert "Few-shot defaults" in card and "contrastive" in card and "nearest" in card
    assert "Label names as examples:** 3" in card
    assert json.loads((out / "metrics.json").read_text())["report"] is None


def test_label_examples_off_trains_on_the_rows_alone_and_on_adds_them_to_larger_data(
    cli, files, tmp_path
):
    off = tmp_path / "off"
    assert _train(cli, files, off, "--epochs", "1", "--label-examples", "off").exit_code == 0
    resolved = json.loads((off / "run_config.json").read_text())["resolved"]
    assert resolved["n_train"] == 36 and resolved["n_label_examples"] == 0
    # 144 rows (48 per label) are not few-shot: "on" adds the names anyway, to train only.
    larger = _write_csv(tmp_path / "larger.csv", _rows() * 4)
    on = tmp_path / "on"
    result = cli(
        "train", "--data", str(larger), "--model", str(files["base"]), "--out", str(on),
        "--epochs", "1", "--label-examples", "on",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    resolved = json.loads((on / "run_config.json").read_text())["resolved"]
    assert not resolved["few_shot"] and resolved["n_label_examples"] == 3
    assert resolved["n_train"] + resolved["n_eval"] == 144 + 3


def test_few_shot_full_fine_tune_is_blended_with_its_start_at_the_default_weight(
    cli, files, tmp_path
):
    from tunesmith.engine.wise import FEW_SHOT_WEIGHT

    out = tmp_path / "model"
    assert _train(cli, files, out, "--epochs", "1", "--pooling", "mean").exit_code == 0
    run = json.loads((out / "run_config.json").read_text())["resolved"]
    assert run["wise_ft"]["weight"] == FEW_SHOT_WEIGHT and "few-shot" in run["wise_ft"]["source"]
    assert "WiSE-FT" in (out / "README.md").read_text()


def test_wise_ft_weight_is_chosen_on_held_out_data_from_the_grid(cli, files, tmp_path):
    from tunesmith.engine.wise import WEIGHT_GRID

    out = tmp_path / "model"
    result = _train(cli, files, out, "--eval", str(files["eval"]), "--pooling", "mean")
    assert result.exit_code == 0, result.output
    wise = json.loads((out / "run_config.json").read_text())["resolved"]["wise_ft"]
    assert wise["source"] == "held-out score"
    assert [float(w) for w in wise["scores"]] == list(WEIGHT_GRID)
    best = max(wise["scores"].values())
    assert wise["scores"][f"{wise['weight']:g}"] == best
    # Ties go to the larger weight, the one closest to plain fine-tuning.
    assert all(float(w) <= wise["weight"] for w, v in wise["scores"].items() if v == best)


def test_wise_ft_zero_gives_back_the_pretrained_encoder_with_the_probed_head(cli, files, tmp_path):
    import torch
    from transformers import AutoModel

    out = tmp_path / "model"
    assert _train(cli, files, out, "--pooling", "mean", "--wise-ft", "0").exit_code == 0
    from tunesmith.engine.modeling import load_classifier

    tuned = load_classifier(out)
    base = AutoModel.from_pretrained(files["base"])
    encoder = getattr(tuned, tuned.base_model_prefix).state_dict()
    for name, value in base.state_dict().items():
        if value.is_floating_point() and name in encoder:
            assert torch.allclose(encoder[name], value, atol=1e-6), name
    resolved = json.loads((out / "run_config.json").read_text())["resolved"]
    assert resolved["wise_ft"] == {"weight": 0.0, "source": "--wise-ft"}


def test_wise_ft_one_and_other_strategies_keep_the_fine_tuned_weights(cli, files, tmp_path):
    from tunesmith.engine.wise import blend, choose_weight

    out = tmp_path / "model"
    assert _train(cli, files, out, "--wise-ft", "1").exit_code == 0
    assert json.loads((out / "run_config.json").read_text())["resolved"]["wise_ft"] == {
        "weight": 1.0,
        "source": "off",
    }
    assert choose_weight(lambda w: 1.0, (0.5, 1.0)) == (1.0, {0.5: 1.0, 1.0: 1.0})
    import torch

    layer = torch.nn.Linear(2, 2)
    start = {k: torch.zeros_like(v) for k, v in layer.state_dict().items()}
    tuned = {k: torch.ones_like(v) for k, v in layer.state_dict().items()}
    blend(layer, start, tuned, 0.25)
    assert torch.allclose(layer.weight, torch.full((2, 2), 0.25))


def test_clean_and_class_weights_and_augment_are_applied(cli, files, tmp_path):
    rows = [*_rows(), ("i  lost my card", "card_lost"), (_rows()[0][0], "card_lost")]
    data = _write_csv(tmp_path / "dirty.csv", rows)
    out = tmp_path / "model"
    result = cli(
        "train", "--data", str(data), "--model", str(files["base"]), "--out", str(out),
        "--epochs", "1", "--clean", "--class-weights", "auto", "--augment", "token_edits",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    fixes = json.loads((out / "cleaning_report.json").read_text())["fixes_applied"]
    assert fixes["duplicates_dropped"] >= 1
    resolved = json.loads((out / "run_config.json").read_text())["resolved"]
    assert resolved["n_augmented"] > 0
    dropped = fixes["duplicates_dropped"] + fixes["conflicts_dropped"]
    added = resolved["n_augmented"] + resolved["n_label_examples"]
    assert resolved["n_train"] == len(rows) - dropped + added


def test_clean_that_drops_every_conflicting_row_says_so_in_one_line(cli, files, tmp_path):
    rows = [(text, label) for text, _ in _rows()[:6] for label in ("card_lost", "refund")]
    data = _write_csv(tmp_path / "conflicts.csv", rows)
    result = cli(
        "train", "--data", str(data), "--model", str(files["base"]),
        "--out", str(tmp_path / "model"), "--clean",
    )  # fmt: skip
    assert result.exit_code == 2
    message = result.output.strip().splitlines()[-1]
    assert message.startswith("Error: ") and "conflicts.csv" in message
    assert "--clean dropped every row (12 rows whose text appears with different labels)" in message
    assert "only one label ('none')" not in result.output


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--strategy", "freeze"), "--strategy"),
        (("--epochs", "0"), "--epochs"),
        (("--class-weights", "balanced"), "--class-weights"),
        (("--label-col", "intent"), "intent"),
        (("--model", "/no/such/model"), "/no/such/model"),
        (("--augment", "no_such_augmenter"), "no_such_augmenter"),
        (("--wise-ft", "1.5"), "--wise-ft"),
        (("--label-examples", "maybe"), "--label-examples"),
        (("--nearest", "maybe"), "--nearest"),
        (("--unlabelled", "/no/such/pool.csv"), "/no/such/pool.csv"),
        (("--unlabelled", "TRAIN", "--pseudo-threshold", "0"), "--pseudo-threshold"),
        (("--unlabelled", "TRAIN", "--pseudo-rounds", "0"), "--pseudo-rounds"),
        (("--unlabelled", "TRAIN", "--strategy", "lora"), "--strategy lora"),
        (("--unlabelled", "TRAIN", "--label-sep", "|"), "single-label"),
        (("--unlabelled", "TRAIN", "--text-col", "body"), "body"),
    ],
)
def test_bad_input_exits_2_with_one_error_line(cli, files, tmp_path, extra, needle):
    extra = tuple(str(files["train"]) if arg == "TRAIN" else arg for arg in extra)
    result = _train(cli, files, tmp_path / "model", *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and needle in lines[-1]
    assert "Traceback" not in result.output
    assert not (tmp_path / "model").exists() and not (tmp_path / "model.work").exists()


def test_eval_file_with_an_unseen_label_names_file_row_and_column(cli, files, tmp_path):
    bad = _write_csv(tmp_path / "eval.csv", [("i lost my card", "card_lost"), ("hi", "greeting")])
    result = _train(cli, files, tmp_path / "model", "--eval", str(bad))
    assert result.exit_code == 2
    assert "eval.csv:3" in result.stderr and "greeting" in result.stderr


def test_run_config_round_trips_through_its_dict():
    from tunesmith.engine.config import RunConfig

    run = RunConfig(data="x.csv", strategy="freeze:3", augment=["token_edits"], epochs=2.5)
    again = RunConfig.from_dict(json.loads(json.dumps(run.to_dict())) | {"unknown": 1})
    assert again == run and again.freeze_layers == 3 and again.strategy_kind == "freeze"


def test_max_length_comes_from_the_data_within_the_model_limit():
    from tunesmith.engine.trainer_utils import choose_max_length

    lengths = [10] * 98 + [40, 900]
    assert choose_max_length(lengths, 512, None) == 40
    assert choose_max_length([600] * 10, 512, None) == 512
    assert choose_max_length(lengths, 512, 24) == 24


def test_auto_class_weights_are_inverse_frequency_and_capped():
    from tunesmith.engine.trainer_utils import class_weights

    weights = class_weights([0, 0, 0, 1], 2, "classification")
    assert weights == pytest.approx([4 / 6, 2.0])
    assert class_weights([0] * 100 + [1], 2, "classification")[1] == 10.0


def test_paired_order_puts_same_label_pairs_in_every_batch():
    import random

    from tunesmith.engine.trainer_utils import paired_order

    labels = [i % 7 for i in range(70)]
    lengths = [5 + (i * 13) % 40 for i in range(70)]
    order = paired_order(labels, lengths, 8, random.Random(0))
    assert sorted(order) == list(range(70))
    for start in range(0, 70, 8):
        batch = [labels[i] for i in order[start : start + 8]]
        assert any(batch.count(label) > 1 for label in batch)


def test_supervised_contrastive_loss_is_lower_when_same_labels_cluster():
    import torch

    from tunesmith.engine.trainer_utils import supervised_contrastive_loss

    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    assert supervised_contrastive_loss(clustered, labels) < supervised_contrastive_loss(
        mixed, labels
    )


def test_label_smoothing_raises_the_loss_of_a_confident_right_answer_by_the_smoothed_target():
    import torch

    from tunesmith.engine.modeling import sequence_loss

    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    labels = torch.tensor([0, 1])
    plain = sequence_loss(logits, labels, "single_label_classification")
    smoothed = sequence_loss(logits, labels, "single_label_classification", None, 0.3)
    log_probs = torch.log_softmax(logits, dim=-1)
    target = torch.full((2, 3), 0.1)
    target[0, 0] = target[1, 1] = 0.8
    assert smoothed > plain
    assert float(smoothed) == pytest.approx(float(-(target * log_probs).sum(-1).mean()), abs=1e-6)


def test_label_smoothing_outside_zero_to_one_is_a_one_line_error(files):
    from tunesmith.engine.config import RunConfig
    from tunesmith.errors import UserInputError

    with pytest.raises(UserInputError, match="--label-smoothing 1.0"):
        RunConfig(data=str(files["train"]), label_smoothing=1.0).validate()


def test_label_smoothing_trains_a_softer_model_and_is_recorded(cli, files, tmp_path):
    import torch

    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts

    runs = {}
    for smoothing in ("0", "0.4"):
        out = tmp_path / f"ls{smoothing}"
        result = _train(
            cli, files, out, "--epochs", "6", "--eval", str(files["eval"]),
            "--label-smoothing", smoothing, "--no-calibrate", "--nearest", "off",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        runs[smoothing] = out
    config = json.loads((runs["0.4"] / "run_config.json").read_text())
    assert config["label_smoothing"] == 0.4
    assert "learning-rate decay:** 0.4 / 1" in (runs["0.4"] / "README.md").read_text()
    texts = [t for t, _ in _rows()]
    top = {
        s: torch.tensor(
            [max(r["probabilities"].values()) for r in predict_texts(load_model(d), texts)]
        )
        for s, d in runs.items()
    }
    # Smoothing keeps 0.4 of the target off the true label: the model stays less sure.
    assert float(top["0.4"].mean()) < float(top["0"].mean())


def test_every_train_option_reaches_the_run_config_by_its_field_name():
    import dataclasses
    import inspect

    from tunesmith.commands import engine
    from tunesmith.engine.config import RunConfig

    params = inspect.signature(engine.train_command).parameters
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    pairs_only = {"pair_col", "negative_col", "as_json"}  # --task pairs and output, not RunConfig
    unmatched = [p for p in params if p not in fields | set(engine._RENAMED_OPTIONS) | pairs_only]
    assert unmatched == []
    options = {name: p.default.default for name, p in params.items()}
    options |= {"data": Path("train.csv"), "out": Path("m"), "no_calibrate": True, "lr": 0.5}
    options |= {"augment": ["a,b"], "batch_size": None, "no_feature_cache": True}
    run = engine._run_config(options)
    assert (run.data, run.out, run.lr, run.augment) == ("train.csv", "m", 0.5, ["a", "b"])
    assert run.calibrate is False and run.feature_cache is False and run.batch_size == 16


def test_unknown_augmenter_is_refused_before_the_cleaning_report(cli, files, tmp_path):
    result = _train(cli, files, tmp_path / "model", "--augment", "no_such_augmenter")
    assert result.exit_code == 2
    assert "unknown augmenter 'no_such_augmenter'" in result.stderr
    assert "Cleaning report" not in result.stderr


def test_early_stopping_says_when_training_stopped_early(cli, files, tmp_path):
    out = tmp_path / "model"
    args = ("--eval", str(files["eval"]), "--epochs", "12", "--early-stopping", "1")
    result = _train(cli, files, out, *args)
    assert result.exit_code == 0, result.output
    resolved = json.loads((out / "run_config.json").read_text())["resolved"]
    assert resolved["epochs_run"] < 12  # the tiny data is learnt long before 12 epochs
    assert f"stopped early after {resolved['epochs_run']:g} of 12 epochs" in result.stderr


def test_mean_weights_is_the_elementwise_mean_and_keeps_each_dtype():
    import torch

    from tunesmith.engine.averaging import mean_weights

    a = {"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([1.0], dtype=torch.float16)}
    b = {"w": torch.tensor([3.0, 6.0]), "h": torch.tensor([3.0], dtype=torch.float16)}
    mean = mean_weights([a, b])
    assert mean["w"].tolist() == [2.0, 4.0] and mean["h"].dtype == torch.float16
    assert mean["h"].tolist() == [2.0]


def test_average_epochs_compares_the_mean_with_the_trained_weights_on_held_out_data(
    cli, files, tmp_path
):
    out = tmp_path / "avg"
    result = _train(cli, files, out, "--epochs", "4", "--eval", str(files["eval"]),
                    "--average-epochs", "3", "--nearest", "off")  # fmt: skip
    assert result.exit_code == 0, result.output
    average = json.loads((out / "run_config.json").read_text())["resolved"]["average"]
    assert average["epochs"] == 3 and average["source"] == "held-out score"
    scores = average["scores"]
    assert average["kept"] == (scores["average"] >= scores["trained"])
    assert "Epoch averaging:** the last 3 epochs' weights" in (out / "README.md").read_text()


def test_average_epochs_without_held_out_data_uses_the_mean_of_the_last_epochs(
    cli, files, tmp_path
):
    import torch

    from tunesmith.engine.averaging import mean_weights

    runs = {}
    for flag in ("0", "2"):
        out = tmp_path / f"avg{flag}"
        result = _train(cli, files, out, "--epochs", "3", "--eval-fraction", "0",
                        "--average-epochs", flag, "--nearest", "off", "--wise-ft", "1",
                        "--no-calibrate")  # fmt: skip
        assert result.exit_code == 0, result.output
        runs[flag] = out
    resolved = json.loads((runs["2"] / "run_config.json").read_text())["resolved"]
    assert resolved["average"] == {"epochs": 2, "kept": True, "source": "no held-out data"}
    # Same seed, same batches: the averaged run's weights differ from the plain run's last ones.
    from safetensors.torch import load_file

    plain = load_file(runs["0"] / "model.safetensors")
    averaged = load_file(runs["2"] / "model.safetensors")
    assert any(not torch.equal(plain[k], averaged[k]) for k in plain)
    assert (
        mean_weights([plain, plain])["classifier.weight"].shape == plain["classifier.weight"].shape
    )


def test_average_epochs_of_one_or_with_a_frozen_strategy_is_a_one_line_error(files):
    from tunesmith.engine.config import RunConfig
    from tunesmith.errors import UserInputError

    with pytest.raises(UserInputError, match="--average-epochs 1"):
        RunConfig(data=str(files["train"]), average_epochs=1).validate()
    with pytest.raises(UserInputError, match="needs --strategy full"):
        RunConfig(data=str(files["train"]), average_epochs=2, strategy="head").validate()


def test_layer_decay_groups_give_lower_layers_smaller_learning_rates():
    import torch

    from tunesmith.engine.trainer_utils import layer_decay_groups

    names = [
        "bert.embeddings.word_embeddings.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.0.attention.self.query.bias",
        "bert.encoder.layer.1.output.dense.weight",
        "classifier.weight",
    ]
    params = [(n, torch.nn.Parameter(torch.zeros(2))) for n in names]
    decaying = set(names) - {names[2]}  # the bias takes no weight decay
    groups = layer_decay_groups(params, decaying, lr=1.0, weight_decay=0.01, decay=0.5)
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    by_name = {n: lr_of[id(p)] for n, p in params}
    assert by_name[names[4]] == (1.0, 0.01)  # the head at lr
    assert by_name[names[3]] == (0.5, 0.01)  # the top layer, one step down
    assert by_name[names[1]] == (0.25, 0.01) and by_name[names[2]] == (0.25, 0.0)
    assert by_name[names[0]] == (0.125, 0.01)  # the embeddings, below layer 0


def test_layer_decay_trains_and_is_recorded_and_out_of_range_is_an_error(cli, files, tmp_path):
    from tunesmith.engine.config import RunConfig
    from tunesmith.errors import UserInputError

    out = tmp_path / "llrd"
    result = _train(cli, files, out, "--layer-decay", "0.8")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "run_config.json").read_text())["layer_decay"] == 0.8
    assert "learning-rate decay:** 0 / 0.8" in (out / "README.md").read_text()
    with pytest.raises(UserInputError, match="--layer-decay 1.5"):
        RunConfig(data=str(files["train"]), layer_decay=1.5).validate()


def test_the_trainer_builds_its_optimizer_with_layer_decay_groups(files, tmp_path):
    from transformers import AutoModelForSequenceClassification, TrainingArguments

    from tunesmith.engine.trainer_utils import make_trainer_class

    model = AutoModelForSequenceClassification.from_pretrained(str(files["base"]), num_labels=3)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=0.1, report_to="none")
    trainer = make_trainer_class()(model=model, args=args, task="classification", layer_decay=0.5)
    rates = sorted({group["lr"] for group in trainer.create_optimizer().param_groups})
    layers = model.config.num_hidden_layers
    assert rates == pytest.approx([0.1 * 0.5**k for k in range(layers + 1, -1, -1)])


def test_a_base_model_folder_naming_its_own_code_is_refused_never_run(
    cli, files, tmp_path, custom_code_model
):
    directory, ran = custom_code_model
    result = cli(
        "train", "--data", str(files["train"]), "--model", str(directory),
        "--out", str(tmp_path / "out"), "--strategy", "head", "--epochs", "1",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert not ran.exists()
    assert "Error: " in result.stderr and "could not be loaded as a base model" in result.stderr
    assert "custom code" in result.stderr


def test_rdrop_regulariser_is_a_quarter_of_both_kl_divergences_and_zero_for_equal_passes():
    import torch

    from tunesmith.engine.trainer_utils import symmetric_kl

    first = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    second = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    p, q = torch.softmax(first, -1), torch.softmax(second, -1)
    kl_pq = (p * (p / q).log()).sum(-1).mean()
    kl_qp = (q * (q / p).log()).sum(-1).mean()
    # The paper's (a/2)(KL(p||q) + KL(q||p)) beside CE1 + CE2, halved with the two cross-entropies.
    assert float(symmetric_kl(first, second)) == pytest.approx(float(kl_pq + kl_qp) / 4, rel=1e-6)
    assert float(symmetric_kl(first, first)) == pytest.approx(0.0, abs=1e-7)


def test_rdrop_doubles_only_per_example_tensors_of_the_batch():
    import torch

    from tunesmith.engine.trainer_utils import doubled_rows

    ids = torch.tensor([[1, 2], [3, 4], [5, 6]])
    assert doubled_rows(ids, 3).tolist() == [[1, 2], [3, 4], [5, 6], [1, 2], [3, 4], [5, 6]]
    assert doubled_rows(torch.tensor(7), 3).tolist() == 7
    assert doubled_rows(torch.zeros(2, 5), 3).shape == (2, 5)
    assert doubled_rows("keep", 3) == "keep"


def test_negative_rdrop_weight_is_a_one_line_error(files):
    from tunesmith.engine.config import RunConfig
    from tunesmith.errors import UserInputError

    with pytest.raises(UserInputError, match="--rdrop -1"):
        RunConfig(data=str(files["train"]), rdrop=-1.0).validate()


def test_rdrop_trains_another_model_than_without_it_and_is_recorded(cli, files, tmp_path):
    import torch

    texts = [t for t, _ in _rows()]
    runs = {}
    for weight in ("0", "1"):
        out = tmp_path / f"rdrop{weight}"
        result = _train(cli, files, out, "--rdrop", weight, "--no-calibrate", "--nearest", "off")
        assert result.exit_code == 0, result.output
        runs[weight] = _logits(out, texts)
    config = json.loads((tmp_path / "rdrop1" / "run_config.json").read_text())
    assert config["rdrop"] == 1.0
    assert "R-Drop weight:** 1" in (tmp_path / "rdrop1" / "README.md").read_text()
    # The KL term pulls the two dropout passes together, so the weights move otherwise.
    assert not torch.allclose(runs["0"], runs["1"], atol=1e-6)


def test_rdrop_on_multilabel_data_is_switched_off_with_a_note(cli, files, tmp_path):
    result = cli(
        "train", "--data", str(files["multi"]), "--label-sep", "|", "--model", str(files["base"]),
        "--out", str(tmp_path / "m"), "--epochs", "1", "--lr", "0.01", "--rdrop", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    notes = json.loads((tmp_path / "m" / "run_config.json").read_text())["resolved"]["notes"]
    assert any(note.startswith("--rdrop needs single-label data") for note in notes)


def test_resume_of_a_run_started_before_a_setting_existed_compares_it_with_its_default(
    cli, files, tmp_path, register_plugin
):
    """A work marker written before --rdrop existed has no rdrop key: the exact same flags
    were refused with "used other settings (--rdrop)"."""
    from tunesmith.engine.workdir import WORK_MARKER

    plugin = _StopAfter(steps=2)
    register_plugin(plugin, "stop-after-two-old-marker")
    out = tmp_path / "model"
    assert _train(cli, files, out, "--save-steps", "1").exit_code == 130
    marker = tmp_path / "model.work" / WORK_MARKER
    document = json.loads(marker.read_text(encoding="utf-8"))
    del document["settings"]["rdrop"]  # as the previous version wrote it
    marker.write_text(json.dumps(document), encoding="utf-8")
    plugin.steps = 10_000
    result = _train(cli, files, out, "--save-steps", "1", "--resume")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("epochs", float("inf")),
        ("epochs", float("nan")),
        ("rdrop", float("nan")),
        ("rdrop", float("inf")),
        ("contrastive", float("nan")),
        ("contrastive", float("inf")),
    ],
)
def test_a_weight_or_epoch_count_that_is_not_a_finite_number_is_refused(files, option, value):
    """`--epochs inf` ended in the Trainer's OverflowError traceback, and `--rdrop nan` or
    `--contrastive nan` trained NaN weights that were saved as a model ("saved ...")."""
    from tunesmith.engine.config import RunConfig
    from tunesmith.errors import UserInputError

    flag = "--" + option
    with pytest.raises(UserInputError, match=f"^{flag} {value!r} is not valid; expected a finite"):
        RunConfig(data=str(files["train"]), **{option: value}).validate()


def test_epochs_inf_from_the_command_line_is_one_error_line(cli, files, tmp_path):
    result = _train(cli, files, tmp_path / "model", "--epochs", "inf")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Error: --epochs inf is not valid")
    assert not (tmp_path / "model").exists()
