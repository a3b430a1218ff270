"""The support demo's hand-off queue, for the agent who takes the hand-offs: what waits for a
person (oldest first, with the conversation so far, the candidates, the reason, the wait and
what agents did with it), claiming or releasing one, closing one with the entry that answers
it or with none (the KB has no answer), and reopening one closed.

The page's part of `support handoffs`: the queue is :meth:`Conversations.handoffs` and a close
is :meth:`SupportService.close_handoff`, so a closed hand-off leaves the queue and
`export-feedback` and `stats` see it as they see the command's. Every text shown is escaped:
the questions are customers' text.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from tunesmith.errors import TunesmithError
from tunesmith.ui.markdown import code_span, markdown_box, plain_markdown
from tunesmith_support.commands.handoffs import waited_text
from tunesmith_support.demo import (
    built_kb,
    current_kb,
    feedback_rows,
    problem,
    read_log,
    service_for,
)

#: Hand-offs written out in the queue; the rest are counted (the oldest come first).
MAX_SHOWN = 20

#: Entries offered to pick from; a larger KB's others are typed by id (the service checks it).
MAX_ENTRY_CHOICES = 2000

#: An earlier answer in the queue is cut here: the question and the candidates matter more.
ANSWER_CHARS = 200

#: Why a hand-off was made, in an agent's words.
REASONS = {
    "asked_for_person": "asked for a person",
    "out_of_scope": "looks out of scope",
    "low_confidence": "confidence too low",
}

#: What the queue says when nothing waits.
EMPTY_QUEUE = "No hand-offs waiting."


def waiting(kb_dir: str) -> list[dict[str, Any]]:
    """The hand-offs waiting in the page's KB, oldest first, the first :data:`MAX_SHOWN` with
    their ``history`` (read without loading its encoder; none before the sample KB is
    built)."""

    def read(log: Any) -> list[dict[str, Any]]:
        items = log.handoffs()
        histories = log.handoff_histories([item["turn_id"] for item in items[:MAX_SHOWN]])
        return [{**item, "history": histories.get(item["turn_id"], [])} for item in items]

    return read_log(kb_dir, read, [])


def recently_closed(kb_dir: str) -> list[dict[str, Any]]:
    """The :data:`MAX_SHOWN` hand-offs closed most recently, newest first, for "Closed
    hand-off to reopen" (:meth:`Conversations.recently_closed`)."""
    return read_log(kb_dir, lambda log: log.recently_closed(MAX_SHOWN), [])


def _cut(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def holder_words(item: dict[str, Any]) -> str:
    """Who holds a waiting hand-off, for the page: "Claimed by alice 5m ago." or
    "Not claimed."."""
    from tunesmith_support.handoff_claims import ago

    if not item.get("claimed_by"):
        return "Not claimed."
    return f"Claimed by {plain_markdown(item['claimed_by'])} {ago(item['claimed_at'])}."


def handoff_markdown(item: dict[str, Any]) -> str:
    """One waiting hand-off for the page: its turn and wait as a heading, who holds it, why it
    was handed off, the conversation before it (with the customer's earlier questions still
    waiting, which close with it), the question and the candidates, every text escaped."""
    reason = REASONS.get(item["reason"], item["reason"])
    lines = [
        f"#### Turn {item['turn_id']}, waiting {waited_text(item['waited_seconds'])}",
        f"**{holder_words(item)}** Handed off: {plain_markdown(reason)} "
        f"(confidence {item['confidence']:.0%}); conversation {code_span(item['conversation_id'])}",
    ]
    earlier = item.get("earlier_waiting") or []
    if earlier:
        turns = ", ".join(str(e["turn_id"]) for e in earlier)
        lines.append(
            f"{len(earlier) + 1} questions of this customer wait (earlier turns {turns}); "
            "closing this one closes them too."
        )
    done = history_markdown(item.get("history") or [])
    if done:
        lines.append(done)
    lines += [""]
    before = item["earlier_turns"] - len(item["conversation"])
    if before > 0:
        lines.append(f"- _({before} earlier turns not shown)_")
    for turn in item["conversation"]:
        lines.append(f"- Customer: {plain_markdown(_cut(turn['question'], 500))}")
        said = plain_markdown(_cut(turn["answer"], ANSWER_CHARS))
        lines.append(f"- Assistant ({plain_markdown(turn['decision'])}): {said}")
    lines.append(f"- **Customer: {plain_markdown(_cut(item['question'], 2000))}**")
    candidates = [
        f"{code_span(c['id'])} {plain_markdown(_cut(c.get('title', ''), 120))} "
        f"({float(c.get('score', 0)):.2f})"
        for c in item["candidates"][:3]
    ]
    lines += ["", "Candidates: " + ("; ".join(candidates) if candidates else "none")]
    return "\n".join(lines)


def history_markdown(history: list[dict[str, Any]]) -> str:
    """What agents did with a hand-off, for its item: "History: 10:02 claimed by alice; 10:15
    closed by alice: ...; 10:20 reopened by bob, note: ..." (the hand-off itself, which the
    heading says, left out), escaped; empty when nothing was done yet."""
    from tunesmith_support.handoff_history import entry_words

    done = [entry for entry in history if entry["action"] != "handoff"]
    if not done:
        return ""
    said = "; ".join(
        f"{plain_markdown(entry['at'][:16].replace('T', ' '))} "
        f"{plain_markdown(_cut(entry_words(entry), 300))}"
        for entry in done
    )
    return f"History: {said}."


def queue_markdown(items: list[dict[str, Any]]) -> str:
    """The queue as the page shows it: a count, then each hand-off (:func:`handoff_markdown`),
    oldest first; past :data:`MAX_SHOWN`, the rest counted."""
    if not items:
        return EMPTY_QUEUE
    count = f"{len(items)} hand-off{'s' if len(items) != 1 else ''} waiting, oldest first."
    parts = [count, *(handoff_markdown(item) for item in items[:MAX_SHOWN])]
    if len(items) > MAX_SHOWN:
        parts.append(f"_And {len(items) - MAX_SHOWN} more waiting, newer than these._")
    return "\n\n".join(parts)


def handoff_choices(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """``(label, turn id)`` of each hand-off shown, for the "Hand-off to close" list."""
    return [
        (
            f"Turn {item['turn_id']}"
            + (f" (claimed by {item['claimed_by']})" if item.get("claimed_by") else "")
            + f": {_cut(item['question'], 80)}",
            int(item["turn_id"]),
        )
        for item in items[:MAX_SHOWN]
    ]


@functools.lru_cache(maxsize=8)
def _kb_titles(kb_dir: str, _version: int) -> tuple[tuple[str, str], ...]:
    """``(id, title)`` of every entry, read from the index without loading the encoder; cached
    per version of ``kb.json`` (a re-index or an upload writes it again)."""
    from tunesmith_support.kbindex import kb_entries

    return tuple((e.id, " ".join(e.title.split())) for e in kb_entries(kb_dir))


def entry_choices(kb_dir: str, item: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``(label, entry id)`` for the "Entry that answers it" list: the hand-off's candidates
    first (they scored best, so the answer is most often among them), then the KB's entries
    by id, :data:`MAX_ENTRY_CHOICES` at most."""
    from tunesmith_support.kbgenerations import META

    kb_dir = built_kb(kb_dir)  # never builds the sample KB: it has no hand-offs before
    if not kb_dir:
        return []
    try:
        titles = _kb_titles(kb_dir, (Path(kb_dir) / META).stat().st_mtime_ns)
    except (OSError, TunesmithError):  # the KB went away: the close says so in a line
        titles = ()
    known = dict(titles)
    choices: list[tuple[str, str]] = []
    for candidate in (item or {}).get("candidates", [])[:3]:
        entry_id = candidate["id"]
        title = known.get(entry_id, candidate.get("title", ""))
        label = f"{entry_id}: {_cut(title, 90)} (candidate, {float(candidate['score']):.2f})"
        choices.append((label, entry_id))
    taken = {value for _, value in choices}
    for entry_id, title in sorted(titles):  # by id: ids group an FAQ's sections
        if len(choices) >= MAX_ENTRY_CHOICES:
            break
        if entry_id not in taken:
            choices.append((f"{entry_id}: {_cut(title, 90)}", entry_id))
    return choices


def _picked(items: list[dict[str, Any]], turn_id: Any) -> dict[str, Any] | None:
    """The hand-off of ``turn_id`` among ``items``, or None when it no longer waits."""
    chosen = [item for item in items if str(item["turn_id"]) == str(turn_id)]
    return chosen[0] if chosen else None


def show_queue(kb_dir: str, selected: Any = None, *, oldest: bool = True) -> tuple[str, Any, Any]:
    """ "Refresh hand-offs": ``(queue, hand-off to close, entry that answers it)``. The
    hand-off chosen stays chosen while it waits, and the entries list its candidates first.
    With none chosen, the oldest is (``oldest``); one that was chosen and is closed now (by
    this page or another agent) leaves none chosen: moved to the next one unasked, a second
    press of "Close: no answer in the KB" closed a hand-off the agent had not read."""
    import gradio as gr

    items = waiting(kb_dir)
    item = _picked(items, selected)
    if item is None and selected in (None, "") and oldest and items:
        item = items[0]
    turn = None if item is None else int(item["turn_id"])
    entries = gr.skip()
    if str(turn) != str(selected):  # a new hand-off: its candidates first, nothing picked
        entries = gr.update(choices=entry_choices(kb_dir, item), value=None)
    return queue_markdown(items), gr.update(choices=handoff_choices(items), value=turn), entries


def pick_handoff(kb_dir: str, turn_id: Any) -> Any:
    """The hand-off chosen changed: the entries list its candidates first."""
    import gradio as gr

    item = _picked(waiting(kb_dir), turn_id)
    return gr.update(choices=entry_choices(kb_dir, item), value=None)


def close_handoff(
    kb_dir: str, turn_id: Any, entry_id: str | None, agent: str, note: str, *, no_answer: bool
) -> tuple:
    """ "Close with this entry" / "Close: no answer in the KB": ``(close note, queue, hand-off
    to close, entry that answers it, stored-feedback table, note box)``. Closed by the
    service, as `support handoffs --close` does (the note box is emptied for the next one); a
    refusal (no hand-off or entry chosen, an unknown entry, another agent closed it first) is
    the close note, the note typed is kept, and the queue is read again."""
    import gradio as gr

    if turn_id in (None, ""):
        return (problem("Choose a hand-off to close first."), *_unchanged())
    entry_id = (entry_id or "").strip() or None
    if not no_answer and entry_id is None:
        return (
            problem(
                "Choose the entry that answers it (type to search its id or title), or close "
                "it with no answer in the KB."
            ),
            *_unchanged(),
        )
    kb_dir = current_kb(kb_dir)
    try:
        closed = service_for(kb_dir).close_handoff(
            int(turn_id), entry_id=None if no_answer else entry_id, agent=agent, note=note
        )
    except TunesmithError as exc:
        # Closed by someone else meanwhile: the queue is read again, so it no longer shows it.
        return (problem(str(exc)), *show_queue(kb_dir, turn_id), gr.skip(), gr.skip())
    if closed["status"] == "resolved":
        told = f"resolved with entry {code_span(closed['entry_id'])}"
    else:
        told = "closed with no entry (a gap in the knowledge base)"
    by = f" by {plain_markdown(closed['agent'])}" if closed["agent"] else ""
    note_shown = f"Hand-off of turn {closed['turn_id']} {told}{by}."
    # None chosen next: the agent reads the next one before closing it, and picks its entry.
    queue, chosen, _entries = show_queue(kb_dir, None, oldest=False)
    entries = gr.update(choices=entry_choices(kb_dir, None), value=None)
    return (note_shown, queue, chosen, entries, feedback_rows(kb_dir), "")


def claim_handoff(kb_dir: str, turn_id: Any, agent: str) -> tuple:
    """ "Claim it": ``(note, queue, hand-off to close, entry that answers it)``. The agent in
    "Agent" claims the chosen hand-off, as `support handoffs --claim` does, so the other
    agents see it taken; a refusal (no agent named, another agent holds it) is the note."""
    import gradio as gr

    from tunesmith_support import handoff_actions

    if turn_id in (None, ""):
        return (problem("Choose a hand-off to claim first."), gr.skip(), gr.skip(), gr.skip())
    if not (agent or "").strip():
        return (problem('Type your name in "Agent" to claim it.'), gr.skip(), gr.skip(), gr.skip())
    kb_dir = current_kb(kb_dir)
    try:
        item = handoff_actions.claim(service_for(kb_dir).conversations, int(turn_id), agent)
    except TunesmithError as exc:
        return (problem(str(exc)), *show_queue(kb_dir, turn_id))
    said = f"Hand-off of turn {item['turn_id']} claimed by {plain_markdown(item['claimed_by'])}."
    return (said, *show_queue(kb_dir, turn_id))


def release_handoff(kb_dir: str, turn_id: Any, agent: str) -> tuple:
    """ "Release it": ``(note, queue, hand-off to close, entry that answers it)``. The agent in
    "Agent" releases their claim on the chosen hand-off, as `support handoffs --release` does,
    so another agent may take it; another agent's claim is refused (the note says whose)."""
    import gradio as gr

    from tunesmith_support import handoff_actions

    if turn_id in (None, ""):
        return (problem("Choose a hand-off to release first."), gr.skip(), gr.skip(), gr.skip())
    kb_dir = current_kb(kb_dir)
    try:
        item = handoff_actions.release(service_for(kb_dir).conversations, int(turn_id), agent)
    except TunesmithError as exc:
        return (problem(str(exc)), *show_queue(kb_dir, turn_id))
    said = f"Hand-off of turn {item['turn_id']} released: not claimed, waiting."
    return (said, *show_queue(kb_dir, turn_id))


def closed_choices(kb_dir: str) -> Any:
    """The "Closed hand-off to reopen" list: the ones closed most recently, newest first,
    each with how and by whom (nothing chosen)."""
    import gradio as gr

    from tunesmith_support.conversations import closure_words

    choices = [
        (
            f"Turn {item['turn_id']}, "
            + closure_words(item["status"], item["entry_id"], item["agent"])
            + f": {_cut(item['question'], 60)}",
            int(item["turn_id"]),
        )
        for item in recently_closed(kb_dir)
    ]
    return gr.update(choices=choices, value=None)


def reopen_handoff(kb_dir: str, turn_id: Any, agent: str, note: str) -> tuple:
    """ "Reopen it": ``(note, queue, hand-off to close, entry that answers it, closed hand-off
    to reopen, note box)``. The chosen closed hand-off goes back in the queue, unclaimed, as
    `support handoffs --reopen` puts it (with the ones closed with it; the entry it named is
    no longer a training row), and is chosen there; "Agent" and "Note" are kept in its
    history. A refusal (none chosen, waiting already) is the note."""
    import gradio as gr

    from tunesmith_support import handoff_actions

    if turn_id in (None, ""):
        return (problem("Choose a closed hand-off to reopen first."), *(gr.skip(),) * 5)
    kb_dir = current_kb(kb_dir)
    try:
        item = handoff_actions.reopen(service_for(kb_dir).conversations, int(turn_id), agent, note)
    except TunesmithError as exc:
        return (problem(str(exc)), *show_queue(kb_dir, None), closed_choices(kb_dir), gr.skip())
    others = [t for t in item["reopened"] if t != item["turn_id"]]
    with_it = f" with turns {', '.join(map(str, others))}" if others else ""
    said = f"Hand-off of turn {item['turn_id']} reopened{with_it}: waiting, not claimed."
    return (said, *show_queue(kb_dir, item["turn_id"]), closed_choices(kb_dir), "")


def _unchanged() -> tuple:
    import gradio as gr

    return (gr.skip(),) * 5


def queue_status(queue: str) -> str:
    """The live status once the queue is read: its count ("2 hand-offs waiting.")."""
    return queue.split(", oldest first", 1)[0].rstrip(".") + "." if queue else ""


def closed_status(note: str, queue: str) -> str:
    """The live status once a hand-off is closed: the close note with what still waits
    ("Hand-off of turn 3 resolved with entry `pay-01`. 1 hand-off waiting."), or the
    refusal."""
    if not note.startswith("Hand-off of turn"):
        return note
    return f"{note} {queue_status(queue)}"


def _closer(*, no_answer: bool) -> Any:
    """The handler of one of the two close buttons."""

    def close(kb_dir: str, turn_id: Any, entry_id: str | None, agent: str, note: str) -> tuple:
        return close_handoff(kb_dir, turn_id, entry_id, agent, note, no_answer=no_answer)

    return close


def handoff_panel(blocks: Any, kb_state: Any, live: Any, table: Any) -> Any:
    """Build the "Hand-offs waiting" accordion inside ``blocks`` and wire it (the queue is
    read as the page opens); ``live`` is the page's live status, ``table`` its stored-feedback
    table (a close with an entry stores the agent's pick there). Returns ``refresh(event,
    fresh=False)``, which chains a quiet re-read of the queue onto an event (a question
    asked; ``fresh``: a KB uploaded, nothing of the old one's queue kept)."""
    import gradio as gr

    with gr.Accordion("Hand-offs waiting", open=False):
        refresh = gr.Button("Refresh hand-offs")
        # No LaTeX: Gradio renders text between two "$$" as math, raw, wherever they are, so
        # a customer's "$$" in one question and another's in a later one hid every hand-off
        # between them from the agent.
        queue = markdown_box(EMPTY_QUEUE, elem_id="support-handoff-queue")
        with gr.Row():
            chosen = gr.Dropdown(label="Hand-off to close", choices=[], value=None)
            entry = gr.Dropdown(
                label="Entry that answers it",
                info="Its candidates first; type to search by id or title.",
                choices=[],
                value=None,
                filterable=True,
                allow_custom_value=True,  # an id past the listed ones; the service checks it
            )
        with gr.Row():
            agent = gr.Textbox(label="Agent (optional)", lines=1, max_lines=1)
            note = gr.Textbox(label="Note kept with it (optional)", lines=1, max_lines=1)
        with gr.Row():
            claim = gr.Button("Claim it")
            release = gr.Button("Release it")
            with_entry = gr.Button("Close with this entry", variant="primary")
            no_answer = gr.Button("Close: no answer in the KB")
        with gr.Row():
            closed = gr.Dropdown(label="Closed hand-off to reopen", choices=[], value=None)
            reopen = gr.Button("Reopen it")
        close_note = markdown_box(elem_id="support-handoff-note")

    outputs = [queue, chosen, entry]
    blocks.load(show_queue, [kb_state, chosen], outputs).then(
        closed_choices, [kb_state], [closed], show_progress="hidden"
    )
    read = refresh.click(show_queue, [kb_state, chosen], outputs)
    read.then(closed_choices, [kb_state], [closed], show_progress="hidden")
    live.announce(read, queue_status, [queue])
    chosen.input(pick_handoff, [kb_state, chosen], [entry])
    for button, none in ((with_entry, False), (no_answer, True)):
        done = button.click(
            _closer(no_answer=none),
            [kb_state, chosen, entry, agent, note],
            [close_note, *outputs, table, note],
        )
        done.then(closed_choices, [kb_state], [closed], show_progress="hidden")
        live.announce(done, closed_status, [close_note, queue])
    for button, act in ((claim, claim_handoff), (release, release_handoff)):
        acted = button.click(act, [kb_state, chosen, agent], [close_note, *outputs])
        live.announce(acted, lambda note: note, [close_note])
    reopened = reopen.click(
        reopen_handoff,
        [kb_state, closed, agent, note],
        [close_note, *outputs, closed, note],
    )
    live.announce(reopened, lambda note: note, [close_note])

    def quietly(event: Any, *, fresh: bool = False) -> Any:
        # fresh: another KB, whose turn ids are not this one's
        read = (lambda kb_dir: show_queue(kb_dir)) if fresh else show_queue
        inputs = [kb_state] if fresh else [kb_state, chosen]
        return event.then(read, inputs, outputs, show_progress="hidden")

    return quietly
