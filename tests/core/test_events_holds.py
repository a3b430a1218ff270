"""A sink down for hours: after three failed deliveries in a row it is held, emits keep its
deliveries as failed without trying, one trial delivery probes it after a cool-down that
grows, every process emitting into the outbox sees the hold, and `events retry` forces it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tunesmith.errors import UserInputError
from tunesmith.events import (
    OUTBOX_MIGRATIONS,
    RetryPolicy,
    emit,
    list_deliveries,
    list_holds,
    retry,
)
from tunesmith.hooktypes import Event
from tunesmith.store import Store


class Sink:
    """``memory:NAME``: counts its sends, and fails each while ``down``."""

    def __init__(self, name: str = "hook", down: bool = True, during_send=None) -> None:
        self.sink_url = f"memory:{name}"
        self.down = down
        self.calls = 0
        self.got: list[str] = []
        self.during_send = during_send

    def send(self, event: Event) -> None:
        self.calls += 1
        if self.during_send is not None:
            action, self.during_send = self.during_send, None
            action()
        if self.down:
            raise ConnectionError("[Errno 111] Connection refused")
        self.got.append(event.message)


def policy(hold_for: float = 30.0, tries: int = 1) -> RetryPolicy:
    return RetryPolicy(tries=tries, base_delay=0, hold_after=3, hold_for=hold_for)


def send(outbox, sink, message: str, rule: RetryPolicy):
    return emit(Event(kind="support.handoff", message=message), [sink], outbox=outbox, retry=rule)


def test_emits_to_a_sink_that_failed_three_deliveries_in_a_row_keep_them_without_trying(
    tmp_path, capsys
):
    """Each emit to a webhook down for hours paid 3 tries and their timeouts (a support `ask`
    that hands off took 16 s with a receiver that accepts and never answers)."""
    outbox, down = tmp_path / "o.sqlite", Sink()
    rule = policy(tries=2)
    reports = [send(outbox, down, f"m{i}", rule) for i in range(8)]
    assert down.calls == 3 * 2  # three deliveries of two tries each, then none
    assert [r.skipped for r in reports] == [[]] * 3 + [["memory:hook"]] * 5
    rows = list_deliveries(outbox)
    assert {d.status for d in rows} == {"failed"}  # nothing lost: each kept for a retry
    assert [d.attempts for d in rows] == [2, 2, 2, 0, 0, 0, 0, 0]
    (hold,) = list_holds(outbox)
    assert rows[-1].last_error.startswith(f"not tried: sink held until {hold.held_until}")
    assert (hold.sink, hold.failures, hold.holds, hold.over) == ("memory:hook", 3, 1, False)
    assert "held until" in capsys.readouterr().err


def test_a_success_in_between_starts_the_count_again(tmp_path):
    outbox, hook = tmp_path / "o.sqlite", Sink()
    for i in range(2):
        send(outbox, hook, f"down{i}", policy())
    hook.down = False
    send(outbox, hook, "up", policy())
    hook.down = True
    for i in range(2):
        send(outbox, hook, f"again{i}", policy())
    assert hook.calls == 5 and list_holds(outbox) == []


def test_after_the_cool_down_one_trial_delivery_lifts_the_hold(tmp_path):
    outbox, hook = tmp_path / "o.sqlite", Sink()
    rule = policy(hold_for=0.3, tries=3)
    for i in range(3):
        send(outbox, hook, f"m{i}", rule)
    hook.down, hook.calls = False, 0
    assert send(outbox, hook, "while held", rule).skipped == ["memory:hook"]
    assert hook.calls == 0
    time.sleep(0.35)
    trial = send(outbox, hook, "trial", rule)
    assert trial.delivered == ["memory:hook"] and hook.got == ["trial"]
    assert list_holds(outbox) == []
    assert send(outbox, hook, "after", rule).delivered == ["memory:hook"]


def test_a_failed_trial_holds_the_sink_again_for_twice_as_long_with_one_try(tmp_path):
    outbox, hook = tmp_path / "o.sqlite", Sink()
    rule = policy(hold_for=0.2, tries=3)
    for i in range(3):
        send(outbox, hook, f"m{i}", rule)
    time.sleep(0.25)
    hook.calls = 0
    started = time.time()
    report = send(outbox, hook, "trial", rule)
    assert report.failed == ["memory:hook"] and not report.skipped
    assert hook.calls == 1  # a trial is one attempt, not the policy's three
    (hold,) = list_holds(outbox)
    assert hold.holds == 2
    from datetime import datetime

    held_for = datetime.fromisoformat(hold.held_until).timestamp() - started
    assert 0.3 < held_for < 0.6  # 0.2 s, doubled
    assert send(outbox, hook, "still held", rule).skipped == ["memory:hook"]
    assert hook.calls == 1


def test_the_cool_down_stops_growing_at_max_hold(tmp_path):
    outbox, hook = tmp_path / "o.sqlite", Sink()
    rule = RetryPolicy(tries=1, base_delay=0, hold_after=3, hold_for=0.1, max_hold=0.15)
    for i in range(3):
        send(outbox, hook, f"m{i}", rule)
    for _ in range(2):
        time.sleep(0.2)
        send(outbox, hook, "trial", rule)
    (hold,) = list_holds(outbox)
    assert hold.holds == 3
    from datetime import UTC, datetime

    left = datetime.fromisoformat(hold.held_until) - datetime.now(UTC)
    assert left.total_seconds() <= 0.15


def test_only_one_emitter_sends_the_trial_delivery(tmp_path):
    """Once the cool-down ended, every emitter (a `support serve`, a `finance watch`) would
    try at once; one sends the trial, the others keep holding while it runs."""
    outbox = tmp_path / "o.sqlite"
    rule = policy(hold_for=0.1)
    for i in range(3):
        send(outbox, Sink(), f"m{i}", rule)
    time.sleep(0.15)
    other = Store.open(outbox, namespace="events", migrations=OUTBOX_MIGRATIONS)
    beside = Sink(down=False)
    during: list = []
    # The second emitter (its own connection, as another process has) emits while the first
    # one is sending its trial.
    trial = Sink(down=False, during_send=lambda: during.append(send(other, beside, "b", rule)))
    assert send(outbox, trial, "a", rule).delivered == ["memory:hook"]
    other.close()
    assert beside.calls == 0 and during[0].skipped == ["memory:hook"]
    assert "another emit sending its trial" in during[0].errors["memory:hook"]
    assert list_holds(outbox) == []


def test_a_trial_whose_process_died_does_not_hold_the_sink_for_good(tmp_path):
    outbox = tmp_path / "o.sqlite"
    rule = policy(hold_for=0.1)
    for i in range(3):
        send(outbox, Sink(), f"m{i}", rule)
    time.sleep(0.15)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    from tunesmith.events import _start_time, open_outbox
    from tunesmith.hooktypes import utc_now

    gone = f"{__import__('socket').gethostname()}:{child.pid}:{_start_time(child.pid)}"
    open_outbox(outbox).execute(
        "UPDATE outbox_sinks SET prober = ?, probe_at = ?", (gone, utc_now())
    )
    hook = Sink(down=False)
    assert send(outbox, hook, "trial", rule).delivered == ["memory:hook"]


def test_the_hold_is_seen_by_another_process_emitting_into_the_same_outbox(tmp_path):
    outbox = tmp_path / "o.sqlite"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the sink wants a folder", encoding="utf-8")
    url = f"jsonl:{blocked / 'e.jsonl'}"
    for i in range(3):
        send(outbox, url, f"m{i}", policy())
    script = (
        "import sys\n"
        "from tunesmith.events import RetryPolicy, emit\n"
        "from tunesmith.hooktypes import Event\n"
        "r = emit(Event(kind='k', message='there'), [sys.argv[1]], outbox=sys.argv[2],\n"
        "         retry=RetryPolicy(tries=1, base_delay=0))\n"
        "print(r.skipped)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, url, str(outbox)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr([url])
    there = list_deliveries(outbox)[-1]
    assert (there.event.message, there.status, there.attempts) == ("there", "failed", 0)


def test_events_retry_tries_a_held_sink_at_once_and_its_success_lifts_the_hold(tmp_path):
    outbox = tmp_path / "o.sqlite"
    for i in range(5):
        send(outbox, Sink(), f"m{i}", policy())
    assert list_holds(outbox)
    back = Sink(down=False)
    reports = retry(outbox, sinks={"memory:hook": back}, policy=policy())
    assert back.got == [f"m{i}" for i in range(5)] and all(r.ok for r in reports)
    assert list_holds(outbox) == []
    assert send(outbox, back, "next", policy()).delivered == ["memory:hook"]


def test_a_retry_of_a_held_sink_still_down_tries_one_delivery_not_three(tmp_path):
    outbox = tmp_path / "o.sqlite"
    for i in range(6):
        send(outbox, Sink(), f"m{i}", policy())
    down = Sink()
    reports = retry(outbox, sinks={"memory:hook": down}, policy=policy())
    assert down.calls == 1
    assert sum(1 for r in reports if r.skipped) == 5
    assert "its trial delivery in this retry failed" in reports[-1].errors["memory:hook"]
    assert {d.status for d in list_deliveries(outbox)} == {"failed"}


def test_no_sink_is_held_with_hold_after_none(tmp_path):
    outbox, hook = tmp_path / "o.sqlite", Sink()
    rule = RetryPolicy(tries=1, base_delay=0, hold_after=None)
    for i in range(5):
        send(outbox, hook, f"m{i}", rule)
    assert hook.calls == 5 and list_holds(outbox) == []


@pytest.mark.parametrize(
    ("field", "value"), [("hold_after", 0), ("hold_after", 2.5), ("hold_for", -1)]
)
def test_a_hold_setting_out_of_range_is_refused(field, value):
    with pytest.raises(UserInputError, match=f"RetryPolicy.{field}"):
        RetryPolicy(**{field: value})


def test_events_list_and_tail_say_which_sink_is_held_and_until_when(tmp_path, cli):
    outbox = tmp_path / "o.sqlite"
    url = "webhook:https://hooks.example.com/services/T0/B0/s3cret"

    class Down:
        sink_url = url

        def send(self, event):
            raise ConnectionError("refused")

    for i in range(4):
        send(outbox, Down(), f"m{i}", policy())
    (hold,) = list_holds(outbox)
    for command in ("list", "tail"):
        result = cli("events", command, "--outbox", str(outbox))
        assert result.exit_code == 0, result.output
        (said,) = [line for line in result.stderr.splitlines() if line.startswith("held:")]
        assert "https://hooks.example.com" in said and "s3cret" not in said
        assert f"until {hold.held_until}" in said
        assert f"`tunesmith events retry --outbox {outbox}` tries it now" in said
        assert "held:" not in result.stdout  # the table (or the JSON) stays as it was
    as_json = cli("events", "list", "--outbox", str(outbox), "--json")
    assert as_json.exit_code == 0 and as_json.stdout.startswith("[")


def test_commands_named_for_a_held_sink_name_the_outbox_they_need(tmp_path, cli):
    # A KB's conversations.sqlite, not the default outbox: a bare `events retry` (or `events
    # list`) read the default one and found nothing to send.
    outbox = tmp_path / "conversations.sqlite"

    class Down:
        sink_url = "webhook:http://127.0.0.1:9/hook"

        def send(self, event):
            raise ConnectionError("refused")

    for i in range(4):
        send(outbox, Down(), f"m{i}", policy())
    stored = [d.last_error for d in list_deliveries(outbox) if d.attempts == 0]
    assert stored and not any("events retry`" in error for error in stored)
    result = cli("events", "retry", "--outbox", str(outbox))
    assert result.exit_code == 1
    assert f"see `tunesmith events list --status failed --outbox {outbox}`" in result.stderr
    (held,) = [line for line in result.stderr.splitlines() if line.startswith("held:")]
    assert f"`tunesmith events retry --outbox {outbox}` tries it now" in held
