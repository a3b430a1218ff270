"""The two-tower, the ranker, the model directory and the CLI, on the sample films with a tiny
encoder built in-process (nothing is downloaded)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from tunesmith.errors import UserInputError
from tunesmith_recommend.data import load_events, load_items, sample_paths
from tunesmith_recommend.explain import because_you_liked
from tunesmith_recommend.two_tower import MAX_HISTORY, UserTower, train_user_tower


@pytest.fixture(scope="module")
def model_dir(tiny_model, tmp_path_factory):
    from tunesmith.cli import build_app

    out = tmp_path_factory.mktemp("rec") / "model"
    result = CliRunner().invoke(
        build_app(),
        [
            "recommend",
            "train",
            "--sample",
            "--model",
            tiny_model,
            "--out",
            str(out),
            "--tower-epochs",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def run(*args):
    from tunesmith.cli import build_app

    return CliRunner().invoke(build_app(), list(args))


def test_user_tower_learns_to_weight_the_latest_item():
    # items come in near-copies (2i, 2i+1); the next item is the copy of the latest one
    rng = np.random.default_rng(0)
    base = rng.normal(size=(20, 8))
    vectors = np.repeat(base, 2, axis=0) + 0.1 * rng.normal(size=(40, 8))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    sequences = []
    for _ in range(100):
        older = rng.choice(20, 3, replace=False) * 2
        latest = int(rng.integers(20)) * 2
        seq = np.array([*older, latest, latest + 1])
        sequences.append((seq, np.arange(len(seq), dtype=float)))
    tower = train_user_tower(vectors, sequences, epochs=8, lr=0.05)
    assert tower.position_bias[0] > tower.position_bias[3]
    weights = tower.attention(vectors[[0, 2, 4, 6]])
    assert weights[-1] == weights.max()


def test_user_tower_round_trips_through_its_file(tmp_path):
    tower = UserTower(
        position_bias=np.arange(MAX_HISTORY, dtype=np.float32),
        query=np.ones(4, dtype=np.float32),
        linear=np.eye(4, dtype=np.float32),
    )
    tower.save(tmp_path / "t.npz")
    again = UserTower.load(tmp_path / "t.npz")
    history = np.eye(4, dtype=np.float32)[:3]
    assert np.allclose(tower.encode_one(history)[0], again.encode_one(history)[0])


def test_because_you_liked_names_the_history_item_closest_to_the_recommendation():
    vectors = np.eye(3, dtype=np.float32)
    vectors[2] = [0.9, 0.1, 0.0]
    reasons = because_you_liked(
        vectors, np.array([0, 1]), np.array([0.5, 0.5]), 2, ["a", "b", "c"], ["A", "B", "C"]
    )
    assert reasons[0]["item_id"] == "a" and reasons[0]["share"] == pytest.approx(0.9)


def test_train_writes_a_complete_model_directory(model_dir):
    for name in (
        "meta.json",
        "catalogue.json",
        "vectors.npy",
        "index",
        "user_tower.npz",
        "ranker.json",
        "histories.json",
        "cooc.npz",
        "signals.npz",
    ):
        assert (model_dir / name).exists(), name
    meta = json.loads((model_dir / "meta.json").read_text())
    assert meta["n_items"] == 150
    # both item towers were fitted and validation chose one; the chosen one is kept in encoder/
    # (the fine-tuned encoder, or the --model directory this fixture trains from, copied in)
    # (a fine-tuned tower whose items all look alike is left out before validation)
    expected = {"pretrained"} if meta["item_tower_collapsed"] else {"pretrained", "fine-tuned"}
    assert set(meta["item_tower_validation_ndcg10"]) == expected
    chosen = max(meta["item_tower_validation_ndcg10"], key=meta["item_tower_validation_ndcg10"].get)
    assert meta["item_tower"] == chosen
    assert meta["encoder"] == "encoder" and (model_dir / "encoder").is_dir()
    assert (model_dir / "base_vectors.npy").exists() == (chosen == "fine-tuned")


def test_for_user_excludes_seen_items_and_says_why(model_dir):
    from tunesmith_recommend.model import Recommender

    recommender = Recommender(model_dir)
    seen = set(recommender.histories["u01"])
    results = recommender.for_user("u01", k=10)
    assert len(results) == 10 and not seen & {r.item_id for r in results}
    assert all(r.because and r.because[0]["item_id"] in seen for r in results)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


def test_unknown_user_is_one_clear_line(model_dir):
    result = run("recommend", "for-user", "nobody", "-m", str(model_dir))
    assert result.exit_code == 2
    assert "user 'nobody' has no events in this model" in result.output


def test_new_user_from_liked_items_and_from_a_text(model_dir):
    liked = run(
        "recommend",
        "for-user",
        "-m",
        str(model_dir),
        "--liked",
        "f001",
        "--liked",
        "f002",
        "--json",
    )
    assert liked.exit_code == 0, liked.output
    items = [r["item_id"] for r in json.loads(liked.output)["items"]]
    assert len(items) == 10 and not {"f001", "f002"} & set(items)
    query = run(
        "recommend",
        "for-user",
        "-m",
        str(model_dir),
        "--query",
        "a haunted lake",
        "--json",
        "-k",
        "5",
    )
    assert query.exit_code == 0, query.output
    assert len(json.loads(query.output)["items"]) == 5


def test_an_item_without_events_is_found_from_its_text(model_dir):
    from tunesmith_recommend.model import Recommender

    recommender = Recommender(model_dir)
    cold = [i for i, c in enumerate(recommender.signals.counts) if c == 0]
    assert cold, "the sample data should have items nobody has watched"
    item = cold[0]
    hits = recommender.search(recommender.texts[item], k=3)
    assert hits[0].item_id == recommender.ids[item]
    similar = run("recommend", "similar", recommender.ids[item], "-m", str(model_dir), "--json")
    assert similar.exit_code == 0
    assert recommender.ids[item] not in {r["item_id"] for r in json.loads(similar.output)["items"]}


def test_liked_item_not_in_catalogue_is_refused(model_dir):
    # The sample model's items are films (its meta.json), as every message of it names them.
    from tunesmith_recommend.model import Recommender

    with pytest.raises(UserInputError, match="film 'zzz' is not in this model's catalogue"):
        Recommender(model_dir).for_liked(["zzz"])


def test_train_refuses_to_overwrite_without_force(model_dir):
    result = run("recommend", "train", "--sample", "--out", str(model_dir))
    assert result.exit_code == 2 and "--force" in result.output


def test_eval_json_reports_every_model_with_intervals(tiny_model):
    result = run(
        "recommend",
        "eval",
        "--sample",
        "--model",
        tiny_model,
        "--no-fine-tune",
        "--tower-epochs",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert set(report["models"]) == {
        "popularity",
        "recent_popularity",
        "item_knn",
        "implicit_als",
        "pretrained_embedding",
        "two_tower",
        "final_ranker",
    }
    low, high = report["models"]["final_ranker"]["all"]["ndcg10_ci"]
    assert low <= report["ndcg10"] <= high
    assert {"ndcg10_best_baseline", "best_baseline", "cold_recall10"} <= set(report)


def test_bad_events_file_is_one_line_and_writes_nothing(tmp_path):
    events = tmp_path / "e.csv"
    events.write_text("user_id,item_id,timestamp\nu1,f001,2026-01-01\nu1,nope,2026-01-02\n")
    out = tmp_path / "model"
    result = run(
        "recommend",
        "train",
        "--items",
        str(sample_paths()["items"]),
        "--events",
        str(events),
        "--out",
        str(out),
    )
    assert result.exit_code == 2
    assert "e.csv:3, column 'item_id': item 'nope' is not in items.csv" in result.output
    assert not out.exists()


def test_sample_events_load_for_the_demo_choices():
    from tunesmith_recommend.demo import choices

    users, items = choices(None)
    assert len(users) == 60 and "likes" in users[0][0] and len(items) == 150
    catalogue = load_items(sample_paths()["items"])
    assert len(load_events(sample_paths()["events"], catalogue).user_ids) == 60


def test_explain_attributes_words_of_the_first_recommendation(model_dir):
    result = run(
        "recommend", "for-user", "u01", "-m", str(model_dir), "--explain", "--json", "-k", "3"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    first = payload["items"][0]
    words = payload["words"]
    assert words["passage"].startswith(first["title"])
    assert words["passage_tokens"] and all("score" in w for w in words["passage_tokens"])


def test_plugin_keeps_the_hook_contract():
    from tunesmith.testing import check_plugin_contract
    from tunesmith_recommend import plugin

    assert check_plugin_contract(plugin) == []


def test_serving_ranks_as_the_full_catalogue_evaluation_does(model_dir):
    # on 150 items the candidate sources cover the catalogue, so serving must equal full ranking
    from tunesmith_recommend.model import Recommender

    recommender = Recommender(model_dir)
    history = recommender.history_of("u05")
    features = recommender.signals.user_features([history])
    scores = recommender.ranker.combine(features, recommender.item_part, cold=recommender.cold)
    scores = np.asarray(scores)[0]
    scores[history] = -np.inf
    expected = [recommender.ids[i] for i in np.argsort(-scores)[:10]]
    assert [r.item_id for r in recommender.for_user("u05", k=10)] == expected


def test_failed_retrain_with_force_leaves_the_old_model_intact(model_dir, tmp_path):
    from tunesmith_recommend.model import Recommender

    before = (model_dir / "ranker.json").read_bytes()
    events = tmp_path / "e.csv"
    events.write_text("user_id,item_id,timestamp\nu1,f001,1700000000\nu1,f002,2026-01-02\n")
    result = run(
        "recommend",
        "train",
        "--items",
        str(sample_paths()["items"]),
        "--events",
        str(events),
        "--out",
        str(model_dir),
        "--force",
    )
    assert result.exit_code == 2 and "mixed time formats" in result.output
    assert (model_dir / "ranker.json").read_bytes() == before
    assert len(Recommender(model_dir).for_user("u01", k=3)) == 3


def test_add_items_makes_new_items_recommendable_from_text(model_dir, tmp_path):
    import shutil

    from tunesmith_recommend.model import Recommender

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    new = tmp_path / "new.jsonl"
    new.write_text(
        json.dumps(
            {
                "item_id": "n1",
                "title": "Drowned Lighthouse",
                "description": "A lighthouse keeper on a fog-bound island hears voices from the lake.",
                "genres": "horror",
            }
        )
        + "\n"
    )
    result = run("recommend", "add-items", "-m", str(copy), "--items", str(new))
    assert result.exit_code == 0, result.output
    recommender = Recommender(copy)
    assert len(recommender.ids) == 151 and recommender.signals.counts[-1] == 0
    text = recommender.texts[recommender.position["n1"]]
    assert [r.item_id for r in recommender.search(text, k=1)] == ["n1"]
    assert "n1" in {r.item_id for r in recommender.for_query(text, k=10)}
    assert len(recommender.for_user("u01", k=5)) == 5
    again = run("recommend", "add-items", "-m", str(copy), "--items", str(new))
    # the line of the JSONL file, as every other data error names it
    assert again.exit_code == 2
    assert f"{new}:1: film 'n1' is in the model already" in again.output


def test_for_user_differs_from_popularity_for_users_with_history(model_dir):
    # the ranker must use the history: popularity alone would give every user the same list
    from tunesmith_recommend.model import Recommender

    recommender = Recommender(model_dir)
    popular = np.argsort(-recommender.signals.counts, kind="stable")
    differ, lists = 0, set()
    users = sorted(recommender.histories)[:20]
    for user in users:
        seen = set(recommender.histories[user])
        by_popularity = [recommender.ids[i] for i in popular if recommender.ids[i] not in seen]
        top = [r.item_id for r in recommender.for_user(user, k=10)]
        differ += set(top) != set(by_popularity[:10])
        lists.add(tuple(top))
    assert differ >= 15 and len(lists) >= 15
    weights = recommender.ranker.weights
    assert any(weights[name] for name in ("two_tower", "text_similarity", "cooccurrence"))


def test_cold_item_weights_apply_to_items_without_events_only():
    from tunesmith_recommend.ranker import FEATURES, Ranker

    ranker = Ranker(
        weights={name: 0.0 for name in FEATURES} | {"two_tower": 1.0},
        scales={name: 1.0 for name in FEATURES},
        cold_weights={"two_tower": 2.0},
    )
    features = {
        "two_tower": np.array([0.5, 0.5]),
        "text_similarity": np.zeros(2),
        "cooccurrence": np.zeros(2),
    }
    scores = ranker.combine(features, np.zeros(2), cold=np.array([0.0, 1.0]))
    assert scores.tolist() == [0.5, 1.5]  # the cold item's two-tower weight is 1 + 2
    with pytest.raises(ValueError, match="pass cold="):
        ranker.combine(features, np.zeros(2))
    assert Ranker.from_json(ranker.to_json()) == ranker
    # a ranker.json written before cold weights existed still loads
    assert Ranker.from_json({"weights": ranker.weights, "scales": ranker.scales}).cold_weights == {}


def test_ranker_keeps_one_row_per_request_when_per_request_weights_are_zero():
    # a degenerate fit (two items) left only item weights; evaluation then crashed on one row
    from tunesmith_recommend.ranker import FEATURES, Ranker

    ranker = Ranker(
        weights={name: 0.0 for name in FEATURES} | {"popularity": 1.0},
        scales={name: 1.0 for name in FEATURES},
    )
    features = {name: np.zeros((3, 2)) for name in ("two_tower", "text_similarity", "cooccurrence")}
    scores = ranker.combine(features, np.array([1.0, 2.0]), cold=np.zeros(2))
    assert np.shape(scores) == (3, 2)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["eval", "--sample", "--min-events", "2"], "--min-events"),
        (["eval", "--sample", "--tower-epochs", "0"], "--tower-epochs"),
        (["eval", "--sample", "--encoder-epochs", "0"], "--encoder-epochs"),
        (["for-user", "u01", "-k", "-3"], "-k"),
        (["for-user", "u01", "-k", "0"], "-k"),
        (["similar", "f001", "-k", "0"], "-k"),
    ],
)
def test_out_of_range_numbers_are_refused_naming_the_flag(model_dir, flags, named):
    # --min-events 2 was a traceback, -k -3 printed all but three candidates, -k 0 nothing,
    # --encoder-epochs 0 failed after the baselines were fitted without naming the flag
    args = [*flags, "-m", str(model_dir)] if flags[0] != "eval" else flags
    result = run("recommend", *args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    shown = re.sub(r"\x1b\[[0-9;]*m", "", result.output)  # the usage error's box may be coloured
    assert named in shown and "Traceback" not in shown
    assert "fitting baseline" not in shown


def test_train_and_eval_accept_the_allow_network_flag_their_error_names(tiny_model, monkeypatch):
    # a hub --model failed with "pass --allow-network", which the command did not have
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the flag sets it for the process; put it back
    refused = run("recommend", "eval", "--sample", "--model", "nosuch/model", "--no-fine-tune")
    assert refused.exit_code == 2 and "--allow-network" in refused.output
    result = run(
        "recommend",
        "eval",
        "--sample",
        "--model",
        tiny_model,
        "--no-fine-tune",
        "--tower-epochs",
        "1",
        "--allow-network",
        "--json",
    )
    assert result.exit_code == 0, result.output


def test_model_records_its_base_encoder_so_it_loads_from_another_directory(
    tiny_model, tmp_path, monkeypatch
):
    # a relative --model was stored as given; add-items on a fine-tuned model loads it again
    from pathlib import Path

    from tunesmith.retrieval import Encoder

    monkeypatch.chdir(Path(tiny_model).parent)
    out = tmp_path / "model"
    trained = run(
        "recommend",
        "train",
        "--sample",
        "--model",
        Path(tiny_model).name,
        "--no-fine-tune",
        "--tower-epochs",
        "1",
        "--out",
        str(out),
    )
    assert trained.exit_code == 0, trained.output
    monkeypatch.chdir(tmp_path)
    base_model = json.loads((out / "meta.json").read_text())["base_model"]
    assert Encoder.load(base_model).encode(["a haunted lake"]).shape[0] == 1


def test_explain_with_a_query_attributes_the_first_items_words(model_dir):
    # --explain was silently ignored for --query (the demo explained it)
    result = run(
        "recommend",
        "for-user",
        "-m",
        str(model_dir),
        "--query",
        "a haunted lake",
        "--explain",
        "--json",
        "-k",
        "2",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["words"]["query"] == "a haunted lake"
    assert payload["words"]["passage"].startswith(payload["items"][0]["title"])


def test_matched_words_are_only_words_that_raised_the_match():
    # the CLI listed the top eight scores even when all were negative (".", "A", "and", ...)
    from types import SimpleNamespace

    from tunesmith_recommend.explain import matched_words

    tokens = [
        SimpleNamespace(word=w, score=s) for w, s in [("lake", 0.2), (".", -0.01), ("A", -0.3)]
    ]
    assert matched_words(SimpleNamespace(passage_tokens=tokens)) == ["lake"]


def test_matched_words_leave_out_punctuation_and_repeats():
    # On MovieTweetings (title. year. genres) the CLI printed "words of the first item that
    # matched: Drama, Argo, Biography, 2012, ., ,, ., ,"
    from types import SimpleNamespace

    from tunesmith_recommend.explain import matched_words

    scored = [("Drama", 0.3), (".", 0.25), ("Argo", 0.2), (",", 0.15), (".", 0.1), ("2012", 0.05)]
    scored += [("Drama", 0.04), ("Sci-Fi", 0.03)]
    tokens = [SimpleNamespace(word=w, score=s) for w, s in scored]
    assert matched_words(SimpleNamespace(passage_tokens=tokens)) == [
        "Drama",
        "Argo",
        "2012",
        "Sci-Fi",
    ]
    assert matched_words(SimpleNamespace(passage_tokens=tokens), top=2) == ["Drama", "Argo"]


def test_a_query_ranks_an_item_without_events_by_its_text_not_as_the_least_popular():
    import numpy as np

    from tunesmith_recommend.model import query_scores

    # 40 items with events, then a new one that matches the query clearly best but has the
    # lowest prior of all (no events): as the least popular it ranked second.
    match = np.r_[np.linspace(0.30, 0.60, 40), 0.72]
    prior = np.r_[np.linspace(0.0, 3.0, 40), -9.0]
    cold = np.r_[np.zeros(40, dtype=bool), True]
    assert int(np.argmax(query_scores(match, prior, cold))) == 40
    # Among items with events, popularity still moves a close match.
    warm = query_scores(
        np.array([0.60, 0.61, 0.30]), np.array([3.0, 0.0, 0.0]), np.zeros(3, dtype=bool)
    )
    assert int(np.argmax(warm)) == 0


def test_model_and_top_k_are_spelled_as_in_the_core_commands(model_dir):
    result = run("recommend", "search", "a haunted lake", "--model", str(model_dir),
                 "--top-k", "2", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["items"]) == 2


def test_add_items_is_refused_while_another_process_writes_the_model(model_dir, tmp_path):
    """Two add-items at once each renamed their copy over the model: both said "Added", and the
    first one's items were lost. The second is now refused, and the model is left as it was."""
    import shutil

    from tunesmith.locks import run_lock
    from tunesmith_recommend.model import Recommender

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    new = tmp_path / "new.jsonl"
    item = {"item_id": "n1", "title": "Fog", "description": "a lake", "genres": "drama"}
    new.write_text(json.dumps(item) + "\n")
    with run_lock(copy):  # another add-items (or a train --force) in progress
        result = run("recommend", "add-items", "-m", str(copy), "--items", str(new))
    assert result.exit_code == 2, result.output
    assert f"is writing {copy}; wait for it to finish or choose another --model" in result.output
    assert len(Recommender(copy).ids) == 150
    again = run("recommend", "add-items", "-m", str(copy), "--items", str(new))
    assert again.exit_code == 0, again.output
    assert len(Recommender(copy).ids) == 151


def test_a_model_loaded_while_add_items_replaces_it_is_one_whole_version(
    model_dir, tmp_path, monkeypatch
):
    """`for-user` loading the model while `add-items` renamed its new copy into place read the
    catalogue of one version and the index (or vectors) of the next: mixed lengths, and a
    ValueError traceback when the shapes met. The load now sees the swap and reads again."""
    import shutil

    from tunesmith_recommend import model as model_module
    from tunesmith_recommend.data import load_items

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    new = tmp_path / "new.jsonl"
    item = {"item_id": "n1", "title": "Fog", "description": "a lake", "genres": "drama"}
    new.write_text(json.dumps(item) + "\n")
    original = model_module.VectorIndex.load
    swaps = []

    def load_during_add_items(path, *args, **kwargs):
        if not swaps:  # the catalogue is read already: another process adds an item now
            swaps.append("adding")  # add_items loads the model too: no second swap there
            swaps[0] = model_module.add_items(copy, load_items(new, min_items=1))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(model_module.VectorIndex, "load", load_during_add_items)
    recommender = model_module.Recommender(copy)
    assert swaps == [1]
    assert len(recommender.ids) == len(recommender.index) == 151
    assert len(recommender.signals.item_vectors) == 151 and "n1" in recommender.position


def test_recommend_train_is_refused_while_another_process_writes_its_out(tiny_model, tmp_path):
    from tunesmith.locks import run_lock

    out = tmp_path / "model"
    with run_lock(out):
        result = run("recommend", "train", "--sample", "--model", tiny_model, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert f"is writing {out}; wait for it to finish or choose another --out" in result.output
    assert not out.exists()


def test_word_attributions_explain_the_match_as_the_encoder_reads_the_texts(tmp_path):
    # The explanation read each text up to the model's own limit with mean pooling, whatever
    # the encoder: with all-MiniLM-L6-v2 (256 of 512 tokens) a long item's words past what the
    # encoder read were scored, and the similarity was not the one that ranked the item.
    from tunesmith.retrieval import Encoder
    from tunesmith.testing import make_tiny_base_model
    from tunesmith_recommend.explain import word_attributions

    query, item = "a haunted lake", "the lake is haunted and the old house is haunted too"
    encoder = Encoder.load(make_tiny_base_model(tmp_path / "enc", [query, item]))
    encoder.max_length = 6  # [CLS], four words, [SEP]
    vectors = encoder.encode([query, item])
    explanation = word_attributions(encoder, query, item, n_steps=4)
    assert [t.word for t in explanation.passage_tokens] == ["the", "lake", "is", "haunted"]
    assert explanation.similarity == pytest.approx(float(vectors[0] @ vectors[1]), abs=1e-5)


def test_mean_cosine_between_items_tells_a_collapsed_tower_from_a_spread_one():
    from tunesmith_recommend.pipeline import COLLAPSED_COSINE, mean_cosine

    rng = np.random.default_rng(0)
    spread = rng.normal(size=(300, 16))
    collapsed = rng.normal(size=16) + 0.05 * rng.normal(size=(300, 16))
    assert abs(mean_cosine(spread)) < 0.05
    assert mean_cosine(collapsed) > COLLAPSED_COSINE
    unit = spread / np.linalg.norm(spread, axis=1, keepdims=True)
    pairwise = unit @ unit.T
    direct = (pairwise.sum() - np.trace(pairwise)) / (300 * 299)
    assert mean_cosine(spread) == pytest.approx(direct, abs=1e-9)
    assert mean_cosine(spread, limit=50) == pytest.approx(direct, abs=0.05)
