"""Pair fine-tuning (train_pair_encoder, `tunesmith train --task pairs`) and retrieval metrics."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tunesmith.errors import OutputExistsError, UserInputError
from tunesmith.retrieval import ranking
from tunesmith.retrieval.pairs import (
    false_negatives,
    ranking_loss,
    split_by_query,
    train_pair_encoder,
)
from tunesmith.testing import make_tiny_base_model, write_csv

TOPICS = [
    "card",
    "account",
    "transfer",
    "refund",
    "password",
    "loan",
    "order",
    "delivery",
    "stock",
    "movie",
]


def make_pairs(copies: int = 3, seed: int = 0) -> tuple[list[str], list[str]]:
    """Questions about a topic, each matched to that topic's one answer (answers repeat)."""
    rng = random.Random(seed)
    queries, targets = [], []
    for topic in TOPICS:
        for _ in range(copies):
            verb = rng.choice(["fix", "get", "check", "see", "change"])
            tail = rng.choice(["please", "now", "today", "again", "help"])
            queries.append(f"how do i {verb} my {topic} {tail}")
            targets.append(f"answer about the {topic}")
    return queries, targets


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    queries, targets = make_pairs()
    return make_tiny_base_model(tmp_path_factory.mktemp("pairs") / "base", queries + targets)


@pytest.fixture(scope="module")
def trained(base_dir, tmp_path_factory):
    queries, targets = make_pairs(copies=4)
    eval_queries, eval_targets = make_pairs(copies=1, seed=7)
    out = tmp_path_factory.mktemp("pairs") / "tuned"
    result = train_pair_encoder(
        queries,
        targets,
        out,
        model=base_dir,
        eval_queries=eval_queries,
        eval_targets=eval_targets,
        epochs=8,
        batch_size=20,
        lr=5e-3,
        progress=False,
    )
    return result, eval_queries


def test_training_lowers_the_loss_and_improves_held_out_recall(trained):
    result, _ = trained
    metrics = result.metrics
    assert metrics["loss_last"] < 0.5 * metrics["loss_first"]
    assert metrics["tuned"]["mrr"] > metrics["untuned"]["mrr"]
    assert metrics["tuned"]["recall@1"] >= 0.8
    assert set(metrics["tuned"]) == {"recall@1", "recall@5", "recall@10", "mrr"}
    assert metrics["n_eval"] == len(TOPICS) and metrics["n_candidates"] == len(TOPICS)
    saved = json.loads((result.path / "metrics.json").read_text())
    assert saved["tuned"] == metrics["tuned"]


def test_saved_directory_loads_with_automodel_sentence_transformers_and_encoder(trained):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    from tunesmith.retrieval import Encoder

    result, texts = trained
    assert type(AutoModel.from_pretrained(result.path)).__name__ == "BertModel"
    expected = SentenceTransformer(str(result.path)).encode(texts)
    encoder = Encoder.load(result.path)
    assert encoder.pooling == ("mean",) and encoder.normalize
    assert np.abs(encoder.encode(texts) - expected).max() < 1e-5
    assert (result.path / "int8_ranges.json").exists()
    int8 = Encoder.load(result.path, quantize="int8").encode(texts)
    assert (int8 * expected).sum(axis=1).min() > 0.95


def test_commands_for_classifiers_call_a_pair_encoder_a_sentence_encoder_not_a_base_model(
    cli, trained, tmp_path
):
    """It came from `tunesmith train`: "fine-tune it first" alone would send the user round."""
    result, texts = trained
    out = tmp_path / "encoder.onnx"
    for args in (["export", "--out", str(out)], ["predict", "--text", texts[0]]):
        done = cli(args[0], "--model", str(result.path), *args[1:])
        assert done.exit_code == 2
        assert "is a sentence encoder" in done.output and "--task pairs" in done.output
        assert "Encoder.load" in done.output and "Traceback" not in done.output
    assert not out.exists()


def test_refuses_to_overwrite_without_force(trained, base_dir):
    result, _ = trained
    queries, targets = make_pairs(copies=1)
    with pytest.raises(OutputExistsError, match="exists already"):
        train_pair_encoder(queries, targets, result.path, model=base_dir)


def test_tiny_data_with_duplicates_hard_negatives_and_long_texts_trains(base_dir, tmp_path):
    queries = ["card broken", "card broken", "refund please", " "]
    targets = ["answer about the card", "answer about the card again", "answer refund", "x"]
    negatives = ["answer refund", None, "answer refund", None]  # one equals its own target
    queries[2] = "refund " * 400  # longer than the model's 128 tokens: truncated
    result = train_pair_encoder(
        queries, targets, tmp_path / "tiny", model=base_dir, hard_negatives=negatives
    )
    assert result.metrics["n_train"] == 3  # the pair with an empty query is skipped
    assert result.metrics["eval_source"].startswith("training pairs")
    assert result.metrics["settings"]["hard_negatives"] == 2
    assert np.isfinite(result.metrics["loss_first"])


def test_bad_arguments_are_user_errors(base_dir, tmp_path):
    with pytest.raises(UserInputError, match="2 training queries but 1 targets"):
        train_pair_encoder(["a", "b"], ["x"], tmp_path / "o", model=base_dir)
    with pytest.raises(UserInputError, match="every pair has an empty side"):
        train_pair_encoder(["", "b"], ["x", " "], tmp_path / "o", model=base_dir)
    with pytest.raises(UserInputError, match=r"training targets\[1\] is int"):
        train_pair_encoder(["a", "b"], ["x", 3], tmp_path / "o", model=base_dir)
    assert not (tmp_path / "o").exists()


def test_duplicate_targets_in_a_batch_are_masked_not_pushed_apart():
    import torch

    # Rows 0 and 1 share a target text; rows 1 and 2 are copies of one query text.
    mask = false_negatives(torch.tensor([0, 1, 1]), torch.tensor([5, 5, 6]))
    assert mask.tolist() == [[False, True, False], [True, False, True], [False, True, False]]
    queries = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    candidates = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # the same answer twice
    same = false_negatives(torch.tensor([0, 1]), torch.tensor([3, 3]))
    assert float(ranking_loss(queries, candidates, same)) == pytest.approx(0.0, abs=1e-6)
    unmasked = torch.zeros(2, 2, dtype=torch.bool)
    assert float(ranking_loss(queries, candidates, unmasked)) == pytest.approx(np.log(2), 1e-5)


def test_held_out_split_keeps_every_copy_of_a_query_on_one_side():
    queries = [f"q{i % 30}" for i in range(90)]
    train, held = split_by_query(queries, seed=3)
    assert len(held) == 18  # 20 % of 30 distinct queries, 3 copies each
    assert not {queries[i] for i in train} & {queries[i] for i in held}
    assert split_by_query(queries, seed=3) == (train, held)
    assert split_by_query(queries[:5], seed=3) == (list(range(5)), [])


def test_ranks_use_the_best_placed_of_several_right_answers():
    candidates = np.eye(4, dtype=np.float32)
    query = np.array([[0.1, 0.9, 0.5, 0.0], [0.9, 0.1, 0.8, 0.7]], dtype=np.float32)
    rank = ranking.ranks(query, candidates, [[2, 3], [3]])
    assert rank.tolist() == [2, 3]
    metrics = ranking.metrics_from_ranks(rank)
    assert metrics == {"recall@1": 0.0, "recall@5": 1.0, "recall@10": 1.0, "mrr": 0.4167}


def test_a_right_answer_tied_with_another_right_answer_still_ranks_first():
    # Two answer texts an uncased encoder reads alike get one vector: the query's top hit is
    # right, so recall@1 is 1; only a wrong candidate tied with the best right one is a miss.
    candidates = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    query = np.array([[1, 0], [0, 1]], dtype=np.float32)
    assert ranking.ranks(query, candidates, [[0, 1], [0]]).tolist() == [1, 3]
    assert ranking.ranks(query[:1], candidates, [[0]]).tolist() == [2]
    metrics = ranking.metrics_from_ranks(ranking.ranks(query[:1], candidates, [[0, 1]]))
    assert metrics == {"recall@1": 1.0, "recall@5": 1.0, "recall@10": 1.0, "mrr": 1.0}


def test_cli_trains_pairs_and_prints_tuned_and_untuned_metrics(cli, base_dir, tmp_path):
    queries, targets = make_pairs(copies=2)
    data = write_csv(
        tmp_path / "faq.csv", zip(queries, targets, strict=True), header=("question", "answer")
    )
    out = tmp_path / "enc"
    args = ["train", "--task", "pairs", "--data", str(data), "--text-col", "question"]
    args += ["--pair-col", "answer", "--out", str(out), "--model", str(base_dir)]
    result = cli(*args, "--epochs", "2", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    assert "untuned" in result.output and "recall@10" in result.output
    assert (out / "modules.json").exists()


def test_cli_bad_column_and_empty_file_are_one_error_line(cli, base_dir, tmp_path):
    data = write_csv(tmp_path / "faq.csv", [("q", "a")], header=("question", "answer"))
    args = ["train", "--task", "pairs", "--data", str(data), "--text-col", "question"]
    args += ["--out", str(tmp_path / "o"), "--model", str(base_dir)]
    result = cli(*args, "--pair-col", "reply")
    assert result.exit_code == 2
    assert "there is no column 'reply'; the columns are: question, answer" in result.output
    assert len(result.output.strip().splitlines()) == 1
    empty = write_csv(tmp_path / "empty.csv", [], header=("question", "answer"))
    args[args.index(str(data))] = str(empty)
    result = cli(*args, "--pair-col", "answer")
    assert result.exit_code == 2 and "no data rows" in result.output
    result = cli(*args)
    assert result.exit_code == 2 and "--pair-col" in result.output


def test_cli_pairs_under_a_launcher_is_refused_before_anything_is_read(
    cli, base_dir, tmp_path, monkeypatch
):
    # Its own training loop: every process of torchrun would train and write alone.
    monkeypatch.setenv("WORLD_SIZE", "2")
    args = ["train", "--task", "pairs", "--data", str(tmp_path / "missing.csv")]
    result = cli(*args, "--pair-col", "answer", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "--task pairs trains in one process" in result.output
    assert not (tmp_path / "o").exists()


def test_pair_training_tokenises_through_the_encoder_so_its_lower_casing_applies(
    base_dir, tmp_path, monkeypatch
):
    from tunesmith.retrieval.encoder import Encoder

    tokenised: list[str] = []
    real = Encoder.token_ids

    def recording(self, texts):
        tokenised.extend(texts)
        return real(self, texts)

    monkeypatch.setattr(Encoder, "token_ids", recording)
    queries, targets = make_pairs(copies=2)
    train_pair_encoder(queries, targets, tmp_path / "out", model=base_dir, epochs=1,
                       batch_size=8, progress=False)  # fmt: skip
    trained_on = set(queries) - set(tokenised)
    assert len(trained_on) < len(set(queries)) / 2, "training tokenised queries elsewhere"
    assert set(targets) <= set(tokenised)


def test_the_api_refuses_an_lr_of_one_or_more_and_a_max_length_below_four(base_dir, tmp_path):
    # As the train command's other tasks do: either gave an encoder with recall 0, silently.
    for options, said in (
        ({"lr": 5.0}, "--lr 5.0 is not valid"),
        ({"lr": float("nan")}, "--lr nan is not valid"),
        ({"max_length": 2}, "--max-length 2 is not valid"),
    ):
        with pytest.raises(UserInputError, match=said):
            train_pair_encoder(["a", "b"], ["x", "y"], tmp_path / "o", model=base_dir, **options)
    assert not (tmp_path / "o").exists()


def test_the_saved_encoders_weights_are_as_readable_as_its_other_files(trained):
    result, _ = trained
    directory = result.path
    modes = {p.name: p.stat().st_mode & 0o777 for p in directory.iterdir() if p.is_file()}
    assert modes["model.safetensors"] == modes["config.json"], modes


def test_reading_pairs_refuses_one_column_named_for_both_sides(tmp_path):
    from tunesmith.retrieval.pairs import read_pairs
    from tunesmith.testing import write_csv

    path = write_csv(tmp_path / "p.csv", [["q", "a"]], header=("question", "answer"))
    with pytest.raises(
        UserInputError, match="--text-col and --pair-col both name column 'question'"
    ):
        read_pairs(path, "question", "question")
    with pytest.raises(UserInputError, match="--pair-col and --negative-col both name"):
        read_pairs(path, "question", "answer", "answer")
