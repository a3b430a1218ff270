"""The core's own demo: train a model on sample data (or open one), then classify and explain.

Nothing heavy happens when the tab is built: the model is trained or loaded on first use. Typed
model directories are opened only inside the allowed roots (see ``ui/model_access.py``).
"""

from __future__ import annotations

import html
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.data.limits import text_problem
from tunesmith.engine.config import RunConfig
from tunesmith.engine.predict import predict_texts
from tunesmith.engine.train import train
from tunesmith.errors import TunesmithError
from tunesmith.explain.attribute import explain_loaded
from tunesmith.explain.faithfulness import faithfulness_figures
from tunesmith.explain.methods import DEFAULT_STEPS, SINGLE_TEXT_METHOD
from tunesmith.hooktypes import Demo
from tunesmith.plugins import collect_list
from tunesmith.ui.a11y import first_sentence, live_status
from tunesmith.ui.highlight import (
    explanation_to_highlights,
    highlight_component,
    words_summary,
)
from tunesmith.ui.markdown import markdown_box, plain_markdown
from tunesmith.ui.model_access import demo_models_dir, find_models, load_allowed_ensemble
from tunesmith.ui.textbox import text_box

#: One sample model trained at a time, so two pages asking for one train it once.
_train_lock = threading.Lock()

__all__ = [
    "Classified",
    "build_playground",
    "classify",
    "classify_for_page",
    "classify_text",
    "core_demos",
    "demo_models_dir",
    "low_confidence",
    "percent",
    "scores_html",
    "train_for_page",
    "train_on_sample",
]


def sample_sets() -> dict[str, Any]:
    """Classification sample data sets from every plugin, by name."""
    found: dict[str, Any] = {}
    for sample in collect_list("tunesmith_sample_data"):
        if sample.task == "classification":
            found[sample.name] = sample  # the plugin registered last wins a name
    return found


def train_on_sample(name: str, base_model: str = "default") -> str:
    """Train a quick head-only model on a sample set (once) and return its directory.

    Two pages asking at once train it once: the second waits and gets the first's model (it
    was refused with "another tunesmith run is writing ...; choose another --out")."""
    sample = sample_sets()[name]
    out = demo_models_dir() / name
    if (out / "config.json").exists():
        return str(out)
    with _train_lock:
        if (out / "config.json").exists():  # trained while this page waited
            return str(out)
        run = RunConfig(
            data=str(sample.paths["train"]),
            eval_data=str(sample.paths["eval"]) if "eval" in sample.paths else None,
            out=str(out),
            model=base_model,
            strategy="head",
            force=True,
        )
        return str(train(run))


@dataclass
class Classified:
    """What the page shows for one text: the scores (each label's probability, or each entity's
    confidence for a tagger), the highlighted words, the note, and which kind of model gave
    them (``loaded.task``: "classification", "multilabel" or "ner")."""

    scores: dict[str, float]
    highlights: Any
    note: str
    task: str


def percent(probability: float) -> str:
    """A probability as the page writes it: whole percents, with one decimal below 10 % and
    above 99 % and a bound beyond that ("<0.1%", ">99.9%"), so that a small probability does not
    read as none ("0%" for 0.5 %), chance among 77 labels as 1 % (1.3 %), and a large one as
    certainty ("100%" for 99.98 %)."""
    if probability <= 0 or probability >= 1:
        return f"{max(0.0, min(1.0, probability)):.0%}"
    if probability < 0.001:
        return "<0.1%"
    if probability > 0.999:
        return ">99.9%"
    if probability < 0.1 or probability > 0.99:
        return f"{probability:.1%}"
    return f"{probability:.0%}"


def low_confidence(probability: float, labels: int) -> bool:
    """Whether a single-label model's top probability is too low to be read as a prediction.

    The rule: below halfway from chance (``1 / labels``, what a model that knows nothing gives
    every label) to certainty, that is below ``(1 + 1 / labels) / 2``: 75 % for 2 labels, 67 %
    for 3, about 50 % for many (a 16 % top guess among 77 labels is more likely wrong than
    right). The core has no calibrated decision threshold to use instead: ``calibration.json``
    holds temperatures, which make a probability honest (a calibrated 16 % is right about one
    time in six) but set no cut-off; the support plugin's hand-off threshold is its own.
    """
    if labels < 2:
        return False
    return probability < (1 + 1 / labels) / 2


def classify(model_dir: str, text: str) -> tuple[dict[str, float], Any, str]:
    """Label probabilities (a tagger: each entity's confidence), highlighted words and a note
    for one text."""
    result = classify_text(model_dir, text)
    return result.scores, result.highlights, result.note


def classify_text(model_dir: str, text: str) -> Classified:
    """:func:`classify`'s outputs and the kind of model that gave them."""
    if not text.strip():
        raise ValueError("Type a text to classify.")

    problem = text_problem(text)  # the same rule as --text: a lone surrogate, an endless text
    if problem is not None:
        raise ValueError(problem)
    # Inside the allowed roots only, from a bounded cache; a seed ensemble is scored and
    # explained as `tunesmith predict` and `explain` do, by the mean of its members.
    loaded, *members = load_allowed_ensemble(model_dir)
    prediction = predict_texts(loaded, [text], members=members)[0]
    # `tunesmith train` makes taggers and multi-label classifiers too: their predictions have
    # no single "label" (it was "Something went wrong: KeyError: 'label'").
    if loaded.task == "ner":
        scores, highlights, note = _entities_result(loaded, text, prediction["entities"])
        return Classified(scores, highlights, note, "ner")
    # One text is explained as `tunesmith explain --text` explains it (50-step integrated
    # gradients), so the faithfulness figures below are the ones that command prints; the
    # faster default for files has a large delta, which read here as a failed explanation.
    how = {"method": SINGLE_TEXT_METHOD, "n_steps": DEFAULT_STEPS, "members": members}
    if loaded.task == "multilabel":
        explanation = explain_loaded(loaded, [text], **how)[0]  # the most probable label
        chosen = ", ".join(f"**{plain_markdown(label)}**" for label in prediction["labels"])
        said = f"Predicted {chosen}" if chosen else "No label is above 50%"
        note = (
            f"{said}. Highlighted words pushed towards **{plain_markdown(explanation.target)}** "
            f"({percent(explanation.target_probability)}, the most probable label) or away "
            "from it."
        )
        highlights = explanation_to_highlights(explanation)
        note += _words_note(highlights) + _ensemble_note(members) + _cut_note(explanation)
        note += _figures_note(explanation)
        return Classified(prediction["probabilities"], highlights, note, "multilabel")
    # The label shown: with a lexical share (--lexical) it may not be the transformer's own.
    target = prediction["label"] if loaded.task == "classification" else None
    explanation = explain_loaded(loaded, [text], target=target, **how)[0]
    label, score = plain_markdown(prediction["label"]), prediction["score"]
    count = len(prediction["probabilities"])
    if low_confidence(score, count):
        said = (
            f"Predicted **{label}** with **low confidence** ({percent(score)}: less than "
            f"halfway from chance, {percent(1 / count)} with {count} labels, to certainty), so "
            "read it as a guess."
        )
    else:
        said = f"Predicted **{label}** ({percent(score)})."
    highlights = explanation_to_highlights(explanation)
    note = (
        f"{said} Highlighted words pushed towards it (positive) or away from it (negative)."
        + _words_note(highlights)
        + _ensemble_note(members)
        + _cut_note(explanation)
        + _figures_note(explanation)
    )
    return Classified(
        prediction["probabilities"], highlights, note, str(loaded.task or "classification")
    )


def _words_note(highlights: Any, towards: str = "towards it", against: str = "away from it") -> str:
    """The highlighted words named in the note: "Why" shows them as colours only, which a
    screen reader does not read (see :func:`tunesmith.ui.highlight.words_summary`)."""
    said = words_summary(highlights, towards, against)
    return f" {said}" if said else ""


def _figures_note(explanation: Any) -> str:
    """The faithfulness figures ``tunesmith explain`` prints for the text, as a short list
    with what each means (the page showed the words without saying how far to trust them)."""
    figures = faithfulness_figures(explanation)
    if not figures:
        return ""
    lines = [f"- {name} **{value}**: {meaning}." for name, value, meaning in figures]
    return (
        "\n\nHow faithful the highlighted words are (as `tunesmith explain` reports them):\n"
        + "\n".join(lines)
    )


def _ensemble_note(members: list[Any]) -> str:
    """What the page adds for a seed ensemble: its probabilities and words are the mean of
    several models (the page showed them as one model's, nothing telling the two apart)."""
    if not members:
        return ""
    return (
        f" A seed ensemble: the probabilities and the words are the mean of its "
        f"{len(members) + 1} models."
    )


def _cut_note(explanation: Any) -> str:
    """What the page adds for a text longer than the model reads: `predict` and `explain` read
    its beginning only, and the page said so nowhere (the terminal's warning aside), the pasted
    rest shown under "Why" as if it had counted."""
    if not getattr(explanation, "truncated", False):
        return ""
    return (
        " The text is longer than the model reads: only its beginning (the highlighted words) "
        "was classified and explained."
    )


def _entities_result(
    loaded: Any, text: str, entities: list[dict[str, Any]]
) -> tuple[dict[str, float], Any, str]:
    """A tagger's result for the page: each entity with its score, and the words that made the
    model tag the first one."""
    cut = _read_in_part(loaded, text)
    if not entities:
        if cut:  # "none in the text" was said of words the tagger never read
            return {}, None, "No entities found in the beginning of the text the model reads."
        return {}, None, "No entities found in the text."
    scores: dict[str, float] = {}
    for entity in entities:
        # One key per entity: a name said twice ("Apple sued Apple") was one row, the note
        # counting two; a repeat is told apart by where it starts.
        key = f"{entity['text']} ({entity['type']})"
        if key in scores:
            key += f" at character {entity['start']}"
        scores[key] = entity["score"]
    first = entities[0]
    explained = explain_loaded(loaded, [text])[0]
    match = next((e for e in explained if (e.start, e.end) == (first["start"], first["end"])), None)
    found = ", ".join(
        f"**{plain_markdown(e['text'])}** ({plain_markdown(e['type'])})" for e in entities
    )
    note = f"Found {len(entities)} entit{'y' if len(entities) == 1 else 'ies'}: {found}."
    if cut:
        note += (
            " The text is longer than the model reads: only its beginning was tagged, so "
            "entities after it are not listed."
        )
    if match is None:
        return scores, None, note
    note += (
        f" Highlighted words made the model tag **{plain_markdown(first['text'])}** "
        "(positive) or held it back (negative)."
    )
    highlights = explanation_to_highlights(match)
    return scores, highlights, note + _words_note(highlights, "towards the tag", "against it")


def _read_in_part(loaded: Any, text: str) -> bool:
    """True when ``text`` is longer than the model reads (``predict`` tags its beginning)."""
    from tunesmith.explain.encoding import encode_texts, max_input_length

    limit = getattr(loaded, "max_length", None) or max_input_length(loaded.model, loaded.tokenizer)
    return encode_texts(loaded.tokenizer, [text], max_length=limit, warn=False)[0].truncated


def _problem(exc: Exception) -> str:
    """The line the page shows for a failed action: a user's error as it is, anything else with
    its type (and its traceback on the server's terminal, where it can be reported)."""
    if isinstance(exc, (TunesmithError, ValueError)):
        return str(exc)
    print("tunesmith: the playground failed:", file=sys.stderr)
    traceback.print_exc()
    return f"Something went wrong: {type(exc).__name__}: {exc}"


def classify_for_page(directory: str, value: str) -> tuple[Any, Any, str]:
    """What the Classify button shows: the scores box (see :func:`scores_html`), the
    highlighted words and the note, or the error as the note with the others cleared.

    Raised as ``gr.Error`` it was a toast over red "Error" boxes, the note of the previous text
    still showing ("Predicted negative" under an empty text) and a traceback in the terminal.
    """
    import gradio as gr

    try:
        result = classify_text(directory, value)
    except Exception as exc:
        return None, None, f"**{plain_markdown(_problem(exc))}**"
    title = "Entities" if result.task == "ner" else "Probabilities"
    return gr.update(value=scores_html(result), label=title), result.highlights, result.note


#: Rows the scores box lists; the others are summed in one line (77 labels made a long list).
SHOWN_ROWS = 5


def scores_html(result: Classified) -> str:
    """The scores box for one result, as HTML (every name escaped).

    It was a ``gr.Label``, which cannot be told how to write a number or what its heading is:
    it wrote 0.5 % as "0%" and 99.98 % as "100%", and over a tagger's entities its large
    heading named the first entity as if it were the prediction for the text. Here each row has
    its bar and :func:`percent`; a classifier's top label is the heading (with a word when its
    probability is low, :func:`low_confidence`); a multi-label model's heading is the labels
    above 50 %; a tagger's box has no heading, only what its scores are.
    """
    scores = result.scores
    if result.task == "ner":
        if not scores:
            return "<div style='padding-top:1.8em'><p>No entities found.</p></div>"
        caption = (
            "Each entity the tagger found, with its confidence in it (the mean probability of "
            "its words' tags), in the order of the text."
        )
        return _scores_block("", caption, list(scores.items()), 0.0, names=("Entity", "Confidence"))
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    # All of them when one more row would do ("1 more label" took the place of that label).
    cut = SHOWN_ROWS if len(ranked) > SHOWN_ROWS + 1 else len(ranked)
    shown, rest = ranked[:cut], ranked[cut:]
    if result.task == "multilabel":
        above = [name for name, p in ranked if p > 0.5]
        heading = (
            "Labels above 50%: " + ", ".join(html.escape(name) for name in above)
            if above
            else "No label above 50%"
        )
        caption = "Each label's own probability (a text may have several labels)."
    else:
        top, p = ranked[0]
        heading = (
            f"{html.escape(top)} <span style='font-weight:normal'>{html.escape(percent(p))}</span>"
        )
        if low_confidence(p, len(ranked)):
            heading += " <span style='font-weight:normal'>(low confidence)</span>"
        caption = f"The probability of each label ({len(ranked)} in all)."
    return _scores_block(heading, caption, shown, sum(p for _, p in rest), len(rest))


def _scores_block(
    heading: str,
    caption: str,
    rows: list[tuple[str, float]],
    rest: float,
    hidden: int = 0,
    names: tuple[str, str] = ("Label", "Probability"),
) -> str:
    """The box's HTML: an optional heading (already escaped), a caption, a bar per row and a
    line for the rows left out. ``names``: the table's column headers.

    The table has headers (a screen reader read the rows as bare "negative, 0.999765, >99.9%")
    and its bars are hidden from screen readers: the percent beside each says the same, and a
    bar read as its raw value ("0.999765")."""
    parts = []
    if heading:
        parts.append(f"<p style='font-size:1.4em;font-weight:bold;margin:0'>{heading}</p>")
    parts.append(f"<p style='margin:0.2em 0 0.5em;opacity:0.8'>{html.escape(caption)}</p>")
    parts.append("<table style='width:100%;border:none;border-collapse:collapse'>")
    th = "border:none;padding:2px 8px 2px 0;text-align:left;font-weight:normal;opacity:0.8"
    parts.append(
        f"<thead><tr><th scope='col' style='{th}'>{html.escape(names[0])}</th>"
        f"<th scope='col' colspan='2' style='{th};text-align:right'>{html.escape(names[1])}</th>"
        "</tr></thead><tbody>"
    )
    for name, p in rows:
        parts.append(
            "<tr>"
            f"<td style='border:none;padding:2px 8px 2px 0'>{html.escape(name)}</td>"
            f"<td style='border:none;width:50%' aria-hidden='true'><meter min='0' max='1' "
            f"value='{p:.6f}' style='width:100%'></meter></td>"
            "<td style='border:none;padding-left:8px;text-align:right;white-space:nowrap'>"
            f"{html.escape(percent(p))}</td>"
            "</tr>"
        )
    parts.append("</tbody></table>")
    if hidden:
        parts.append(
            f"<p style='margin:0.5em 0 0;opacity:0.8'>{hidden} more label"
            f"{'' if hidden == 1 else 's'}, together {html.escape(percent(rest))}.</p>"
        )
    # Room for the box's label, which Gradio draws over the top left corner of an HTML box.
    return "<div style='padding-top:1.8em'>" + "".join(parts) + "</div>"


def train_for_page(name: str) -> tuple[str | None, str]:
    """What the Train button shows: (the model directory, a note saying what to do next), or
    (None, the error) leaving the typed directory as it was."""
    if not name:
        return None, "**No sample data set is installed.**"
    try:
        directory = train_on_sample(name)
    except Exception as exc:
        return None, f"**{plain_markdown(_problem(exc))}**"
    return _as_shown(directory), (
        f"Trained on {plain_markdown(name)}. Type a text and press Enter (or **Classify**)."
    )


def _as_shown(directory: str) -> str:
    """A directory as the page shows it: a demo model by its name in the demo's folder (which
    Classify finds again), not by where the server keeps it (the page showed the absolute path,
    the server's home folder and user name included, to whoever could reach the port)."""
    path, root = Path(directory).resolve(), demo_models_dir().resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else directory


#: The tab's intro. A model of one's own opens only from a folder the UI was started with
#: (``--models``): promised without saying so, ``make run`` refused every such directory.
PLAYGROUND_INTRO = (
    "### Classify & explain\nTrain a quick model on built-in sample data (head-only "
    "fine-tuning of the default model, under a minute on a laptop CPU) and type a text. To "
    "open a model you trained with `tunesmith train`, start the UI with "
    "`tunesmith ui --models FOLDER` and pick it under **Models found** (or enter its directory "
    "inside FOLDER)."
)


def page_status(note: str, failed: str) -> str:
    """What the live status says once an action has written ``note``: a refusal (a note in
    bold, as :func:`classify_for_page` and :func:`train_for_page` write one) after ``failed``
    ("Not classified"), else the note's first sentence ("Classified as **refund** (73%).")."""
    if not note:
        return ""
    if note.startswith("**"):
        return f"{failed}: {note}"
    said = first_sentence(note)
    # In other words than the note's, which a search of the page for "Predicted" finds once.
    return (
        "Classified as " + said.removeprefix("Predicted ")
        if said.startswith("Predicted ")
        else said
    )


def build_playground() -> Any:
    """The 'Classify & explain' tab."""
    import gradio as gr

    found = sample_sets()
    sets = sorted(found)
    with gr.Blocks() as blocks:
        markdown_box(PLAYGROUND_INTRO)
        with gr.Row():
            # What each set holds, under its name: a bare "finance_sentences" said nothing of
            # what to type once trained.
            sample = gr.Dropdown(
                sets,
                value=sets[0] if sets else None,
                label="Sample data",
                info=found[sets[0]].description if sets else None,
            )
            train_button = gr.Button("Train on sample data")
        with gr.Row():
            model_dir = gr.Textbox(label="Model directory", placeholder="path/to/model", scale=2)
            # What the folders hold, so a model is picked, not its path guessed; listed again
            # each time it is opened (a model trained after the UI started).
            picker = gr.Dropdown(
                find_models(),
                value=None,
                label="Models found",
                info="In the demo's folder and the folders given with --models.",
                scale=1,
            )
        # The sample model is finance sentences ("Train on sample data"): an example it can read.
        # Enter classifies (at two lines it only broke the line), Shift+Enter breaks a line.
        text = text_box("Text", placeholder="Shares fell after the bank cut its profit forecast")
        go = gr.Button("Classify", variant="primary")
        # Heard once a text is classified or a model trained ("Classified as refund (73%)."), where
        # the result follows in reading order.
        live = live_status("playground-status")
        note = markdown_box()
        # HTML, not gr.Label: see scores_html (how small numbers and a tagger's rows read).
        probabilities = gr.HTML(label="Probabilities", show_label=True, container=True)

        words = highlight_component(label="Why")

        def on_train(name: str) -> tuple[Any, str, Any, Any]:
            directory, message = train_for_page(name)
            if directory is None:
                return gr.update(), message, gr.update(), gr.update()
            # The last text's probabilities and words were another model's: shown under
            # "Trained on finance_sentences" they read as the new model's.
            return directory, message, None, None

        def on_classify(directory: str, value: str) -> tuple[Any, Any, str]:
            return classify_for_page(directory, value)

        def on_sample(name: str) -> Any:
            return gr.update(info=found[name].description if name in found else None)

        def on_pick(value: str | None) -> Any:
            return value if value else gr.update()

        def on_open_picker() -> Any:
            return gr.update(choices=find_models())

        # Quiet: with a progress shown, Gradio said "Complete" each time the Tab key crossed the
        # picker (its list is read again on focus), an action to the ear that the user never took.
        quiet = {"show_progress": "hidden"}
        sample.change(on_sample, inputs=sample, outputs=sample, **quiet)
        picker.focus(on_open_picker, outputs=picker, **quiet)
        picker.input(on_pick, inputs=picker, outputs=model_dir, **quiet)
        trained = train_button.click(
            on_train, inputs=sample, outputs=[model_dir, note, probabilities, words]
        )
        live.announce(trained, lambda said: page_status(said, "Not trained"), [note])
        # The keyboard as well as the button: Enter in the directory and in the text.
        for event in (go.click, model_dir.submit, text.submit):
            classified = event(
                on_classify, inputs=[model_dir, text], outputs=[probabilities, words, note]
            )
            live.announce(classified, lambda said: page_status(said, "Not classified"), [note])
    return blocks


def core_demos() -> list[Demo]:
    """The core's demos, registered through ``tunesmith_demos`` like any plugin's."""
    return [
        Demo(
            name="playground",
            title="Classify & explain",
            build=build_playground,
            description="Train on sample data or open a model; classify and explain a text.",
        )
    ]
