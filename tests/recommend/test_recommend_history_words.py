"""A user's history is called "liked" only when the model was trained with --min-rating: without
one every event counts, a 1-star rating too (the sample's u01 rated all ten of its films 1-3 of 5
and the demo said "who liked" them). Models are tiny and built in-process (nothing is
downloaded)."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from tunesmith_recommend import demo
from tunesmith_recommend.data import sample_paths

#: One torch thread (also while the module's models are built): the ranker's fit, most of a
#: sample training, took ten times as long on two threads of a busy shared CPU.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(*args):
    from tunesmith.cli import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def sample_model(tiny_model, tmp_path_factory, one_torch_thread):
    """The demo's own sample model (every event counts), built with the tiny encoder."""
    return demo.build_sample_model(tmp_path_factory.mktemp("words") / "sample", model=tiny_model)


@pytest.fixture(scope="module")
def rated_model(tiny_model, tmp_path_factory, one_torch_thread):
    """The sample trained by the CLI on ratings of 4 or more."""
    out = tmp_path_factory.mktemp("words") / "rated"
    result = run(
        "recommend", "train", "--sample", "--rating-col", "rating", "--min-rating", 4,
        "--model", tiny_model, "--no-fine-tune", "--tower-epochs", 1, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def meta_of(model_dir):
    return json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))


def with_meta(model_dir, tmp_path, **changes):
    """A copy of ``model_dir`` whose meta.json has ``changes`` (None: the key removed)."""
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    meta = meta_of(copy)
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    (copy / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return copy


def test_sample_users_low_rated_films_are_called_watched_not_liked(sample_model):
    with open(sample_paths()["events"], encoding="utf-8") as handle:
        ratings = [line.split(",")[2] for line in handle if line.startswith("u01,")]
    assert ratings and all(int(r) <= 3 for r in ratings)  # u01 liked none of them
    assert meta_of(sample_model)["min_rating"] is None
    markdown, _ = demo.recommend(str(sample_model), demo.MODES[0], "u01", None, "", False)
    assert markdown.startswith("### For u01, who watched ")
    assert "because you watched" in markdown and "liked" not in markdown
    users, _ = demo.choices(str(sample_model))
    assert ("u01 (10 watched)", "u01") in users


def test_items_the_user_names_as_liked_are_still_called_liked(sample_model):
    markdown, _ = demo.recommend(str(sample_model), demo.MODES[1], None, ["f001"], "", False)
    assert markdown.startswith("### For someone who liked ")
    assert "because you liked" in markdown


def test_a_model_trained_with_min_rating_keeps_liked(rated_model):
    assert meta_of(rated_model)["min_rating"] == 4
    histories = json.loads((rated_model / "histories.json").read_text(encoding="utf-8"))
    user = max(histories, key=lambda u: len(histories[u]))  # rated films 4 or 5
    result = run("recommend", "for-user", user, "-m", rated_model, "-k", 3)
    assert result.exit_code == 0, result.output
    assert "because you liked" in result.stdout
    markdown, _ = demo.recommend(str(rated_model), demo.MODES[0], user, None, "", False)
    assert markdown.startswith(f"### For {user}, who liked ") and "because you liked" in markdown
    users, _ = demo.choices(str(rated_model))
    assert (f"{user} ({len(histories[user])} liked)", user) in users


def test_cli_for_user_without_min_rating_says_watched_for_films(sample_model):
    result = run("recommend", "for-user", "u01", "-m", sample_model, "-k", 3)
    assert result.exit_code == 0, result.output
    assert "because you watched" in result.stdout and "liked" not in result.stdout
    # --liked names what the user liked: true there
    result = run("recommend", "for-user", "-m", sample_model, "--liked", "f001", "-k", 3)
    assert "because you liked" in result.stdout


def test_other_items_and_models_saved_before_min_rating_get_neutral_words(sample_model, tmp_path):
    # no min_rating key (saved before it was recorded) and items of no particular kind
    old = with_meta(sample_model, tmp_path, min_rating=None, item_noun=None, item_noun_plural=None)
    result = run("recommend", "for-user", "u01", "-m", old, "-k", 3)
    assert result.exit_code == 0, result.output
    assert "in your history" in result.stdout and "liked" not in result.stdout
    markdown, _ = demo.recommend(str(old), demo.MODES[0], "u01", None, "", False)
    assert markdown.startswith("### For u01, whose history has ")
    assert "because of *" in markdown and "liked" not in markdown
    users, _ = demo.choices(str(old))
    assert ("u01 (10 in history)", "u01") in users


def test_train_without_min_rating_records_none(tiny_model, tmp_path):
    out = tmp_path / "plain"
    result = run(
        "recommend", "train", "--sample", "--model", tiny_model, "--no-fine-tune",
        "--tower-epochs", 1, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = meta_of(out)
    assert "min_rating" in meta and meta["min_rating"] is None
