"""What the demo calls an item (the model's --item-noun, not always "films"), and titles with
HTML entities (MovieTweetings' ``Withnail &amp; I``) read as the text they stand for."""

from __future__ import annotations

import json
from types import SimpleNamespace

import gradio as gr
import pytest
from typer.testing import CliRunner

from tunesmith.errors import UserInputError
from tunesmith_recommend import demo
from tunesmith_recommend.data import load_items
from tunesmith_recommend.model import item_noun_meta, item_nouns


class Books:
    """Stands in for a loaded model of two books."""

    ids = ["b1", "b2"]
    titles = ["Middlemarch", "Persuasion"]
    texts = ["Middlemarch. A provincial town.", "Persuasion. A second chance."]
    position = {"b1": 0, "b2": 1}
    histories = {"u1": ["b1"]}
    rated_below = {"u2": ["b1"]}

    def for_liked(self, liked, k):
        return []


def write_model(folder, meta):
    """A model directory with what the page reads before loading a model."""
    folder.mkdir()
    (folder / "histories.json").write_text(json.dumps(Books.histories), encoding="utf-8")
    catalogue = {"ids": Books.ids, "titles": Books.titles, "texts": Books.texts}
    (folder / "catalogue.json").write_text(json.dumps(catalogue), encoding="utf-8")
    if meta is not None:
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return str(folder)


def page_words(model_dir):
    """The labels of the page's mode choice, liked-items box and explain checkbox."""
    page = demo.build_demo(model_dir)
    blocks = list(page.blocks.values())
    radio = next(b for b in blocks if isinstance(b, gr.Radio))
    liked = next(b for b in blocks if isinstance(b, gr.Dropdown) and b.multiselect)
    check = next(b for b in blocks if isinstance(b, gr.Checkbox))
    markdown = next(b for b in blocks if isinstance(b, gr.Markdown))
    return [label for label, _ in radio.choices], liked.label, check.label, markdown.value


def test_the_demo_names_items_as_the_models_meta_json_says(tmp_path, monkeypatch):
    # A model trained on books said "Liked films", "Films you liked" and "No film with ...".
    model = write_model(tmp_path / "books", item_noun_meta("book"))
    monkeypatch.setattr(demo, "recommender_for", lambda model_dir: Books())
    modes, liked, check, intro = page_words(model)
    assert modes == ["A user", "Liked books", "A description"]
    assert liked == "Books you liked" and check.startswith("Show which words of the first book")
    assert "Recommends books from their text" in intro
    say = lambda *args: demo.recommend(model, *args, "", False)[0]  # noqa: E731
    assert say(demo.MODES[1], None, []) == "**Choose at least one book you liked.**"
    assert "No book with the id or title 'Emma'" in say(demo.MODES[1], None, ["Emma"])
    assert "rated every book below" in say(demo.MODES[0], "u2", None)
    assert "“Liked books” or “A description”" in say(demo.MODES[0], "u9", None)
    assert "all the books are already among" in say(demo.MODES[1], None, ["b1"])
    assert "film" not in " ".join([*modes, liked, check, intro]).lower()


def test_a_model_that_does_not_say_what_its_items_are_calls_them_items(tmp_path, monkeypatch):
    model = write_model(tmp_path / "old", None)  # trained before --item-noun
    monkeypatch.setattr(demo, "recommender_for", lambda model_dir: Books())
    modes, liked, _check, _intro = page_words(model)
    assert modes[1] == "Liked items" and liked == "Items you liked"
    assert demo.recommend(model, demo.MODES[1], None, [], "", False)[0] == (
        "**Choose at least one item you liked.**"
    )
    # The sample data's items are films.
    assert demo.nouns(None) == ("film", "films")


@pytest.mark.parametrize(
    "value, words",
    [("book", ("book", "books")), (" series / series ", ("series", "series")),
     ("box/boxes", ("box", "boxes"))],
)  # fmt: skip
def test_an_item_noun_is_a_word_or_a_singular_and_plural(value, words):
    assert item_nouns(item_noun_meta(value)) == words


@pytest.mark.parametrize("value", ["", " / ", "a/b/c", "line\nbreak", "x" * 41])
def test_an_item_noun_that_cannot_label_the_page_is_refused(value):
    with pytest.raises(UserInputError, match="--item-noun"):
        item_noun_meta(value)


def test_train_stores_the_item_noun_in_meta_json(tmp_path, monkeypatch):
    from tunesmith.cli import build_app
    from tunesmith_recommend import model, pipeline

    saved = {}
    fitted = SimpleNamespace(
        val_ndcg=0.5, ranker=SimpleNamespace(weights={}), item_tower="pretrained",
        tower_scores={}, collapsed_tower=None,
    )  # fmt: skip
    monkeypatch.setattr(pipeline, "fit", lambda *args, **kwargs: fitted)
    monkeypatch.setattr(model, "save", lambda f, out, extra_meta=None: saved.update(extra_meta))
    app = build_app()
    args = ["recommend", "train", "--sample", "--no-fine-tune", "--out"]
    result = CliRunner().invoke(app, [*args, str(tmp_path / "a"), "--item-noun", "book"])
    assert result.exit_code == 0, result.output
    # min_rating: none given (the history is every event, not what users liked)
    assert saved == {"item_noun": "book", "item_noun_plural": "books", "min_rating": None}
    result = CliRunner().invoke(app, [*args, str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert saved == {
        "item_noun": "film",
        "item_noun_plural": "films",
        "min_rating": None,
    }  # the sample's films
    result = CliRunner().invoke(app, [*args, str(tmp_path / "c"), "--item-noun", "a/b/c"])
    assert result.exit_code != 0 and "--item-noun 'a/b/c'" in result.output
    assert not (tmp_path / "c").exists()


def test_html_entities_in_titles_and_texts_are_read_as_text_and_shown_escaped(tmp_path):
    # MovieTweetings stores "Withnail &amp; I": the demo showed "Withnail &amp; I" and the
    # encoder read "amp".
    items = tmp_path / "items.csv"
    items.write_text(
        "item_id,title,genres\n"
        "a&amp;1,Withnail &amp; I,Comedy&#124;Drama\n"
        "2,&lt;b&gt;x&lt;/b&gt;&nbsp;,Drama\n",
        encoding="utf-8",
    )
    catalogue = load_items(items, text_cols=["genres"])
    assert catalogue.ids == ["a&amp;1", "2"]  # ids as the events name them
    assert catalogue.titles == ["Withnail & I", "<b>x</b>"]
    assert catalogue.texts == ["Withnail & I. Comedy, Drama", "<b>x</b>. Drama"]
    results = [
        SimpleNamespace(item_id=i, title=t, score=1.0, because=[])
        for i, t in zip(catalogue.ids, catalogue.titles, strict=True)
    ]
    shown = demo.results_markdown(results, "For you")
    # Shown as text: markup escaped once, never run, and no "&amp;amp;".
    assert "**Withnail &amp; I**" in shown and "amp;amp" not in shown
    assert "**&lt;b&gt;x&lt;/b&gt;**" in shown and "<b>" not in shown


def test_the_demo_intro_says_what_users_liked_only_of_a_model_trained_with_min_rating(
    tmp_path, monkeypatch
):
    # A books model trained without --min-rating (every rating counted, a 1 too) opened with
    # "Recommends books from their text and what users liked".
    monkeypatch.setattr(demo, "recommender_for", lambda model_dir: Books())
    every = write_model(tmp_path / "every", {**item_noun_meta("book"), "min_rating": None})
    intro = page_words(every)[3]
    assert "Recommends books from their text and users' histories" in intro
    assert "liked" not in intro
    rated = write_model(tmp_path / "rated", {**item_noun_meta("book"), "min_rating": 4})
    assert "Recommends books from their text and what users liked" in page_words(rated)[3]
    # The sample's films: every event counts, as its "who watched" heading says.
    assert "Recommends films from their text and what users watched" in page_words(None)[3]
