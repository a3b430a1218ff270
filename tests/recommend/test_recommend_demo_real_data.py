"""The recommend demo on a real catalogue (MovieTweetings: thousands of users and films,
numeric ids, titles with markup), not the 60 sample viewers; no model is loaded here."""

from __future__ import annotations

import json
from types import SimpleNamespace

import gradio as gr
import pytest

from tunesmith_recommend import demo


def write_model_lists(folder, histories, titles, meta=None):
    """The two files the page's dropdowns are read from (and ``meta``, a meta.json)."""
    folder.mkdir()
    if meta is not None:
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    (folder / "histories.json").write_text(json.dumps(histories), encoding="utf-8")
    ids = [f"{i:07d}" for i in range(len(titles))]
    catalogue = {"ids": ids, "titles": titles, "texts": titles}
    (folder / "catalogue.json").write_text(json.dumps(catalogue), encoding="utf-8")
    return str(folder)


def test_users_are_listed_by_number_with_how_many_films_they_liked(tmp_path):
    histories = {"10058": ["0000000"], "1007": ["0000000", "0000001"], "104": ["0000001"]}
    # trained as on MovieTweetings with --min-rating 7: the history is what users liked
    model = write_model_lists(tmp_path / "m", histories, ["Argo", "Flight"], {"min_rating": 7})
    users, _items = demo.choices(model)
    # Sorted as text, "1007" came after "10058", and nothing told users apart.
    assert users == [
        ("104 (1 liked)", "104"),
        ("1007 (2 liked)", "1007"),
        ("10058 (1 liked)", "10058"),
    ]


def test_a_large_catalogue_lists_its_most_liked_films_and_most_active_users(tmp_path, monkeypatch):
    # 35,479 films in a dropdown kept the page blank for 14 s (10,000: 1.8 s).
    monkeypatch.setattr(demo, "MAX_CHOICES", 3)
    titles = [f"Film {i}" for i in range(8)]
    histories = {
        "u1": ["0000005", "0000006", "0000007"],
        "u2": ["0000006", "0000007"],
        "u3": ["0000007"],
        "u4": ["0000007"],
    }
    model = write_model_lists(tmp_path / "m", histories, titles)
    users, items = demo.choices(model)
    assert [value for _, value in users] == ["u1", "u2", "u3"]
    assert [value for _, value in items] == ["0000005", "0000006", "0000007"]
    page = demo.build_demo(model)
    boxes = {b.label: b for b in page.blocks.values() if isinstance(b, gr.Dropdown)}
    # "Items": these lists hold no meta.json saying what the items are (train --item-noun)
    films = next(b for label, b in boxes.items() if label.startswith("Items you liked"))
    user = next(b for label, b in boxes.items() if label.startswith("User"))
    assert "type any other's id or title" in films.label
    assert films.allow_custom_value and user.allow_custom_value  # the others can be typed


class Catalogue:
    """Stands in for a loaded model of a few films (ids as in MovieTweetings)."""

    ids = ["0094336", "1024648", "1707386", "0122151"]
    titles = ["Withnail &amp; I", "Argo", "Les Misérables", "Les Misérables"]
    texts = [
        "Withnail &amp; I. 1987. Comedy, Drama",
        "Argo. 2012. Biography, Drama, Thriller",
        "Les Misérables. 2012. Drama, Musical",
        "Les Misérables. 1998. Crime, Drama, History",
    ]
    position = {item: i for i, item in enumerate(ids)}
    histories = {"37287": ["1024648", "0094336"]}
    rated_below = {"555": ["1024648"]}
    meta = {"min_rating": 7}  # trained with --min-rating 7: the history is what users liked

    def __init__(self):
        self.liked = None

    def result(self, item):
        return SimpleNamespace(
            item_id=item, title=self.titles[self.position[item]], score=3.25, because=[]
        )

    def for_liked(self, liked, k):
        self.liked = liked
        return [self.result("1707386"), self.result("0122151")]

    def positions(self, items):
        return [self.position[i] for i in items]

    def for_user(self, user, k):
        from tunesmith_recommend.model import Recommender

        Recommender.history_of(self, user)  # the model's own refusal of an unknown user
        return [self.result("1707386")]


@pytest.fixture
def catalogue(monkeypatch):
    model = Catalogue()
    monkeypatch.setattr(demo, "recommender_for", lambda model_dir: model)
    return model


def test_a_typed_film_is_found_by_its_id_title_or_label(catalogue):
    typed = [" argo ", "0094336", "Les Misérables [0122151]"]
    markdown, _ = demo.recommend("m", demo.MODES[1], None, typed, "", False)
    assert catalogue.liked == ["1024648", "0094336", "0122151"]
    assert markdown.startswith("### For someone who liked Argo, Withnail")
    markdown, _ = demo.recommend("m", demo.MODES[1], None, ["Casablanca"], "", False)
    assert markdown == "**No item with the id or title 'Casablanca' in this model's catalogue.**"


def test_a_user_the_model_does_not_know_is_told_what_to_do_in_the_pages_words(catalogue):
    for user, why in (("99999", "is not a user of this model"), ("555", "rated every item")):
        markdown, _ = demo.recommend("m", demo.MODES[0], user, None, "", False)
        # The model's own message named the command line's --liked ITEM and --query TEXT.
        assert why in markdown and "--liked" not in markdown and "--query" not in markdown
        assert "“Liked items” or “A description”" in markdown  # no --item-noun


def test_the_list_says_who_the_user_is_and_what_each_film_and_score_is(catalogue):
    markdown, _ = demo.recommend("m", demo.MODES[0], "37287", None, "", False)
    heading, _, body = markdown.partition("\n")
    # "For 37287" alone: nothing to judge the list by. Newest liked film first.
    assert heading == "### For 37287, who liked Withnail &amp;amp; I, Argo"
    # Two films of one title told apart by their year; the score named and explained.
    assert "**Les Misérables** `1707386` · score 3.250<br>2012. Drama, Musical" in body
    assert demo.SCORE_NOTE in body


def test_the_heading_names_a_few_liked_films_and_counts_the_others():
    model = SimpleNamespace(
        titles=[f"Film {i}" for i in range(40)], position={f"f{i}": i for i in range(40)}
    )
    named = demo.named(model, [f"f{i}" for i in range(40)])
    # Forty liked films made a heading of forty titles above the list.
    assert named == "Film 0, Film 1, Film 2, Film 3, Film 4 and 35 more"


def test_an_empty_list_says_so():
    # A user who has seen every film got a heading over nothing.
    assert "No recommendations" in demo.results_markdown([], "For 37287")
