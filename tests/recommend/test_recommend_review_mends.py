"""Bugs found by reviewing the recommend plugin as a user, each pinned by a test that failed
before its fix. Models are tiny and built in-process (nothing is downloaded)."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from tunesmith_recommend.data import load_events, load_items, sample_paths

#: One torch thread (also while ``model_dir`` is trained): the ranker's fit, most of a sample
#: training, took ten times as long on two threads of a busy shared CPU.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(*args):
    from tunesmith.cli import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def model_dir(tiny_model, tmp_path_factory, one_torch_thread):
    out = tmp_path_factory.mktemp("rec") / "model"
    result = run(
        "recommend", "train", "--sample", "--model", tiny_model, "--no-fine-tune", "--out", out
    )
    assert result.exit_code == 0, result.output
    return out


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_eval_json_is_strict_json_when_a_slice_has_no_requests(tiny_model):
    # --min-events 4 leaves no user with at most 3 events to test: the short-user slice's means
    # were NaN, printed as a bare NaN that strict JSON parsers (JavaScript, jq --seq) refuse
    result = run(
        "recommend",
        "eval",
        "--sample",
        "--model",
        tiny_model,
        "--no-fine-tune",
        "--tower-epochs",
        "1",
        "--min-events",
        "4",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = _strict_json(result.output.strip().splitlines()[-1])
    short = report["models"]["final_ranker"]["short_users"]
    assert short["n"] == 0 and short["ndcg10"] is None and short["ndcg10_ci"] == [None, None]
    assert report["models"]["final_ranker"]["all"]["ndcg10"] is not None


def test_random_recall_is_at_most_one_when_the_catalogue_is_smaller_than_k():
    from tunesmith_recommend.pipeline import headline

    row = {"n": 2, "ndcg10": 1.0, "ndcg10_ci": (1.0, 1.0), "recall10": 1.0}
    summary = {"all": row, "cold_items": {**row, "n": 0}}
    result = {"models": {"two_tower": summary, "final_ranker": summary}, "ranks": {}}
    # 10 / 2 items was reported as a random Recall@10 of 5
    assert headline(result, n_items=2)["random_recall10"] == 1.0
    assert headline(result, n_items=40)["random_recall10"] == 0.25


def test_list_valued_text_fields_read_as_comma_lists_not_python_reprs(tmp_path):
    import pandas as pd

    rows = [
        {"item_id": "a", "title": "Alpha", "description": "A space film", "genres": ["sci-fi"]},
        {"item_id": "b", "title": "Beta", "description": "A sea film", "genres": ["drama", "sea"]},
    ]
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    parquet = tmp_path / "items.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    for path in (jsonl, parquet):
        # was "Beta. A sea film. ['drama', 'sea']"
        assert load_items(path).texts == [
            "Alpha. A space film. sci-fi",
            "Beta. A sea film. drama, sea",
        ]


def test_events_in_another_row_order_load_and_split_identically(tmp_path):
    # users were numbered by first appearance, so a shuffled file (same events) gave another
    # user order, other folds and seeded shuffles, and other evaluation figures
    from tunesmith_recommend.split import leave_last_out

    catalogue = load_items(sample_paths()["items"])
    lines = sample_paths()["events"].read_text(encoding="utf-8").splitlines()
    body = lines[1:]
    random.Random(3).shuffle(body)
    shuffled = tmp_path / "events.csv"
    shuffled.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    a = load_events(sample_paths()["events"], catalogue)
    b = load_events(shuffled, catalogue)
    assert a.user_ids == b.user_ids == sorted(a.user_ids)
    for name in ("users", "items", "times"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    split_a, split_b = leave_last_out(a, len(catalogue)), leave_last_out(b, len(catalogue))
    assert np.array_equal(split_a.test.users, split_b.test.users)
    assert np.array_equal(split_a.test.targets, split_b.test.targets)


def _train_from_a_model_folder(tiny_model, tmp_path, monkeypatch, winner):
    """Train on the sample from a copy of the tiny model as --model, with validation made to
    choose the ``winner`` item tower ("pretrained" or "fine-tuned"); (that folder, the model)."""
    import tunesmith_recommend.pipeline as pipeline

    real = pipeline.fit_ranker

    def chosen(signals, val, **kwargs):
        ranker, _ = real(signals, val, **kwargs)
        pretrained = signals.base_vectors is None
        return ranker, 1.0 if pretrained == (winner == "pretrained") else 0.0

    monkeypatch.setattr(pipeline, "fit_ranker", chosen)
    base = tmp_path / "my-encoder"
    shutil.copytree(tiny_model, base)
    out = tmp_path / "model"
    result = run(
        "recommend", "train", "--sample", "--model", base, "--encoder-epochs", "0.1",
        "--tower-epochs", "1", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return base, out


def test_a_model_directory_given_as_model_is_copied_in_when_fine_tuning_loses(
    tiny_model, tmp_path, monkeypatch
):
    # fine-tuning was tried, validation chose the pretrained tower: the --model folder was not
    # copied (as it is with --no-fine-tune) and the model broke once that folder was moved
    from tunesmith_recommend.model import Recommender

    base, out = _train_from_a_model_folder(tiny_model, tmp_path, monkeypatch, "pretrained")
    meta = json.loads((out / "meta.json").read_text())
    assert set(meta["item_tower_validation_ndcg10"]) == {"pretrained", "fine-tuned"}
    assert meta["item_tower"] == "pretrained"
    assert meta["encoder"] == "encoder" and (out / "encoder").is_dir()
    shutil.rmtree(base)
    assert Recommender(out).search("a haunted lake", k=3)


def test_for_user_and_query_return_k_items_when_k_exceeds_the_candidate_pools(
    model_dir, monkeypatch
):
    # serving re-ranks a few hundred candidates; asking for more returned fewer than -k items
    # although the catalogue had them (pools made small here to stand for a large catalogue)
    import tunesmith_recommend.model as model

    monkeypatch.setattr(model, "CANDIDATES", 10)
    monkeypatch.setattr(model, "INDEX_CANDIDATES", 5)
    recommender = model.Recommender(model_dir)
    seen = set(recommender.histories["u01"])
    results = recommender.for_user("u01", k=100)
    assert len(results) == 100 and not seen & {r.item_id for r in results}
    assert len({r.item_id for r in recommender.for_user("u01", k=1000)}) == 150 - len(seen)
    assert len(recommender.for_query("a haunted lake", k=100)) == 100


def test_for_user_says_so_when_every_item_is_already_in_the_history(model_dir):
    ids = json.loads((model_dir / "catalogue.json").read_text())["ids"]
    liked = [flag for item in ids for flag in ("--liked", item)]
    result = run("recommend", "for-user", "-m", model_dir, *liked)
    assert result.exit_code == 0, result.output
    assert "nothing left to recommend" in result.output


def test_add_items_still_works_after_the_base_model_folder_is_moved(
    tiny_model, tmp_path, monkeypatch
):
    # the fine-tuned tower won: meta.json named the --model folder by its absolute path as the
    # pretrained encoder, which add-items needs for base_vectors.npy, and once that folder was
    # moved add-items failed with "model directory ... does not exist"
    from tunesmith_recommend.model import Recommender

    base, out = _train_from_a_model_folder(tiny_model, tmp_path, monkeypatch, "fine-tuned")
    assert json.loads((out / "meta.json").read_text())["item_tower"] == "fine-tuned"
    shutil.move(base, tmp_path / "moved-encoder")
    new = tmp_path / "new.csv"
    new.write_text("item_id,title,description,genres\nn1,Drowned Lake,A haunted lake.,horror\n")
    added = run("recommend", "add-items", "-m", out, "--items", new)
    assert added.exit_code == 0, added.output
    recommender = Recommender(out)
    assert recommender.signals.base_vectors.shape[0] == len(recommender.ids) == 151


def test_a_folder_named_default_in_the_working_directory_is_not_taken_for_the_encoder(
    tiny_model, tmp_path, monkeypatch
):
    # --model default with a ./default folder (any folder: notes, configs) copied that folder
    # into the model as its encoder; every text query then failed ("has no config.json")
    import tunesmith_recommend.pipeline as pipeline

    real = pipeline.encode_items
    # the built-in encoder is slow to load here: the tiny one stands in for "default"
    monkeypatch.setattr(pipeline, "encode_items", lambda model, texts, **_: real(tiny_model, texts))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "notes.txt").write_text("not a model\n")
    out = tmp_path / "model"
    result = run(
        "recommend", "train", "--sample", "--no-fine-tune", "--tower-epochs", "1", "--out", out
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "meta.json").read_text())["encoder"] == "default"
    assert not (out / "encoder").exists()


def test_a_damaged_json_file_in_the_model_directory_is_one_line_naming_it(model_dir, tmp_path):
    # a truncated catalogue.json (a copy cut short, a hand edit) was a JSONDecodeError traceback
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / "catalogue.json").write_text('{"ids": [\n', encoding="utf-8")
    result = run("recommend", "for-user", "u01", "-m", copy)
    assert result.exit_code == 2, result.output
    assert f"{copy / 'catalogue.json'}: not valid JSON" in result.output
    (copy / "histories.json").unlink()
    shutil.copy(model_dir / "catalogue.json", copy / "catalogue.json")
    result = run("recommend", "similar", "f001", "-m", copy)
    assert result.exit_code == 2 and "has no histories.json" in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [(["search", "lake \udcff"], "TEXT"), (["for-user", "--query", "lake \udcff"], "--query")],
)
def test_a_query_that_is_not_utf8_is_refused_naming_its_argument(model_dir, args, named):
    # a non-UTF-8 byte of argv failed in the encoder as "text 0 holds U+DCFF ...": no flag named
    result = run("recommend", *args, "-m", model_dir)
    assert result.exit_code == 2, result.output
    assert f"{named} is not UTF-8 (byte 0xff" in result.output


def test_add_items_into_the_current_directory_given_as_dot(model_dir, tmp_path, monkeypatch):
    # "-m ." from inside the model: a ValueError traceback, and a temporary folder left inside
    from tunesmith_recommend.model import Recommender

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    new = tmp_path / "new.csv"
    new.write_text("item_id,title,description,genres\nn1,Drowned Lake,A haunted lake.,horror\n")
    monkeypatch.chdir(copy)
    result = run("recommend", "add-items", "-m", ".", "--items", new)
    assert result.exit_code == 0, result.output
    assert len(Recommender(copy).ids) == 151
    assert not [p.name for p in [*copy.iterdir(), *tmp_path.iterdir()] if p.name.endswith(".tmp")]


def test_train_into_the_current_directory_given_as_dot(tiny_model, tmp_path, monkeypatch):
    # "--out . --force" in an empty folder: a ValueError traceback after all the training
    out = tmp_path / "here"
    out.mkdir()
    monkeypatch.chdir(out)
    result = run(
        "recommend", "train", "--sample", "--model", tiny_model, "--no-fine-tune",
        "--tower-epochs", "1", "--out", ".", "--force",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "meta.json").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_add_items_reads_the_columns_train_read_unless_told_otherwise(tiny_model, tmp_path):
    # add-items defaulted to description,genres whatever train read: new items' text was built
    # from other fields than the catalogue's, or refused for a column the catalogue never had
    from tunesmith_recommend.model import Recommender

    out = tmp_path / "model"
    result = run(
        "recommend", "train", "--sample", "--model", tiny_model, "--no-fine-tune",
        "--tower-epochs", "1", "--text-cols", "genres,theme", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    new = tmp_path / "new.csv"
    new.write_text("item_id,title,genres,theme\nn1,Drowned Lake,horror,water\n")
    added = run("recommend", "add-items", "-m", out, "--items", new)
    assert added.exit_code == 0, added.output
    assert Recommender(out).texts[-1] == "Drowned Lake. horror. water"
    other = tmp_path / "other.csv"
    other.write_text("item_id,title,description\nn2,Quiet Hill,A calm walk.\n")
    told = run("recommend", "add-items", "-m", out, "--items", other, "--text-cols", "description")
    assert told.exit_code == 0, told.output
    assert Recommender(out).texts[-1] == "Quiet Hill. A calm walk."


def test_a_fine_tuned_item_tower_whose_items_all_look_alike_is_left_out(
    tiny_model, tmp_path, monkeypatch
):
    """Next-item pairs the texts cannot predict are fitted best by mapping every item to one
    point; such a tower ranks nothing by text, whatever its validation NDCG on few requests."""
    import tunesmith_recommend.pipeline as pipeline

    def vectors(model, texts, **_):
        rng = np.random.default_rng(len(texts))
        if model == str(tiny_model):  # the pretrained tower: items spread out
            return rng.normal(size=(len(texts), 8)).astype(np.float32)
        return (np.ones(8) + 0.01 * rng.normal(size=(len(texts), 8))).astype(np.float32)

    monkeypatch.setattr(pipeline, "encode_items", vectors)
    out = tmp_path / "model"
    result = run(
        "recommend", "train", "--sample", "--model", tiny_model, "--encoder-epochs", "0.1",
        "--tower-epochs", "1", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "fine-tuned item tower not used: its items are all alike" in result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["item_tower"] == "pretrained"
    assert set(meta["item_tower_validation_ndcg10"]) == {"pretrained"}
    assert (
        meta["item_tower_collapsed"]["fine-tuned"]
        > 0.9
        > meta["item_tower_collapsed"]["pretrained"]
    )


def test_demo_on_port_zero_prints_the_port_it_serves_on(monkeypatch):
    import tunesmith.ui.launch as launching
    import tunesmith_recommend.demo as demo

    served = {}
    monkeypatch.setattr(demo, "build_demo", lambda model_dir: "blocks")
    monkeypatch.setattr(launching, "launch", lambda blocks, *, host, port: served.update(port=port))
    result = run("recommend", "demo", "--port", "0")
    assert result.exit_code == 0, result.output
    assert ":0/" not in result.output
    assert served["port"] > 0 and f"http://127.0.0.1:{served['port']}/" in result.output


def test_eval_text_says_a_slice_without_test_requests_is_empty_not_nan():
    from tunesmith_recommend.cli import report_table, summary_line

    nan = float("nan")
    row = {"ndcg10": 0.1, "ndcg10_ci": [0.05, 0.15], "recall10": 0.2,
           "recall10_ci": [0.1, 0.3], "mrr": 0.08, "coverage": 0.5}  # fmt: skip
    models = {"final_ranker": {"all": row, "cold_items": {"recall10": nan},
                               "short_users": {"ndcg10": nan}}}  # fmt: skip
    table = report_table(models)
    assert "nan" not in table and table.splitlines()[1].split()[-2:] == ["-", "-"]
    report = {"ndcg10": 0.1, "best_baseline": "popularity", "ndcg10_best_baseline": 0.09,
              "cold_recall10": nan, "random_recall10": 0.07}  # fmt: skip
    assert summary_line(report).endswith("no cold item among the test requests")
    report["cold_recall10"] = 0.25
    assert summary_line(report).endswith("cold-item Recall@10 0.2500 (random 0.0700)")
