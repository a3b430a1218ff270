"""The triage flags of ``tunesmith finance alerts``: ``--ack``/``--noise``/``--reopen`` an
alert, ``--mute KEY --for 2d``/``--unmute KEY``/``--mutes``, and ``--noise-report``; their
checks and their printing. The work is :mod:`tunesmith_finance.triage`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import typer

from tunesmith_finance.commands.output import echo_err, echo_json, echo_out

ACK = typer.Option(
    None, "--ack", help="Acknowledge the alert with this id (or its first characters); repeatable."
)
NOISE = typer.Option(
    None, "--noise", help="Mark the alert with this id as noise, a false alert; repeatable."
)
REOPEN = typer.Option(None, "--reopen", help="Undo --ack or --noise on this alert; repeatable.")
NOTE = typer.Option(None, "--note", help="A note kept with --ack, --noise or --mute.")
WHO = typer.Option(
    None,
    "--who",
    help="Who acks, marks or mutes (default: $TUNESMITH_AGENT, else your login name).",
)
MUTE = typer.Option(
    None, "--mute", help="Mute a topic or ticker ('$TSLA') for --for: its surges are stored "
    "as muted alerts and sent to no sink.",
)  # fmt: skip
FOR = typer.Option(None, "--for", help="How long --mute lasts: 30m, 6h, 2d, 1w.")
UNMUTE = typer.Option(None, "--unmute", help="End the mute of a topic or ticker now.")
MUTES = typer.Option(False, "--mutes", help="List the mutes in force.")
STATE = typer.Option(
    None,
    "--state",
    help="With --list: open (the default), acknowledged, noise, muted or all.",
)
REPORT = typer.Option(
    False,
    "--noise-report",
    help="How many alerts were noise, per key and overall, and noise alerts per day.",
)
SINCE = typer.Option(
    None, "--since", help="With --noise-report: alerts whose window ends from then."
)
UNTIL = typer.Option(None, "--until", help="With --noise-report: ... and before then.")


@dataclass
class Triage:
    """The triage flags of one `finance alerts` call."""

    ack: list[str] = field(default_factory=list)
    noise: list[str] = field(default_factory=list)
    reopen: list[str] = field(default_factory=list)
    note: str | None = None
    who: str | None = None
    mute: str | None = None
    duration: str | None = None
    unmute: str | None = None
    mutes: bool = False
    report: bool = False
    since: str | None = None
    until: str | None = None

    def actions(self) -> list[str]:
        """The triage actions asked for, as their flags."""
        asked = {
            "--ack": self.ack,
            "--noise": self.noise,
            "--reopen": self.reopen,
            "--mute": self.mute is not None,
            "--unmute": self.unmute is not None,
            "--mutes": self.mutes,
            "--noise-report": self.report,
        }
        return [flag for flag, value in asked.items() if value]

    def check(self, list_only: bool) -> None:
        """Refuse, in one line, flags that do not go together, before the database is read."""
        from tunesmith.errors import UserInputError
        from tunesmith_finance.trends import parse_duration

        asked = self.actions() + (["--list"] if list_only else [])
        if len(asked) > 1:
            raise UserInputError(f"{', '.join(asked)}: give one of them at a time")
        action = asked[0] if asked else None
        if self.duration is not None and action != "--mute":
            raise UserInputError("--for goes with --mute KEY")
        if action == "--mute":
            if self.duration is None:
                raise UserInputError("--mute needs --for, how long: 30m, 6h, 2d, 1w")
            parse_duration(self.duration, "--for")
        for flag, value in (("--note", self.note), ("--who", self.who)):
            if value is not None and action not in ("--ack", "--noise", "--reopen", "--mute"):
                raise UserInputError(f"{flag} goes with --ack, --noise, --reopen or --mute")
        if (self.since or self.until) and action != "--noise-report":
            raise UserInputError("--since and --until go with --noise-report")


def check_state(state: str | None, list_only: bool) -> str:
    """The ``--state`` of ``--list`` (default open), refused in one line when unknown."""
    from tunesmith.errors import UserInputError
    from tunesmith_finance.triage import LIST_STATES

    if state is None:
        return "open"
    if not list_only:
        raise UserInputError("--state goes with --list")
    if state not in LIST_STATES:
        raise UserInputError(f"--state {state!r}: expected one of {', '.join(LIST_STATES)}")
    return state


def run_triage(
    store: Any, triage: Triage, *, by: str | None, tz: str | None, as_json: bool
) -> None:
    """Do the one triage action of ``triage`` on the open ``store`` and print its result."""
    from tunesmith_finance import triage as work
    from tunesmith_finance.documents import parse_moment, resolve_zone
    from tunesmith_finance.trends import parse_duration

    for flag, given in (
        ("--ack", triage.ack),
        ("--noise", triage.noise),
        ("--reopen", triage.reopen),
    ):
        if given:
            mark = work.MARKS[flag[2:]]
            marked = work.mark_and_list(store, given, mark, who=triage.who, note=triage.note, tz=tz)
            if as_json:
                echo_json(marked)
                return
            for alert in marked:
                echo_out(f"{alert['id']}  {alert['kind']} {alert['key']}: {_state_words(alert)}")
            return
    if triage.mute is not None:
        kind, key = work.resolve_mute_key(store, triage.mute, by)
        seconds = parse_duration(triage.duration or "", "--for")
        mute, before = work.mute_key(store, kind, key, seconds, who=triage.who, note=triage.note)
        if as_json:
            echo_json(work.mute_record(mute, before))
            return
        echo_out(
            f"muted {kind} {key} until {mute.to_dict()['to']} ({triage.duration}, by {mute.who})"
        )
        if before is not None:
            echo_err(
                f"note: it was muted until {before.to_dict()['to']} (by {before.who}); replaced"
            )
        return
    if triage.unmute is not None:
        kind, key = work.resolve_mute_key(store, triage.unmute, by)
        mute = work.unmute_key(store, kind, key)
        if as_json:
            echo_json(mute.to_dict())
            return
        echo_out(f"unmuted {kind} {key} (muted by {mute.who} since {mute.to_dict()['from']})")
        return
    if triage.mutes:
        mutes = [m.to_dict() for m in work.active_mutes(store) if by in (None, m.kind)]
        if as_json:
            echo_json(mutes)
            return
        if not mutes:
            echo_err("no key is muted")
        for m in mutes:
            note = f": {m['note']}" if m["note"] else ""
            echo_out(
                f"{m['kind']} {m['key']} muted until {m['to']} (by {m['who']} at {m['from']}){note}"
            )
        return
    zone = resolve_zone(tz or "UTC", "--tz")
    report = work.noise_report(
        store,
        kind=by,
        since=parse_moment(triage.since, "--since", zone),
        until=parse_moment(triage.until, "--until", zone),
    )
    if as_json:
        echo_json(report)
        return
    _print_report(report)


def _state_words(alert: dict[str, Any]) -> str:
    """An alert's state in words: "open", "acknowledged by ana at T: note", "muted by ana ..."."""
    state, mark, mute = alert["state"], alert.get("triage"), alert.get("muted")
    if mark:
        note = f": {mark['note']}" if mark["note"] else ""
        return f"{state} by {mark['by']} at {mark['at']}{note}"
    if mute:
        note = f": {mute['note']}" if mute["note"] else ""
        return f"muted, not sent (muted by {mute['who']} until {mute['to']}){note}"
    return state


def state_line(alert: dict[str, Any]) -> str:
    """The line under an alert of the text listing with its id and state, so that it can be
    acknowledged: "    id 3e9df122f61a0724 · open"."""
    return f"    id {alert['id']} · {_state_words(alert)}"


def _print_report(report: dict[str, Any]) -> None:
    overall = report["overall"]
    if not overall["alerts"]:
        echo_err("no alerts stored in this period")
        return
    period = f"{report['since']} to {report['until']}"
    days = f" ({report['days']:g} days)" if report["days"] else ""
    echo_out(f"alerts whose window ends from {period}{days}")
    echo_out(
        f"{'key':<28} {'alerts':>6} {'open':>5} {'acked':>5} {'noise':>5} {'muted':>5}  noise share"
    )
    rows = [*({"kind": "", "key": "all", **overall},), *report["keys"]]
    for row in rows:
        name = f"{row['kind']} {row['key']}".strip()
        share = "-" if row["noise_share"] is None else f"{row['noise_share']:.0%}"
        echo_out(
            f"{name[:28]:<28} {row['alerts']:>6} {row['open']:>5} {row['acknowledged']:>5} "
            f"{row['noise']:>5} {row['muted']:>5}  {share}"
        )
    if overall["noise_per_day"] is not None:
        echo_out(f"noise alerts per day: {overall['noise_per_day']:g}")
    echo_err("noise share: noise among the alerts acknowledged or marked noise (1 - precision)")
