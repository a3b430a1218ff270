"""The recommendation demo: pick a user, or name liked films, or describe what you want.

Without a model directory it builds one from the sample films on first use, with the pretrained
encoder as the item tower (no fine-tuning, so it is ready in well under a minute), and keeps it
under :func:`tunesmith.ui.core_demos.demo_models_dir`. Nothing heavy happens in ``build_demo``.
"""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path
from typing import Any

from tunesmith.ui.markdown import code_span
from tunesmith.ui.markdown import plain_markdown as plain

DESCRIPTION = "Recommends films from their text and what users liked, with the reasons."
MODES = ("A user", "Liked films", "A description")
#: Longest description quoted back in the results heading (the whole text is still used).
HEADING_CHARS = 200

_lock = threading.Lock()
_loaded: dict[str, Any] = {}


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
        model_files.save(fit(catalogue, events, tmp, settings, say=lambda _: None), tmp)
    return out


def recommender_for(model_dir: str | None) -> Any:
    """The loaded model (built from the sample data first when none is given); once per process."""
    from tunesmith_recommend.model import Recommender

    key = model_dir or ""
    with _lock:
        if key not in _loaded:
            path = Path(model_dir) if model_dir else sample_model_dir()
            if not model_dir and not (path / "meta.json").exists():
                build_sample_model(path)
            _loaded[key] = Recommender(path)
        return _loaded[key]


def choices(model_dir: str | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(users, items) as (label, value) pairs, read cheaply without loading any model."""
    if model_dir:
        from tunesmith.errors import UserInputError

        base = Path(model_dir)
        try:
            users = sorted(json.loads((base / "histories.json").read_text(encoding="utf-8")))
            catalogue = json.loads((base / "catalogue.json").read_text(encoding="utf-8"))
            items = list(zip(catalogue["titles"], catalogue["ids"], strict=True))
        except (OSError, ValueError, KeyError, TypeError):
            # The words Recommender uses for a directory that is not one of its models.
            raise UserInputError(
                f"{base} is not a recommend model directory "
                "(make one with `tunesmith recommend train`)"
            ) from None
        return [(u, u) for u in users], [(f"{t} [{i}]", i) for t, i in items]
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


def results_markdown(results: list[Any], heading: str) -> str:
    """A numbered list with each item's reason (``heading`` is Markdown; titles and ids are
    escaped here: they come from whatever catalogue the model was trained on)."""
    lines = [f"### {heading}", ""]
    for rank, rec in enumerate(results, start=1):
        reason = ""
        if rec.because:
            liked = ", ".join(f"*{plain(b['title'])}* ({b['share']:.0%})" for b in rec.because)
            reason = f" — because you liked {liked}"
        code = code_span(rec.item_id)
        lines.append(f"{rank}. **{plain(rec.title)}** {code} · {rec.score:.3f}{reason}")
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

    text = text or ""
    try:
        if mode == MODES[0]:
            if not user:
                raise UserInputError("Choose a user.")
        elif mode == MODES[1]:
            if not liked:
                raise UserInputError("Choose at least one film you liked.")
        elif not text.strip():
            raise UserInputError("Describe what you want, for example “a haunted lake”.")
        elif text_problem(text):
            raise UserInputError(f"The description cannot be used: {text_problem(text)}.")
        # Inside the try: the first request builds the sample model, and a model directory
        # that cannot be read says so here instead of as a bare "Error".
        recommender = recommender_for(model_dir)
        if mode == MODES[0]:
            results = recommender.for_user(user, k)
            heading = f"For {plain(user)}"
        elif mode == MODES[1]:
            # Each film once: the page's box cannot repeat one, but a request can, and a
            # million repeats of one id were a million item vectors in memory and a million
            # titles in the heading.
            liked = list(dict.fromkeys(liked))
            results = recommender.for_liked(liked, k)
            heading = "For someone who liked " + ", ".join(
                plain(recommender.titles[recommender.position[i]]) for i in liked
            )
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
    return results_markdown(results, heading), highlights


def build_demo(model_dir: str | None = None) -> Any:
    """The Gradio Blocks for the suite tab and ``tunesmith recommend demo``."""
    import gradio as gr

    from tunesmith.ui.highlight import highlight_component

    users, items = choices(model_dir)
    with gr.Blocks() as blocks:
        gr.Markdown(
            "## Recommendations\n"
            + DESCRIPTION
            + (
                "\n\nThe sample films and viewers are made up; the viewers' events were "
                "simulated from the tastes shown next to their ids. The first request builds "
                "the model (under a minute)."
                if not model_dir
                else ""
            )
        )
        mode = gr.Radio(list(MODES), value=MODES[0], label="Recommend for")
        user = gr.Dropdown(users, value=users[0][1] if users else None, label="User")
        liked = gr.Dropdown(items, multiselect=True, label="Films you liked", visible=False)
        text = gr.Textbox(
            label="Describe what you want",
            placeholder="space operas with a strong female lead",
            visible=False,
        )
        explain = gr.Checkbox(False, label="Show which words of the first film matched (slower)")
        button = gr.Button("Recommend", variant="primary")
        output = gr.Markdown(elem_id="recommend-results")
        # Shown only when asked for: unchecked, it was a large empty box under every list.
        words = highlight_component("Words of the first film that matched", visible=False)

        def switch(chosen: str) -> tuple[Any, Any, Any]:
            return (
                gr.update(visible=chosen == MODES[0]),
                gr.update(visible=chosen == MODES[1]),
                gr.update(visible=chosen == MODES[2]),
            )

        mode.change(switch, mode, [user, liked, text])
        explain.change(lambda on: gr.update(visible=on), explain, words)

        def run(m: str, u: str | None, li: list[str] | None, t: str, e: bool) -> tuple[str, Any]:
            return recommend(model_dir, m, u, li, t, e)

        for event in (button.click, text.submit):  # Enter in the description box too
            event(run, [mode, user, liked, text, explain], [output, words])
    return blocks
