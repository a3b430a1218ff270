"""The dashboard's triage controls, for the analyst who watches it: acknowledge the chosen
alert, mark it as noise or reopen it (with who and a note), and mute its key for a while,
without leaving the page.

The page's part of `finance alerts --ack/--noise/--reopen/--mute/--unmute`: the work is
:mod:`tunesmith_finance.triage`'s, on the dashboard's database, so a mark given here is the
command's (`--list` and `--noise-report` see it) and one given there shows here. Names and notes
are escaped: they are typed by people.
"""

from __future__ import annotations

import re
from typing import Any

from tunesmith.ui.markdown import plain_markdown, refused

#: How long "Mute its key" mutes, as `--for` takes it.
DURATIONS = ("30m", "6h", "1d", "2d", "1w")
#: The mute's first choice: a day, as a desk mutes a key through a known event.
DEFAULT_DURATION = "1d"
#: A mark given, in the words of the page's note.
DONE = {"acknowledged": "acknowledged", "noise": "marked as noise", "reopened": "reopened"}
#: Said when no alert is chosen.
CHOOSE = "Choose an alert in \u201cAlert to triage\u201d first."

#: Command-line advice in the triage's errors, said with the page's buttons.
_PAGE_WORDS = (
    (re.compile(r"`finance alerts --reopen \S+` first to mark it with --\w+"), "Reopen it first"),
    (re.compile(r" \(`--mutes` lists the mutes\)"), ""),
    (re.compile(r"^--unmute: "), ""),
    (re.compile(r"^--note: "), "Note: "),
)


def page_words(message: Any) -> str:
    """A triage error as the page says it: its buttons, not the command's flags."""
    text = str(message)
    for pattern, words in _PAGE_WORDS:
        text = pattern.sub(words, text)
    return text


def alert_choices(alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(label, id)`` of each alert of the table, in its order, for "Alert to triage":
    "HLXB, 2026-11-05T12:00:00Z, open, id 3e9df122"."""
    return [
        (f"{a['key']}, {a['window'].split('/')[0]}, {a['state']}, id {a['id'][:8]}", a["id"])
        for a in alerts
    ]


def picked(current: Any, choices: list[tuple[str, str]]) -> str | None:
    """The alert still chosen after a redraw: ``current`` while the table holds it."""
    return current if any(current == alert_id for _label, alert_id in choices) else None


def _who(who: str | None) -> str | None:
    """The name a mark is given by; on a page served to a desk the server's login name is
    nobody's, so it is asked for."""
    return (who or "").strip() or None


def mark_alert(db: Any, alert_id: str | None, mark: str, who: str | None, note: str | None) -> str:
    """Acknowledge, mark as noise or reopen (``mark``) the alert ``alert_id`` by ``who``,
    with ``note``: the page's note, "Alert on ticker HLXB acknowledged by ana.", or the
    refusal (nothing written)."""
    from tunesmith.errors import TunesmithError
    from tunesmith_finance.triage import mark_and_list

    heading = "Not reopened" if mark == "reopened" else "Not marked"
    if db is None:
        return refused("The page is not started yet.", heading)
    if not alert_id:
        return refused(CHOOSE, heading)
    if _who(who) is None:
        return refused(
            "Type your name in \u201cYour name\u201d: the mark keeps who gave it.", heading
        )
    try:
        (alert,) = mark_and_list(db, [alert_id], mark, who=_who(who), note=note)
    except TunesmithError as exc:
        return refused(page_words(exc), heading)
    now = "" if mark != "reopened" else f"; it is {alert['state']} again"
    return (
        f"Alert on {plain_markdown(alert['kind'])} {plain_markdown(alert['key'])} "
        f"{DONE[mark]} by {plain_markdown(_who(who))}{now}."
    )


def _alert_key(db: Any, alert_id: str) -> tuple[str, str] | None:
    rows = db.query("SELECT kind, key FROM finance_alerts WHERE id = ?", (alert_id,))
    return (rows[0]["kind"], rows[0]["key"]) if rows else None


def mute_alert_key(
    db: Any, alert_id: str | None, duration: str | None, who: str | None, note: str | None
) -> str:
    """Mute the key of the alert ``alert_id`` for ``duration`` (``2d``) by ``who``: its
    surges are stored as muted alerts and sent to no sink. The page's note ("Muted ticker
    HLXB until T (2d, by ana).", with the mute it replaced), or the refusal."""
    from tunesmith.errors import TunesmithError
    from tunesmith_finance.trends import parse_duration
    from tunesmith_finance.triage import mute_key

    if db is None:
        return refused("The page is not started yet.", "Not muted")
    found = _alert_key(db, alert_id) if alert_id else None
    if found is None:
        return refused(CHOOSE, "Not muted")
    if _who(who) is None:
        return refused(
            "Type your name in \u201cYour name\u201d: the mute keeps who set it.", "Not muted"
        )
    try:
        seconds = parse_duration(duration or "", "Mute for")
        mute, before = mute_key(db, *found, seconds, who=_who(who), note=note)
    except TunesmithError as exc:
        return refused(page_words(exc), "Not muted")
    said = (
        f"Muted {plain_markdown(mute.kind)} {plain_markdown(mute.key)} until "
        f"{mute.to_dict()['to']} ({duration}, by {plain_markdown(mute.who)}): its surges are "
        "stored as muted alerts and sent to no sink."
    )
    if before is not None:
        said += f" It was muted until {before.to_dict()['to']} by {plain_markdown(before.who)}."
    return said


def unmute_alert_key(db: Any, alert_id: str | None) -> str:
    """End the mute of the chosen alert's key now: the page's note, or the refusal (its key
    is not muted)."""
    from tunesmith.errors import TunesmithError
    from tunesmith_finance.triage import unmute_key

    if db is None:
        return refused("The page is not started yet.", "Not unmuted")
    found = _alert_key(db, alert_id) if alert_id else None
    if found is None:
        return refused(CHOOSE, "Not unmuted")
    try:
        mute = unmute_key(db, *found)
    except TunesmithError as exc:
        return refused(page_words(exc), "Not unmuted")
    return (
        f"Unmuted {plain_markdown(mute.kind)} {plain_markdown(mute.key)} (muted by "
        f"{plain_markdown(mute.who)} since {mute.to_dict()['from']}); its alerts held so far "
        "stay muted."
    )


def mutes_line(db: Any) -> str:
    """The mutes in force, for the page: "Muted now: ticker HLXB until T (by ana)." or ""."""
    from tunesmith_finance.triage import active_mutes

    if db is None:
        return ""
    mutes = active_mutes(db)
    if not mutes:
        return "No key is muted."
    said = "; ".join(
        f"{plain_markdown(m.kind)} {plain_markdown(m.key)} until {m.to_dict()['to']} "
        f"(by {plain_markdown(m.who)})"
        for m in mutes
    )
    return f"Muted now: {said}."


def triage_status(note: str) -> str:
    """What a screen reader hears once a triage button has acted: the note's first sentence
    (the result, or why nothing was done)."""
    from tunesmith.ui.a11y import first_sentence

    return first_sentence(note or "")


class TriagePanel:
    """The controls under the alert list (built by :func:`triage_panel`)."""

    def __init__(self, board: Any) -> None:
        import gradio as gr

        from tunesmith.ui.markdown import markdown_box

        self.board = board
        markdown_box("#### Triage the chosen alert")
        with gr.Row():
            # Filled with the table's alerts by the page's refresh; a click on a table row
            # chooses its alert too.
            self.pick = gr.Dropdown([], value=None, label="Alert to triage")
            self.who = gr.Textbox(label="Your name", lines=1, max_lines=1)
            self.note = gr.Textbox(label="Note kept with it (optional)", lines=1, max_lines=1)
        with gr.Row():
            self.ack = gr.Button("Acknowledge")
            self.noise = gr.Button("Mark as noise")
            self.reopen = gr.Button("Reopen")
        with gr.Row():
            self.duration = gr.Dropdown(
                list(DURATIONS), value=DEFAULT_DURATION, label="Mute its key for"
            )
            self.mute = gr.Button("Mute its key")
            self.unmute = gr.Button("Unmute its key")
        self.result = markdown_box(elem_id="finance-triage-note")

    def wire(self, table: Any, live: Any, redraw: Any) -> None:
        """Wire the buttons: each acts, then ``redraw(event)`` chains the page's redraw (the
        table's state column, the chart) onto it, then ``live`` says the result."""
        import gradio as gr

        db = lambda: self.board._db  # noqa: E731 - the set-up opens it after the page is built

        def marker(mark: str) -> Any:
            def act(alert_id: str | None, who: str, note: str) -> tuple[str, Any]:
                said = mark_alert(db(), alert_id, mark, who, note)
                # The note is kept after a refusal, to be corrected; cleared once used.
                return said, "" if not said.startswith("**Not") else gr.skip()

            return act

        for button, mark in ((self.ack, "acknowledged"), (self.noise, "noise"),
                             (self.reopen, "reopened")):  # fmt: skip
            done = button.click(
                marker(mark), [self.pick, self.who, self.note], [self.result, self.note]
            )
            live.announce(redraw(done), triage_status, [self.result])

        def mute(alert_id: str | None, duration: str, who: str, note: str) -> tuple[str, Any]:
            said = mute_alert_key(db(), alert_id, duration, who, note)
            return said, "" if not said.startswith("**Not") else gr.skip()

        muted = self.mute.click(
            mute, [self.pick, self.duration, self.who, self.note], [self.result, self.note]
        )
        live.announce(redraw(muted), triage_status, [self.result])
        unmuted = self.unmute.click(lambda a: unmute_alert_key(db(), a), [self.pick], [self.result])
        live.announce(redraw(unmuted), triage_status, [self.result])

        def choose(event: Any) -> Any:
            row = event.row_value or []
            # The table's last column is the alert's id
            return row[-1] if row else gr.skip()

        # Gradio fills in the click by the parameter's type, which it cannot read from this
        # module's postponed annotations (gradio is imported here, not at the top).
        choose.__annotations__["event"] = gr.SelectData
        table.select(choose, None, [self.pick])


def triage_panel(board: Any) -> TriagePanel:
    """Build the triage controls where the page is being built (under the alert list)."""
    return TriagePanel(board)
