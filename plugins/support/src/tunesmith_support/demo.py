"""The support demo: a chat over a knowledge base, with sources, confidence, the decision, a
visible hand-off, "Why this answer", feedback buttons, the hand-off queue for the agent
(:mod:`demo_handoffs`) and knowledge-base upload.

Used as the suite's "Customer support" tab and by `tunesmith support demo`. Nothing heavy runs
when the page is built: the sample KB is indexed with the default model on the first question
(cached under the demo directory), and every text shown is HTML-escaped.
"""

from __future__ import annotations

import csv
import html
import os
import re
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from tunesmith.errors import TunesmithError, UserInputError
from tunesmith.ui.a11y import first_sentence
from tunesmith.ui.markdown import code_span, markdown_box, plain_markdown

#: Knowledge bases whose services stay loaded at once. Each upload builds a KB and each
#: service loads its own encoder (about 90 MB for the default model): unbounded, anyone who
#: can reach the page could use up the server's memory by uploading again and again.
MAX_SERVICES = 4

_services: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()
_sample_lock = threading.Lock()  # two first questions at once index the sample KB once


def demo_dir() -> Path:
    """Where the demo keeps the KBs it builds."""
    from tunesmith.ui.core_demos import demo_models_dir

    return demo_models_dir() / "support"


def sample_kb(model: str = "default") -> Path:
    """The sample KB, indexed and calibrated once (built in a temporary folder, then renamed)."""
    from tunesmith_support.kbindex import CALIBRATION

    out = demo_dir() / "sample-kb"
    if (out / CALIBRATION).exists():
        return out
    with _sample_lock:
        if (out / CALIBRATION).exists():  # built by the session that held the lock first
            return out
        return _build_sample_kb(out, model)


def _build_sample_kb(out: Path, model: str) -> Path:
    from tunesmith_support.kbindex import build_index, load_encoder, open_index, stored_entries
    from tunesmith_support.learning import calibrate_kb, read_labelled
    from tunesmith_support.sample import sample_paths

    paths = sample_paths()
    tmp = demo_dir() / f"sample-kb.tmp-{time.time_ns()}"
    try:
        build_index(paths["kb"], tmp, model=model)
        ids = {e.id for e in stored_entries(open_index(tmp, load_encoder(tmp)))}
        calibrate_kb(tmp, read_labelled([paths["history"]], ids))
    except BaseException:
        # A failed build left its half-made folder behind, one more on every question asked.
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not out.exists():
        # The index records its encoder by name ('default' resolves to the same name), so the
        # folder can move.
        tmp.rename(out)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def service_for(kb_dir: str) -> Any:
    """One :class:`SupportService` per KB directory, shared by every session; the
    :data:`MAX_SERVICES` most recently used are kept (a page whose KB was dropped loads it
    again, its conversations being in the KB's database)."""
    from tunesmith_support.service import SupportService

    with _lock:
        if kb_dir in _services:
            _services.move_to_end(kb_dir)
            return _services[kb_dir]
        # Hand-offs are delivered from the service's own thread, as `serve` does: a webhook
        # that hangs would hold the customer's answer 5 s (once per hold of that sink).
        service = _services[kb_dir] = SupportService(kb_dir, background_delivery=True)
        while len(_services) > MAX_SERVICES:
            # Not closed: a request may still be answering from it; its database closes when
            # the last one lets it go.
            _services.popitem(last=False)
        return service


def chat_messages(turn: Any) -> list[dict[str, str]]:
    """The question and the answer of a turn as chat messages.

    The chat shows its messages as sanitised HTML (not Markdown), so markup is escaped, but
    quotes are kept: its copy button and its screen-reader label give the message as stored,
    and ``I&#x27;m`` there would be wrong.
    """
    a = turn.answer
    return [
        {"role": "user", "content": html.escape(a.question or "", quote=False)},
        {"role": "assistant", "content": html.escape(a.text or "", quote=False)},
    ]


def describe(turn: Any) -> tuple[str, str]:
    """Markdown for the decision panel and the source panel (escaped)."""
    a = turn.answer
    notes = "".join(f"\n\n_Note: {plain_markdown(n)}_" for n in a.notes)
    why = getattr(a, "reason", "")
    if why == "chosen":
        decision = "**Decision: answer** (picked from the options)"
    elif a.decision == "answer":
        decision = f"**Decision: answer**, confidence {a.confidence:.0%}"
    elif why == "small_talk":
        decision = "**Decision: small talk** (no search)"
    elif why == "narrowed":
        decision = "**Decision: clarify** (the reply matches more than one option)"
    elif a.decision == "clarify":
        decision = f"**Decision: clarify** (top answers are close), confidence {a.confidence:.0%}"
    else:
        reason = {
            "asked_for_person": "you asked for a person",
            "out_of_scope": "the question looks out of scope",
            "low_confidence": "confidence too low",
        }.get(a.reason, a.reason)
        decision = (
            f"### Handed off to a person\n**Decision: hand-off** ({plain_markdown(reason)}), "
            f"confidence {a.confidence:.0%}. Event {code_span(turn.handoff_event or '')} stored "
            "and being sent."
        )
    decision += notes
    lines = []
    if a.entry:
        e = a.entry
        heading = f" › {plain_markdown(e['heading'])}" if e["heading"] else ""
        lines.append(f"**Source:** {code_span(e['id'])} — {plain_markdown(e['source'])}{heading}")
    if a.candidates:
        # A blank line first: Markdown would run the source and this heading into one line.
        lines.append("\n**Candidates:**")
        for c in a.candidates[:3]:
            title = plain_markdown(c["title"])
            # The answer's start: entries of a KB that repeats a question share the title.
            snippet = c.get("snippet") or ""
            said = " ".join(str(c["title"]).split())
            beside = f" — {plain_markdown(snippet)}" if not snippet.startswith(said) else ""
            lines.append(f"- {code_span(c['id'])} {title}{beside} (score {c['score']:.2f})")
    return decision, "\n".join(lines) or "_No source_"


#: How the live status opens for each decision the panel writes ("**Decision: answer**").
_DECIDED = {
    "answer": "Answered",
    "clarify": "Asked to clarify",
    "hand-off": "Hand-off to a person",
    "small talk": "Replied to small talk",
}


def ask_status(ask_note: str, decision: str, last: dict[str, Any] | None) -> str:
    """What a screen reader hears by itself once a question is asked (the page's live status):
    the refusal in the ask note, else the decision panel's first line in words, with the
    entry answered from: "Answered, confidence 82%, from entry `ship-cost`." /
    "Hand-off to a person (confidence too low), confidence 31%." (in words of its own: a
    search of the page for the panel's "Handed off to a person" finds the panel alone)."""
    if ask_note:
        return ask_note
    headline = decision.split("\n\n", 1)[0].split("\n")[-1]  # past "### Handed off ..."
    found = re.match(r"\*\*Decision: ([^*]+)\*\*(.*)", headline)
    if not found:
        return ""
    kind, rest = found.group(1), found.group(2).strip().removeprefix(",").strip()
    rest = first_sentence(rest).rstrip(".")  # the hand-off's event id is for the page
    joined = f" {rest}" if rest.startswith("(") else f", {rest}" if rest else ""
    said = _DECIDED.get(kind, f"Decision: {kind}") + joined
    entry = (last or {}).get("entry") or {}
    if kind == "answer" and entry.get("id"):
        said += f", from entry {code_span(entry['id'])}"
    return said + "."


def rated_status(note: str) -> str:
    """The live status once an answer is rated: "Rating saved: helpful, turn 3.", or the
    refusal in the feedback note."""
    found = re.fullmatch(r"Feedback stored: turn (\S+) rated (.+)\.", note or "")
    return f"Rating saved: {found.group(2)}, turn {found.group(1)}." if found else note


def explained_status(note: str) -> str:
    """The live status once "Why this answer" has run: "Explained: the match scores 0.71.",
    or the refusal in its note."""
    found = re.match(r"Similarity (-?\d\.\d\d)\.", note or "")
    return f"Explained: the match scores {found.group(1)}." if found else note


def feedback_rows(kb_dir: str) -> list[list[Any]]:
    """Stored feedback, newest first, for the table under the chat (a Dataframe shows its cells
    as plain text, so they are not HTML-escaped: an escaped ``'`` would show as ``&#x27;``)."""
    return _table(service_for(kb_dir).conversations.feedback())


def stored_feedback(kb_dir: str) -> list[list[Any]]:
    """The table as the page opens: a KB's stored feedback (given with ``rate``, ``chat``, the
    API or an earlier visit), read from its database without loading the KB's encoder. It
    stayed empty until the first rating in the page, and "Feedback in the conversation
    database" then read as "none"."""
    return _table(read_log(kb_dir, lambda log: log.feedback(), []))


def built_kb(kb_dir: str) -> str:
    """The KB a page works on if it exists yet: ``kb_dir``, else the sample KB once built
    (never built here: the first question does that), else ``""``."""
    from tunesmith_support.kbindex import CALIBRATION

    if kb_dir:
        return kb_dir
    sample = demo_dir() / "sample-kb"
    return str(sample) if (sample / CALIBRATION).exists() else ""


def read_log(kb_dir: str, read: Any, empty: Any) -> Any:
    """``read(conversations)`` on the page's KB's conversation log, without loading its
    encoder when no question has loaded it yet; ``empty`` when there is no KB or no database
    yet, or it cannot be read (a locked or damaged database: the first question says so)."""
    from tunesmith_support.conversations import Conversations
    from tunesmith_support.service import default_db

    kb_dir = built_kb(kb_dir)
    if not kb_dir:
        return empty
    if kb_dir in _services:
        return read(service_for(kb_dir).conversations)
    db = default_db(kb_dir)
    if not db.exists():  # reading does not create the database
        return empty
    try:
        conversations = Conversations.open(db)
        try:
            return read(conversations)
        finally:
            conversations.close()
    except TunesmithError:
        return empty


def _table(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            r["turn_id"],
            r["question"],
            {1: "helpful", 0: "not helpful"}.get(r["helpful"], ""),
            r["correct_id"] or "",
        ]
        for r in reversed(rows)
    ]


def explain(kb_dir: str, last: dict[str, Any]) -> tuple[Any, Any, str]:
    """Pair explanation of the last answer: words of the question and of the matched entry."""
    from tunesmith.explain.pair import explain_encoder_pair
    from tunesmith.ui.highlight import explanation_to_highlights, words_summary

    if not last or not last.get("entry_text"):
        raise UserInputError("Ask a question that gets an answer first.")
    service = service_for(kb_dir)
    encoder = service.answerer.encoder
    with service.answerer._lock:
        field, passage = "a", last["entry_text"]
        if last.get("entry"):
            field, passage = matched_text(service.answerer, last["query"], last["entry"])
        # The encoder's own pooling and truncation: the similarity explained is the one that
        # chose the entry (a classifier's encoder pools its [CLS] token, not the mean).
        result = explain_encoder_pair(encoder, last["query"], passage, n_steps=24)
    faq = (last.get("entry") or {}).get("kind", "faq") == "faq"
    what = "question" if field == "q" else "answer" if faq else "text"
    note = (
        f"Similarity {result.similarity:.2f}. Highlighted words raised (positive) or lowered "
        f"(negative) the match between the question and the entry's {what}, which chose it."
    )
    query = explanation_to_highlights(result, side="query")
    passage = explanation_to_highlights(result, side="passage")
    # The colours in words too: a screen reader reads the highlighted text without them.
    for pieces, lead in ((query, "In the question"), (passage, f"In the entry's {what}")):
        said = words_summary(pieces, "raised the match", "lowered it", lead=lead)
        note += f"\n\n{said}" if said else ""
    return query, passage, note


def matched_text(answerer: Any, query: str, entry: dict[str, Any]) -> tuple[str, str]:
    """``(field, text)``: the indexed text of ``entry`` whose similarity with ``query`` chose it,
    ``"q"`` for an FAQ entry's question, else ``"a"``. An FAQ entry is indexed by its question
    and its answer, and ranked by the better of the two (the question less the calibrated
    offset); "Why this answer" explained the answer alone, a similarity of 0.67 for a question
    that matched the entry's own word for word (1.00). A passage is indexed with its heading."""
    import numpy as np

    from tunesmith_support.kb import Entry

    fields = ("id", "answer", "question", "category", "source", "heading", "kind")
    vectors = Entry(**{k: entry[k] for k in fields if k in entry}).vectors()
    if len(vectors) == 1:
        return vectors[0][1], vectors[0][2]
    found, *texts = answerer.encoder.encode([query, *(t for _, _, t in vectors)], progress=False)
    scores = {f: float(np.dot(found, v)) for (_, f, _), v in zip(vectors, texts, strict=True)}
    offset = answerer.calibration.weights.question_offset
    field = "q" if scores["q"] - offset > scores["a"] else "a"
    return field, next(t for _, f, t in vectors if f == field)


def build_uploaded_kb(
    files: list[str], current_kb: str, progress: Any = None, languages: str = ""
) -> tuple[Path, str]:
    """A KB from uploaded files, with the current KB's base model. A CSV with ``question`` and
    ``answer_id`` columns is taken as labelled questions and calibrates the KB; without one, the
    current KB's calibration is borrowed (said in the status). ``progress(done, total)`` is told
    about the entries encoded.

    ``languages``: the KB's language codes, as `index --language` takes them ("de, fr"; the
    first for the bot's own texts); empty, the current KB's ``language.json`` (its languages,
    wording and phrases) is kept, as its model is. Before, every upload was English: a German
    FAQ uploaded in a German KB's demo greeted in English and scored BM25 with English stop
    words.

    A failed upload leaves no folder behind, and its error names the uploaded files, not where
    the server keeps them."""
    from tunesmith_support.languages import check_language_codes

    if not files:
        raise UserInputError("Choose FAQ files or documents to upload first.")
    codes = check_language_codes(
        re.split(r"[\s,;]+", languages.strip()) if languages.strip() else [], "Languages"
    )
    root = demo_dir() / "uploads" / str(time.time_ns())
    try:
        return _build_upload(files, current_kb, root, progress, codes)
    except Exception as exc:
        shutil.rmtree(root, ignore_errors=True)
        if isinstance(exc, TunesmithError):
            raise UserInputError(_upload_message(str(exc), root)) from None
        raise


#: The command line's hint for a missing FAQ column, which the upload has no flag for.
_COLUMN_FLAG_HINT = re.compile(r"; name it\s+with --\S+-col.*$", re.DOTALL)


def _upload_message(message: str, root: Path) -> str:
    """``message`` with the upload folder's paths replaced by what the user uploaded, and the
    command line's "name it with --question-col" replaced by what an upload needs."""
    for folder in (root / "sources", root):
        message = message.replace(f"{folder}{os.sep}", "").replace(str(folder), "the upload")
    return _COLUMN_FLAG_HINT.sub(
        "; an uploaded FAQ needs columns named question and answer (id and category are optional)",
        message,
    )


def _build_upload(
    files: list[str],
    current_kb: str,
    root: Path,
    progress: Any = None,
    languages: list[str] | None = None,
) -> tuple[Path, str]:
    from tunesmith_support.kbindex import (
        CALIBRATION,
        build_index,
        in_kb,
        load_encoder,
        open_index,
        read_meta,
        stored_entries,
    )
    from tunesmith_support.languages import LANGUAGE_FILE, english_model_note, set_languages
    from tunesmith_support.learning import calibrate_kb, read_labelled

    src = root / "sources"
    src.mkdir(parents=True)
    labelled = []
    for name in files:
        path = Path(name)
        target = src / path.name
        if path.suffix.lower() == ".csv":
            with path.open(encoding="utf-8-sig", errors="replace") as handle:
                header = next(csv.reader(handle), [])  # utf-8-sig: Excel writes a BOM
            if {"question", "answer_id"} <= {h.strip() for h in header}:
                target = root / path.name
                labelled.append(target)
        shutil.copyfile(path, target)
    if not labelled and not (Path(current_kb) / CALIBRATION).exists():
        # Said before the index is built; it was a FileNotFoundError (a bare red "Error").
        raise UserInputError(
            "no labelled questions uploaded, and the current knowledge base has no calibration "
            "to borrow: add a CSV with question,answer_id (20 rows or more)"
        )
    kb = root / "kb"
    model = read_meta(current_kb).get("model") or "default"
    if in_kb(model):  # a tuned encoder belongs to its own KB
        model = "default"
    report = build_index(src, kb, model=model, progress=progress)
    # Before calibrating: the languages choose BM25's stop words.
    if (Path(current_kb) / LANGUAGE_FILE).is_file():
        shutil.copyfile(Path(current_kb) / LANGUAGE_FILE, kb / LANGUAGE_FILE)
    if languages:
        set_languages(kb, list(languages))
    if labelled:
        ids = {e.id for e in stored_entries(open_index(kb, load_encoder(kb)))}
        calibration = calibrate_kb(kb, read_labelled(labelled, ids))
        how = f"calibrated on {calibration.report['questions']} uploaded questions"
    else:
        shutil.copyfile(Path(current_kb) / CALIBRATION, kb / CALIBRATION)
        how = (
            "no labelled questions uploaded (a CSV with question,answer_id), so the confidence "
            "uses the current knowledge base's calibration"
        )
    # Named by what was uploaded: where the server keeps it means nothing to the page's user
    # (and the failures above say nothing of it either).
    names = ", ".join(Path(name).name for name in files)
    built = f"Built a knowledge base from {names}: {report.summary()}"
    note = english_model_note(kb)
    told = f"\n\n_Note: {plain_markdown(note)}_" if note else ""
    return kb, f"{plain_markdown(built)}; {how}.{told}"


def problem(message: str) -> str:
    """A user's mistake (an empty question, a bad upload) as a note in the page, and as a toast
    (:func:`tunesmith.ui.markdown.refused`)."""
    from tunesmith.ui.markdown import refused

    return refused(message)


#: What "Why this answer" shows when there is nothing (yet) to explain: its note and both sides.
NO_EXPLANATION = ("", None, None)


def ask_turn(text: str, history: list | None, kb_dir: str, conv: str | None) -> tuple:
    """The Ask button: ``(chat, question box, KB, conversation id, last answer, decision,
    source, feedback note, ask note, why note, question words, entry words)``.

    A new answer clears the explanation of the one before; a refused question changes nothing
    but the ask note (the question stays in its box to be corrected)."""
    import gradio as gr

    try:
        kb_dir = current_kb(kb_dir)
        turn = service_for(kb_dir).ask(text, conv, channel="demo")
    except TunesmithError as exc:
        return (*([gr.skip()] * 8), problem(str(exc)), *([gr.skip()] * 3))
    a = turn.answer
    history = list(history or []) + chat_messages(turn)
    shown, src = describe(turn)
    state = {
        "turn_id": turn.turn_id,
        # Feedback names its conversation, as the API's does with
        # --feedback-needs-conversation: the turn rated must be this conversation's.
        "conversation_id": turn.conversation_id,
        "query": a.query,
        "entry_text": (a.entry["answer"] if a.entry else ""),
        "entry": a.entry or {},  # what "Why this answer" finds the matched text from
    }
    if a.reason == "small_talk":
        # "Helpful" after "thanks!" rates (and "Why this answer" explains) the answer thanked
        # for: a "You're welcome" is no answer, and its turn takes no feedback.
        state = gr.skip()
    return (history, "", kb_dir, turn.conversation_id, state, shown, src, "", "", *NO_EXPLANATION)


def rate_turn(kb_dir: str, state: dict | None, value: bool) -> tuple[str, Any]:
    """Helpful / Not helpful: ``(feedback note, stored-feedback table)``; the table is kept as it
    was when nothing was stored."""
    import gradio as gr

    if not state or not state.get("turn_id"):
        return problem("Ask a question first, then rate its answer."), gr.skip()
    try:
        kb_dir = current_kb(kb_dir)
        service_for(kb_dir).feedback(
            state["turn_id"], helpful=value, conversation_id=state.get("conversation_id")
        )
    except TunesmithError as exc:
        return problem(str(exc)), gr.skip()
    word = "helpful" if value else "not helpful"
    note = f"Feedback stored: turn {state['turn_id']} rated {word}."
    return note, feedback_rows(kb_dir)


def why_answer(kb_dir: str, state: dict | None) -> tuple:
    """ "Why this answer": ``(question words, entry words, note)``; without an answer to explain,
    the note says so and the panels are emptied."""
    try:
        q, p, note = explain(current_kb(kb_dir), state or {})
    except TunesmithError as exc:
        return None, None, problem(str(exc))
    return q, p, note


def build_from_upload(
    files: list | None, kb_dir: str, progress: Any = None, languages: str = ""
) -> tuple:
    """The upload button: ``(KB, KB note, chat, conversation id, last answer, decision, source,
    feedback note, stored-feedback table, why note, question words, entry words, heading above
    the chat, question box)``. A new KB starts a new conversation and clears what was shown about
    the old one (its stored feedback included: a new KB has none), and the heading and the
    question's placeholder introduce it (they kept naming the KB the page opened on); a failed
    build changes nothing but the note.

    ``progress`` is a ``gr.Progress``: encoding a real FAQ (1,487 entries of a bank's) takes
    about a minute, which showed as nothing but a timer."""
    import gradio as gr

    paths = [f if isinstance(f, str) else f.name for f in (files or [])]
    told = None
    if progress is not None:

        def told(done: int, total: int) -> None:
            progress((done, total), desc="Encoding entries", unit="entries")

    try:
        new_kb, note = build_uploaded_kb(paths, current_kb(kb_dir), told, languages or "")
    except TunesmithError as exc:
        return (gr.skip(), problem(str(exc)), *([gr.skip()] * 12))
    heading, placeholder = introduction(new_kb, uploaded=[Path(p).name for p in paths])
    cleared = ([], None, {}, "", "", "", [], *NO_EXPLANATION)
    return (str(new_kb), note, *cleared, heading, gr.update(placeholder=placeholder))


def reset_conversation() -> tuple:
    """New conversation: ``(chat, conversation id, last answer, decision, source, feedback note,
    ask note, why note, question words, entry words)``."""
    return ([], None, {}, "", "", "", "", *NO_EXPLANATION)


def current_kb(kb_dir: str) -> str:
    """The KB a page works on (its state: the demo's KB, or one built from an upload), else the
    sample KB, indexed on first use."""
    return kb_dir or str(sample_kb())


#: What the demo says it does, whatever KB it opens.
WHAT_IT_DOES = (
    "It answers with a calibrated confidence, asks when two answers are close, and hands off to "
    "a person when unsure or when asked to."
)


def introduction(kb: str | Path | None, *, uploaded: list[str] | None = None) -> tuple[str, str]:
    """``(Markdown above the chat, the question box's placeholder)``, read cheaply from
    ``kb.json``. ``uploaded``: the names of the files a KB built in the page came from, which
    name it there (its folders are the server's, "kb" from "sources").

    A KB given to the demo is checked here, so that ``support demo --kb`` refuses one it could
    not answer from in one line, before it serves: an uncalibrated KB (as `index` leaves it)
    started, then turned every question into the same "no calibration" note.

    The sample shop is named only for the sample KB: opened on a bank's FAQ, the page said
    "Ask the assistant of Fernhill Outdoor Co." and suggested asking about shipping."""
    from tunesmith_support.kbindex import CALIBRATION, read_meta

    if kb is None:
        return (
            "### Customer support\nAsk the assistant of *Fernhill Outdoor Co.* (a fictional "
            "shop; its FAQ and guides are the sample knowledge base). "
            + WHAT_IT_DOES
            + " The sample KB is indexed on the first question.",
            "How much does shipping cost?",
        )
    meta = read_meta(kb)  # not a KB: one line naming it
    if not (Path(kb) / CALIBRATION).exists():
        raise UserInputError(
            f"{kb}: the knowledge base has no calibration yet, so the demo could answer nothing; "
            f"fit one first with `tunesmith support calibrate --kb {kb} --data questions.csv` "
            "(columns question,answer_id; 20 rows or more)"
        )
    entries = meta.get("entries")
    size = f"{entries:,} entries" if isinstance(entries, int) else "entries"
    sources = Path(str(meta.get("sources") or "")).name
    origin = f" from {plain_markdown(sources)}" if sources else ""
    if uploaded:
        what = f"built from {plain_markdown(', '.join(uploaded))} ({size})"
    else:
        what = f"{code_span(Path(kb).name)} ({size}{origin})"
    intro = f"### Customer support\nAsk the assistant about the knowledge base {what}. "
    intro += WHAT_IT_DOES
    return intro, "Type a customer's question"


def build_demo(kb: str | Path | None = None) -> Any:
    """The Gradio Blocks of the support demo (``kb``: a KB directory; default the sample KB)."""
    import gradio as gr

    from tunesmith.ui.a11y import live_status
    from tunesmith.ui.highlight import highlight_component
    from tunesmith_support.demo_handoffs import handoff_panel

    fixed_kb = str(kb) if kb is not None else ""
    intro, placeholder = introduction(kb)

    with gr.Blocks() as blocks:
        heading = markdown_box(intro)
        # The page's KB starts as the one given (empty: the sample KB, found on first use).
        kb_state = gr.State(fixed_kb)
        conversation = gr.State(None)
        last = gr.State({})
        with gr.Row():
            with gr.Column(scale=3):
                # Plain text: as Markdown, "2*3*4" showed as "234" and "[x](url)" as a link.
                # No "share" button: it had no name for a screen reader, and it offers to post
                # a customer conversation to Hugging Face, which a support desk must not.
                chat = gr.Chatbot(
                    label="Conversation",
                    height=360,
                    render_markdown=False,
                    # Nor LaTeX, should Markdown come back: a "$$" in two messages hid the rest.
                    latex_delimiters=[],
                    buttons=["copy", "copy_all"],
                )
                question = gr.Textbox(label="Question", placeholder=placeholder, lines=1)
                with gr.Row():
                    ask = gr.Button("Ask", variant="primary")
                    reset = gr.Button("New conversation")
                # Heard by itself after each action ("Answered, confidence 82%, from entry
                # ship-cost."): the answer appeared in silence until the user went looking.
                live = live_status("support-status")
                ask_note = markdown_box(elem_id="support-ask-note")
            with gr.Column(scale=2):
                decision = markdown_box(elem_id="support-decision")
                source = markdown_box(elem_id="support-source")
                with gr.Row():
                    helpful = gr.Button("Helpful")
                    not_helpful = gr.Button("Not helpful")
                feedback_note = markdown_box(elem_id="support-feedback-note")
        with gr.Accordion("Why this answer", open=False):
            # Not "Why this answer" again: two buttons of one name, side by side, are one too
            # many for a screen reader's list of buttons.
            why = gr.Button("Explain the last answer")
            why_note = markdown_box()
            query_words = highlight_component(label="Words in the question")
            entry_words = highlight_component(label="Words in the matched entry")
        with gr.Accordion("Stored feedback", open=False):
            table = gr.Dataframe(
                headers=["turn", "question", "rating", "correct id"],
                label="Feedback in the conversation database",
                elem_id="support-feedback-table",
            )
        # The agent's side of a hand-off: the queue, and closing one (the chat is left alone).
        requeue = handoff_panel(blocks, kb_state, live, table)
        with gr.Accordion("Knowledge base", open=False):
            kb_note = markdown_box()
            # What to upload said above the box, not in its label: the label names the upload
            # button too ("Upload FAQ files and documents"), heard at every Tab onto it.
            markdown_box(
                "FAQ files (CSV, TSV, JSONL, JSON, Parquet, Excel) and documents (Markdown, "
                "text, HTML). A CSV with question,answer_id (20 rows or more) calibrates."
            )
            upload = gr.File(label="FAQ files and documents", file_count="multiple")
            upload_languages = gr.Textbox(
                label="Languages of the upload (codes such as de, fr; the first for the "
                "bot's own texts; empty: the current knowledge base's)",
                placeholder="en",
                lines=1,
            )
            build = gr.Button("Build knowledge base from upload")
        blocks.load(stored_feedback, [kb_state], [table])

        why_outputs = [why_note, query_words, entry_words]
        ask_outputs = [chat, question, kb_state, conversation, last, decision, source]
        ask_outputs += [feedback_note, ask_note, *why_outputs]
        for event in (ask.click, question.submit):
            asked = event(ask_turn, [question, chat, kb_state, conversation], ask_outputs)
            live.announce(asked, ask_status, [ask_note, decision, last])
            requeue(asked)  # a hand-off in the chat shows in the queue
        reset_done = reset.click(
            reset_conversation,
            None,
            [chat, conversation, last, decision, source, feedback_note, ask_note, *why_outputs],
        )
        live.announce(reset_done, lambda: "New conversation started.", [])
        rated_helpful = helpful.click(
            lambda kb_dir, state: rate_turn(kb_dir, state, True),
            [kb_state, last],
            [feedback_note, table],
        )
        rated_not = not_helpful.click(
            lambda kb_dir, state: rate_turn(kb_dir, state, False),
            [kb_state, last],
            [feedback_note, table],
        )
        for rated in (rated_helpful, rated_not):
            live.announce(rated, rated_status, [feedback_note])
        explained = why.click(why_answer, [kb_state, last], [query_words, entry_words, why_note])
        live.announce(explained, explained_status, [why_note])

        def build_with_progress(
            files: list | None,
            kb_dir: str,
            languages: str,
            progress: Any = gr.Progress(),  # noqa: B008 (how Gradio hands a handler its bar)
        ) -> tuple:
            return build_from_upload(files, kb_dir, progress, languages)

        built = build.click(
            build_with_progress,
            [upload, kb_state, upload_languages],
            [kb_state, kb_note, chat, conversation, last, decision, source, feedback_note, table]
            + why_outputs
            + [heading, question],
        )
        live.announce(built, first_sentence, [kb_note])
        requeue(built, fresh=True)  # the new KB's queue
    return blocks
