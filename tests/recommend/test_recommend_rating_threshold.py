"""Training on ratings with --rating-col/--min-rating, as on MovieTweetings: items a user rated
below the threshold are not positive events, but the user has seen them. Models are tiny and
built in-process (nothing is downloaded)."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from tunesmith_recommend.data import load_events, load_items, sample_paths

MIN_RATING = 4


def run(*args):
    from tunesmith.cli import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def rated(tiny_model, tmp_path_factory):
    """A model trained on the sample's ratings of 4 or more, plus a user who rated two films 1."""
    base = tmp_path_factory.mktemp("rated")
    events = base / "events.csv"
    text = sample_paths()["events"].read_text(encoding="utf-8").rstrip("\n")
    events.write_text(
        text + "\ngrumpy,f001,1,2026-01-05T10:00:00Z\ngrumpy,f002,1,2026-01-06T10:00:00Z\n",
        encoding="utf-8",
    )
    out = base / "model"
    result = run(
        "recommend", "train", "--items", sample_paths()["items"], "--events", events,
        "--rating-col", "rating", "--min-rating", MIN_RATING, "--model", tiny_model,
        "--no-fine-tune", "--tower-epochs", "1", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return events, out


def test_events_keep_each_users_items_rated_below_the_threshold():
    catalogue = load_items(sample_paths()["items"])
    found = load_events(
        sample_paths()["events"], catalogue, rating_col="rating", min_rating=MIN_RATING
    )
    with open(sample_paths()["events"], encoding="utf-8") as handle:
        low = [r for r in csv.DictReader(handle) if float(r["rating"]) < MIN_RATING]
    assert sum(len(items) for items in found.rated_below.values()) == len(low) > 0
    first = low[0]
    assert catalogue.position[first["item_id"]] in found.rated_below[first["user_id"]]


def test_for_user_never_recommends_an_item_the_user_rated_below_the_threshold(rated):
    # Only ratings at or above --min-rating were kept, so a film a user had rated 1 of 5 was
    # recommended back to them (on MovieTweetings at 7 of 10: 179 of 945 such users, top 10).
    from tunesmith_recommend.model import Recommender

    events, out = rated
    recommender = Recommender(out)
    with open(events, encoding="utf-8") as handle:
        low: dict[str, set[str]] = {}
        for row in csv.DictReader(handle):
            if float(row["rating"]) < MIN_RATING:
                low.setdefault(row["user_id"], set()).add(row["item_id"])
    checked = 0
    for user, items in low.items():
        if user not in recommender.histories:
            continue
        # -k as large as the catalogue: every item that may be recommended is listed
        listed = {r.item_id for r in recommender.for_user(user, k=len(recommender.ids))}
        assert not items & listed, user
        assert listed  # the rest of the catalogue is still there
        checked += 1
    assert checked > 10
    saved = json.loads((out / "rated_below.json").read_text(encoding="utf-8"))
    assert {user: set(items) for user, items in saved.items()} == low


def test_a_user_who_rated_everything_below_the_threshold_is_told_so(rated):
    _, out = rated
    result = run("recommend", "for-user", "grumpy", "-m", out)
    assert result.exit_code == 2
    assert "rated every item below --min-rating" in result.output
    assert "--liked ITEM" in result.output
