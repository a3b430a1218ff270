"""The recommendation demo: pick a user, or name liked items, or describe what you want.

Without a model directory it builds one from the sample films on first use, with the pretrained
encoder as the item tower (no fine-tuning, so it is ready in well under a minute), and keeps it
under :func:`tunesmith.ui.core_demos.demo_models_dir`. Nothing heavy happens in ``build_demo``.

Items are named as the model's ``meta.json`` says (``train --item-noun``: "books"), "items" when
it does not; the sample data's are films.
"""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path
from typing import Any

from tunesmith.ui.markdown import code_span, markdown_box
from tunesmith.ui.markdown import plain_markdown as plain

DESCRIPTION = "Recommends items from their text and what users liked, with the reasons."
#: The page's first line, naming the items and their histories as the model does (``source``:
#: :attr:`tunesmith_recommend.model.HistoryWords.source`).
INTRO = "Recommends {many} from their text and {source}, with the reasons."
#: The modes' values (what a request sends); the page labels the second with the model's noun
#: (:func:`mode_label`). Neutral: a bookshop's requests said "Liked films".
MODES = ("A user", "Liked items", "A description")
#: The second mode's value before it was neutral, still understood (a client of the page's API).
OLD_LIKED_MODE = "Liked films"
#: The description box's examples for a model of films (the sample's): its placeholder, and the
#: one an empty description is asked for with. Other items get examples naming them
#: (:func:`description_examples`): a bookshop was offered "space operas" and "a haunted lake".
FILM_EXAMPLES = ("space operas with a strong female lead", "a haunted lake")
#: What the sample data's items are (a model trained without --item-noun: ``model.ITEM_NOUN``).
SAMPLE_NOUNS = ("film", "films")
#: Longest description quoted back in the results heading (the whole text is still used).
HEADING_CHARS = 200
#: Liked films named in the results heading; the others are counted ("and 35 more").
HEADING_TITLES = 5
#: Users and films offered in a dropdown at most (the most active users, the most liked films);
#: any other is typed by its id. Gradio's page took 1.8 s to open with 10,000 films and 14 s with
#: MovieTweetings' 35,479, blank all along.
MAX_CHOICES = 5000
#: Characters of an item's text shown under its title.
DETAIL_CHARS = 90
#: What the number next to each recommendation is.
SCORE_NOTE = (
    "**Score:** the ranker's weighted sum of the item's signals (text match, taste, "
    "popularity); it has no unit: higher ranks first, and it compares items within this list "
    "only."
)

_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def nouns(model_dir: str | None) -> tuple[str, str]:
    """(singular, plural) of what the model's items are: its ``meta.json``'s (``train
    --item-noun``), "item" for a model that does not say, "film" for the sample's. Read cheaply
    (no model loaded); a directory that cannot be read says "item" here and is refused when the
    model is loaded."""
    from tunesmith_recommend.model import item_nouns

    return item_nouns(model_meta(model_dir))


def model_meta(model_dir: str | None) -> dict[str, Any] | None:
    """The model's ``meta.json`` read cheaply (no model loaded), the sample model's words
    without a directory, None when it cannot be read (refused when the model is loaded)."""
    if not model_dir:
        # What build_sample_model records: films, every event counted (so "watched").
        return {"item_noun": SAMPLE_NOUNS[0], "item_noun_plural": SAMPLE_NOUNS[1]}
    from tunesmith.errors import TunesmithError
    from tunesmith.io import read_json_object

    try:
        return read_json_object(Path(model_dir) / "meta.json")
    except (OSError, TunesmithError):
        return None


def description_examples(one: str) -> tuple[str, str]:
    """(placeholder, message for an empty description) in the words of the model's items: the
    film examples for films, movies, shows, ... (``model.WATCHED_NOUNS``), else words that name
    the item ("what the book should be about")."""
    from tunesmith_recommend.model import WATCHED_NOUNS

    if one.casefold() in WATCHED_NOUNS:
        return FILM_EXAMPLES[0], f"Describe what you want, for example “{FILM_EXAMPLES[1]}”."
    return (
        f"what the {one} should be about, in a few words",
        f"Describe what you want: what the {one} should be about, in a few words.",
    )


def mode_label(mode: str, many: str) -> str:
    """What the page calls a mode: "Liked books" for a model of books."""
    return f"Liked {many}" if mode == MODES[1] else mode


def sample_model_dir() -> Path:
    """Where the demo keeps the model it builds from the sample data."""
    from tunesmith.ui.core_demos import demo_models_dir

    return demo_models_dir() / "recommend-sample"


def build_sample_model(out: Path, model: str = "default") -> Path:
    """Fit the sample data with the pretrained encoder (no baselines) and save it atomically."""
    from tunesmith.io import atomic_directory
    from tunesmith_recommend import model as model_files
    from tunesmith_recommend.data import load_events, load_items, sample_paths
    from tunesmith_recommend.pipeline import Settings, fit

    paths = sample_paths()
    catalogue = load_items(paths["items"])
    events = load_events(paths["events"], catalogue)
    settings = Settings(model=model, fine_tune=False, baselines=False)
    with atomic_directory(out, force=True) as tmp:
        fitted = fit(catalogue, events, tmp, settings, say=lambda _: None)
        # min_rating None: every sample event counts, a 1-star rating too (so "watched")
        meta = {**model_files.item_noun_meta("/".join(SAMPLE_NOUNS)), "min_rating": None}
        model_files.save(fitted, tmp, extra_meta=meta)
    return out


def recommender_for(model_dir: str | None) -> Any:
    """The model to answer one request from (built from the sample data first when none is
    given): loaded once per process, then again, off the request path, whenever its folder is
    rewritten (``add-events``, ``add-items``, ``train --force``): a request that notices starts
    the load in the background and is answered, as the requests after it, from the version
    loaded before until the new one is ready (``tunesmith.reloading``, as ``load`` serves)."""
    return versions_for(model_dir).get()


def versions_for(model_dir: str | None) -> Any:
    """The :class:`~tunesmith.reloading.Reloading` holding ``model_dir``'s model (the sample's
    for None), made and loaded on first use."""
    from tunesmith_recommend.reload import model_versions

    key = model_dir or ""
    with _lock:
        if key not in _loaded:
            path = Path(model_dir) if model_dir else sample_model_dir()
            if not model_dir and not (path / "meta.json").exists():
                build_sample_model(path)
            _loaded[key] = model_versions(path, "cpu")
        return _loaded[key]


def _natural(value: str) -> tuple[Any, ...]:
    """Sort key reading runs of digits as numbers: user ``104`` before ``1007``, not after."""
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", value))


def choices(model_dir: str | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(users, items) as (label, value) pairs, read cheaply without loading any model.

    For a trained model: users in the order of their ids read as numbers (they were sorted as
    text, "1007" after "10058"), each with the number of films they liked (nothing told a
    one-film user from a forty-film one), and at most :data:`MAX_CHOICES` of each: the most
    active users and the most liked films. The count is "liked" only for a model trained with
    --min-rating (:func:`tunesmith_recommend.model.history_words`)."""
    if model_dir:
        from tunesmith.errors import UserInputError
        from tunesmith_recommend.model import history_words, read_catalogue

        base = Path(model_dir)
        try:
            histories = json.loads((base / "histories.json").read_text(encoding="utf-8"))
            # Both parts: the items added since the catalogue was written whole too.
            catalogue = read_catalogue(base)
            items = list(zip(catalogue.titles, catalogue.ids, strict=True))
            liked = {u: len(h) for u, h in histories.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            # The words Recommender uses for a directory that is not one of its models.
            raise UserInputError(
                f"{base} is not a recommend model directory "
                "(make one with `tunesmith recommend train`)"
            ) from None
        users = sorted(liked, key=lambda u: (-liked[u], _natural(u)))[:MAX_CHOICES]
        users.sort(key=_natural)
        if len(items) > MAX_CHOICES:
            likes: dict[str, int] = {}
            for history in histories.values():
                for item in history:
                    likes[item] = likes.get(item, 0) + 1
            kept = set(sorted(likes, key=lambda i: -likes[i])[:MAX_CHOICES])
            for _title, item in items:  # too few liked films: fill up in catalogue order
                if len(kept) >= MAX_CHOICES:
                    break
                kept.add(item)
            items = [(t, i) for t, i in items if i in kept]
        count = history_words(model_meta(model_dir)).count
        user_choices = [(f"{u} ({liked[u]} {count})", u) for u in users]
        return user_choices, [(f"{t} [{i}]", i) for t, i in items]
    from tunesmith_recommend.data import sample_paths

    paths = sample_paths()
    with paths["users"].open(encoding="utf-8") as handle:
        users = [
            (
                f"{r['user_id']} (likes {r['favourite_genres'].replace('|', ' and ')}; "
                f"{r['favourite_theme']})",
                r["user_id"],
            )
            for r in csv.DictReader(handle)
        ]
    with paths["items"].open(encoding="utf-8") as handle:
        items = [
            (f"{r['title']} ({r['genres'].replace('|', ', ')})", r["item_id"])
            for r in csv.DictReader(handle)
        ]
    return users, items


def detail(title: str, text: str) -> str:
    """What an item's text says besides its title (year, genres, description), cut to
    :data:`DETAIL_CHARS`: a title alone does not tell the 2012 *Les Misérables* from the 1998
    one, nor why a film matched a description."""
    rest = text[len(title) :].lstrip(". ") if title and text.startswith(title) else text
    rest = " ".join(rest.split())
    if len(rest) > DETAIL_CHARS:
        rest = rest[:DETAIL_CHARS].rstrip() + "…"
    return rest


def results_markdown(
    results: list[Any],
    heading: str,
    details: dict[str, str] | None = None,
    many: str = "items",
    because: str = "because you liked {}",
) -> str:
    """A numbered list with each item's score and reason (``heading`` is Markdown; titles and
    ids are escaped here: they come from whatever catalogue the model was trained on);
    ``details``: a line of text under each item, by id; ``many``: what the items are;
    ``because``: a reason's words, ``{}`` the titles (``model.history_words``)."""
    lines = [f"### {heading}", ""]
    if not results:
        lines.append(
            f"_No recommendations: all the {plain(many)} are already among the liked or seen ones._"
        )
    for rank, rec in enumerate(results, start=1):
        reason = ""
        if rec.because:
            from tunesmith_recommend.explain import percents

            shown = percents([b["share"] for b in rec.because])
            liked = ", ".join(
                f"*{plain(b['title'])}* ({pct}%)" for b, pct in zip(rec.because, shown, strict=True)
            )
            reason = " — " + because.format(liked)
        code = code_span(rec.item_id)
        line = f"{rank}. **{plain(rec.title)}** {code} · score {rec.score:.3f}{reason}"
        if (details or {}).get(rec.item_id):
            line += f"<br>{plain(details[rec.item_id])}"
        lines.append(line)
    if results:
        lines += ["", SCORE_NOTE]
    return "\n".join(lines)


def recommend(
    model_dir: str | None,
    mode: str,
    user: str | None,
    liked: list[str] | None,
    text: str,
    explain: bool,
    k: int = 10,
) -> tuple[str, Any]:
    """The demo's one action: markdown of the ranked list, and highlighted words (or None)."""
    from tunesmith.data.limits import text_problem
    from tunesmith.errors import TunesmithError, UserInputError
    from tunesmith_recommend.model import LIKED_WORDS, history_words

    text = text or ""
    one, many = nouns(model_dir)
    mode = MODES[1] if mode == OLD_LIKED_MODE else mode
    words = LIKED_WORDS  # the liked items named on the page, and no reasons for a description
    try:
        if mode == MODES[0]:
            if not user:
                raise UserInputError("Choose a user.")
        elif mode == MODES[1]:
            if not liked:
                raise UserInputError(f"Choose at least one {one} you liked.")
        elif not text.strip():
            raise UserInputError(description_examples(one)[1])
        elif text_problem(text):
            raise UserInputError(f"The description cannot be used: {text_problem(text)}.")
        # Inside the try: the first request builds the sample model, and a model directory
        # that cannot be read says so here instead of as a bare "Error".
        recommender = recommender_for(model_dir)
        if mode == MODES[0]:
            user = user.strip()  # typed into the box (a model with more users than it lists)
            history = known_user(recommender, user, one, many)
            results = recommender.for_user(user, k)
            # "liked" only with --min-rating: the sample's u01 rated all ten of its films 1-3.
            words = history_words(getattr(recommender, "meta", None))
            # Who the user is: an id alone ("For 10019") left the list impossible to judge.
            heading = f"For {plain(user)}, {words.who} " + named(recommender, history[::-1])
        elif mode == MODES[1]:
            # Each item once: the page's box cannot repeat one, but a request can, and a
            # million repeats of one id were a million item vectors in memory and a million
            # titles in the heading.
            liked = list(dict.fromkeys(find_item(recommender, i, one) for i in liked))
            results = recommender.for_liked(liked, k)
            heading = "For someone who liked " + named(recommender, liked)
        else:
            results = recommender.for_query(text, k)
            quoted = " ".join(text.split())
            if len(quoted) > HEADING_CHARS:
                quoted = quoted[:HEADING_CHARS].rstrip() + "…"
            heading = f"For “{plain(quoted)}”"
    except TunesmithError as exc:
        return f"**{plain(str(exc))}**", None
    highlights = None
    if explain and results:
        from tunesmith.ui.highlight import explanation_to_highlights
        from tunesmith_recommend.explain import explain_first

        explanation = explain_first(recommender, results[0], text if mode == MODES[2] else None)
        if explanation is not None:
            highlights = explanation_to_highlights(explanation, side="passage")
    texts = getattr(recommender, "texts", None)
    details = (
        {r.item_id: detail(r.title, texts[recommender.position[r.item_id]]) for r in results}
        if texts
        else None
    )
    shown = results_markdown(results, heading, details, many, words.because)
    if highlights:
        from tunesmith.ui.highlight import words_summary

        # The highlighted words' colours in words: a screen reader reads them without.
        said = words_summary(
            highlights, "raised the match", "lowered it", lead=f"In the first {plain(one)}"
        )
        shown += f"\n\n{said}" if said else ""
    return shown, highlights


def results_status(shown: str, many: str = "items") -> str:
    """What a screen reader hears by itself once the list is shown (the page's live status),
    from the Markdown :func:`recommend` wrote: "10 recommendations for u01." (the user's
    history is read in the heading), "3 recommendations for someone who liked Alien.", or
    the refusal as written."""
    import re

    if not shown or shown.startswith("**"):  # a refusal: "**Choose a user.**"
        return shown
    heading = shown.split("\n", 1)[0].removeprefix("### ")
    for who in ("who liked", "who watched", "whose history has"):
        heading = heading.split(f", {who} ", 1)[0]
    count = len(re.findall(r"^\d+\. ", shown, re.MULTILINE))
    if count == 0:
        return f"No recommendations {heading[:1].lower()}{heading[1:]}: all the {plain(many)} are already among the liked or seen ones."
    noun = "recommendation" if count == 1 else "recommendations"
    return f"{count} {noun} {heading[:1].lower()}{heading[1:]}."


def named(recommender: Any, items: list[str]) -> str:
    """Titles of ``items`` for a heading (Markdown), the first :data:`HEADING_TITLES` of them:
    forty liked films made a heading of forty titles above the list."""
    titles = [plain(recommender.titles[recommender.position[i]]) for i in items]
    more = len(titles) - HEADING_TITLES
    return ", ".join(titles[:HEADING_TITLES]) + (f" and {more} more" if more > 0 else "")


def known_user(recommender: Any, user: str, one: str = "item", many: str = "items") -> list[str]:
    """The liked items of a user the model knows; otherwise what to do instead, in the page's
    words (the model's message names the command line's --liked and --query)."""
    from tunesmith.errors import UserInputError

    history = recommender.histories.get(user)
    if history:
        return list(history)
    why = (
        f"rated every {one} below the model's --min-rating"
        if user in getattr(recommender, "rated_below", {})
        else "is not a user of this model"
    )
    raise UserInputError(
        f"{user!r} {why}: recommend from “{mode_label(MODES[1], many)}” or “{MODES[2]}” instead."
    )


def find_item(recommender: Any, value: str, one: str = "item") -> str:
    """The id of an item chosen or typed in the box: an id, a title (any case), or a choice's
    label "Title [id]"; typed, since a large catalogue lists only its most liked items."""
    import re

    from tunesmith.errors import UserInputError

    value = value.strip()
    if value in recommender.position:
        return value
    labelled = re.fullmatch(r".*\[([^\[\]]+)\]", value)
    if labelled and labelled.group(1) in recommender.position:
        return labelled.group(1)
    wanted = value.casefold()
    for item, title in zip(recommender.ids, recommender.titles, strict=True):
        if title.casefold() == wanted:
            return item
    raise UserInputError(f"No {one} with the id or title {value!r} in this model's catalogue.")


def build_demo(model_dir: str | None = None) -> Any:
    """The Gradio Blocks for the suite tab and ``tunesmith recommend demo``."""
    import gradio as gr

    from tunesmith.ui.a11y import live_status
    from tunesmith.ui.highlight import highlight_component
    from tunesmith.ui.textbox import text_box
    from tunesmith_recommend.model import history_words, item_nouns

    users, items = choices(model_dir)
    meta = model_meta(model_dir)  # read once, for the nouns and the history's words
    one, many = item_nouns(meta)
    # "what users liked" only of a model trained with --min-rating: a books model without one
    # said its histories (1-star ratings too) were what users liked.
    source = history_words(meta).source
    with gr.Blocks() as blocks:
        markdown_box(
            "## Recommendations\n"
            + INTRO.format(many=plain(many), source=source)
            + (
                "\n\nThe sample films and viewers are made up; the viewers' events were "
                "simulated from the tastes shown next to their ids. The first request builds "
                "the model (under a minute)."
                if not model_dir
                else ""
            )
        )
        mode = gr.Radio(
            [(mode_label(m, many), m) for m in MODES], value=MODES[0], label="Recommend for"
        )
        # A trained model's users and items can be typed too (by id; an item also by title):
        # a large one lists only its most active users and most liked items.
        typed = bool(model_dir)
        user = gr.Dropdown(
            users,
            value=users[0][1] if users else None,
            label="User (or type a user's id)" if typed else "User",
            allow_custom_value=typed,
        )
        liked = gr.Dropdown(
            items,
            multiselect=True,
            label=f"{many[:1].upper()}{many[1:]} you liked"
            + (
                f" (the {MAX_CHOICES:,} most liked are listed; type any other's id or title)"
                if len(items) >= MAX_CHOICES
                else ""
            ),
            visible=False,
            allow_custom_value=typed,
        )
        # Enter recommends, Shift+Enter breaks a line (the box every demo types into)
        text = text_box(
            "Describe what you want", placeholder=description_examples(one)[0], visible=False
        )
        explain = gr.Checkbox(False, label=f"Show which words of the first {one} matched (slower)")
        button = gr.Button("Recommend", variant="primary")
        # Heard by itself once the list is shown: "10 recommendations for u01."
        live = live_status("recommend-status")
        output = markdown_box(elem_id="recommend-results")
        # Shown only when asked for: unchecked, it was a large empty box under every list.
        words = highlight_component(f"Words of the first {one} that matched", visible=False)

        def switch(chosen: str) -> tuple[Any, Any, Any]:
            return (
                gr.update(visible=chosen == MODES[0]),
                gr.update(visible=chosen == MODES[1]),
                gr.update(visible=chosen == MODES[2]),
            )

        # Page-only changes, answered at once and in silence: each arrow through the modes
        # was heard as "Loading", "Complete", and waited in the queue behind a running list.
        quiet = {"queue": False, "show_progress": "hidden"}
        mode.change(switch, mode, [user, liked, text], **quiet)
        explain.change(lambda on: gr.update(visible=on), explain, words, **quiet)

        def run(m: str, u: str | None, li: list[str] | None, t: str, e: bool) -> tuple[str, Any]:
            return recommend(model_dir, m, u, li, t, e)

        for event in (button.click, text.submit):  # Enter in the description box too
            shown = event(run, [mode, user, liked, text, explain], [output, words])
            live.announce(shown, lambda listed: results_status(listed, many), [output])
    return blocks
