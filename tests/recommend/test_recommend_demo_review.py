"""The recommend demo's handler after a review in a real browser (no browser here: fast)."""

from __future__ import annotations

import html
from types import SimpleNamespace

import pytest

from tunesmith.errors import UserInputError
from tunesmith_recommend import demo

LINKS = ("http://", "https://", "www.", "@")


def _rendered(markdown: str) -> str:
    """What the page shows for escaped text: entities decoded, Markdown backslashes dropped."""
    return html.unescape(markdown).replace("\\", "")


class FakeRecommender:
    """Stands in for a loaded model: records the queries, answers with one film."""

    titles = ["Visit www.fog.example or mail me@fog.example"]
    position = {"f1": 0}

    def __init__(self):
        self.queries = []

    def for_query(self, text, k):
        self.queries.append(text)
        if "\ud800" in text:  # what the tokenizer does with a lone surrogate
            raise TypeError("TextEncodeInput must be Union[TextInputSequence, ...]")
        return [SimpleNamespace(item_id="f1", title=self.titles[0], score=1.0, because=[])]

    def for_liked(self, liked, k):
        self.liked = liked
        return [SimpleNamespace(item_id="f1", title="Fog", score=1.0, because=[])]


@pytest.fixture
def fake(monkeypatch):
    recommender = FakeRecommender()
    monkeypatch.setattr(demo, "recommender_for", lambda model_dir: recommender)
    return recommender


def test_a_typed_url_is_shown_as_typed_not_made_a_link(fake):
    # Gradio's Markdown made http://, www. and e-mail addresses links even when escaped: the
    # heading showed "http://example.com/a\_b\(c\)" as a link (backslashes included), and the
    # closing quote went into the www. link.
    typed = "see http://example.com/a_b(c) or www.evil.com, mail a@b.co"
    markdown, _ = demo.recommend(None, demo.MODES[2], None, None, typed, False)
    heading, _, body = markdown.partition("\n")
    for marker in LINKS:
        assert marker not in heading and marker not in body
    assert _rendered(heading) == f"### For “{typed}”"
    assert "Visit www.fog.example or mail me@fog.example" in _rendered(body)


def test_titles_and_reasons_make_no_links_either():
    rec = SimpleNamespace(
        title="http://x.example",
        item_id="f1",
        score=1.0,
        because=[{"title": "www.y.example", "share": 1.0}],
    )
    text = demo.results_markdown([rec], "For u01")
    assert not any(marker in text for marker in LINKS)
    assert "**http://x.example**" in _rendered(text)
    assert "*www.y.example* (100%)" in _rendered(text)


def test_an_empty_description_is_a_message_and_builds_no_model(monkeypatch):
    # It built (or loaded) the model first, so an empty box on a first visit waited for the
    # sample model and then said "the query text is empty".
    def no_model(model_dir):
        raise AssertionError("no model is needed to refuse an empty description")

    monkeypatch.setattr(demo, "recommender_for", no_model)
    for text in ("", "   \n ", None):
        markdown, words = demo.recommend(None, demo.MODES[2], None, None, text, True)
        assert markdown.startswith("**Describe what you want") and words is None


def test_a_lone_surrogate_in_the_description_is_a_message_not_a_crash(fake):
    markdown, words = demo.recommend(None, demo.MODES[2], None, None, "fog \ud800 lake", False)
    assert "lone surrogate" in markdown and words is None
    assert fake.queries == []  # refused before the encoder


def test_a_model_that_cannot_be_read_is_a_message_in_the_page(monkeypatch):
    # recommender_for ran outside the try: a broken model directory was a bare red "Error".
    def broken(model_dir):
        raise UserInputError(f"{model_dir} is not a recommend model directory")

    monkeypatch.setattr(demo, "recommender_for", broken)
    markdown, words = demo.recommend("<b>dir</b>", demo.MODES[1], None, ["f1"], "", False)
    assert markdown == "**&lt;b&gt;dir&lt;/b&gt; is not a recommend model directory**"
    assert words is None


def test_the_page_is_usable_after_an_error(fake):
    bad, _ = demo.recommend(None, demo.MODES[1], None, [], "", False)
    assert bad == "**Choose at least one film you liked.**"
    good, _ = demo.recommend(None, demo.MODES[1], None, ["f1"], "", False)
    assert good.startswith("### For someone who liked Visit")


def test_a_request_repeating_one_liked_film_is_read_as_that_film_once(fake):
    # The page's box cannot repeat a film, but a request to the server can, as often as it likes.
    markdown, _ = demo.recommend(None, demo.MODES[1], None, ["f1"] * 100_000, "", False)
    assert fake.liked == ["f1"]
    assert len(markdown) < 500


def test_the_word_box_is_hidden_until_asked_for():
    import gradio as gr

    blocks = demo.build_demo()
    boxes = [b for b in blocks.blocks.values() if isinstance(b, gr.HighlightedText)]
    assert len(boxes) == 1 and boxes[0].visible is False
    checkbox = next(b for b in blocks.blocks.values() if isinstance(b, gr.Checkbox))
    toggles = [
        d
        for d in blocks.config["dependencies"]
        if any(t[0] == checkbox._id for t in d["targets"]) and boxes[0]._id in d["outputs"]
    ]
    assert len(toggles) == 1
