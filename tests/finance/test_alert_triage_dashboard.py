"""Triage on the dashboard without a browser: its buttons mark, mute and refuse as
`finance alerts --ack/--noise/--reopen/--mute` do, in the page's words, and a mark given in a
terminal redraws the page's table."""

from __future__ import annotations

import pytest
from finance_fakes import store_sample_stream

from tunesmith_finance import demo, demo_triage


@pytest.fixture
def board(tmp_path):
    """A dashboard on the sample stream with its alerts stored (banking by topic, HLXB and
    CRWN by ticker), as the page's checks store them."""
    from tunesmith_finance.alerts import AlertOptions, default_detector, run_alerts
    from tunesmith_finance.storage import open_store

    db = tmp_path / "feed.sqlite"
    store_sample_stream(db)
    board = demo.Dashboard(model="unused", db=str(db))
    board._db, board.status = open_store(db), "Ready."
    for by in ("topic", "ticker"):
        run_alerts(board._db, detector=default_detector(board._db), options=AlertOptions(by=by))
    yield board
    board._db.close()


def test_a_mark_given_in_a_terminal_changes_what_the_page_redraws_on(board):
    from tunesmith_finance.triage import mark_alerts, mute_key

    before = board.signature("topic", "auto", demo.TOP)
    (banking,) = [a for a in board.snapshot("topic", "1h", demo.TOP)["alert_choices"]]
    mark_alerts(board._db, [banking[1]], "acknowledged", who="ana")
    marked = board.signature("topic", "auto", demo.TOP)
    assert marked != before  # the state column was stale until a document arrived
    mute_key(board._db, "ticker", "HLXB", 3600, who="ana")
    assert board.signature("topic", "auto", demo.TOP) != marked


def test_the_table_names_each_alert_by_its_id_and_the_triage_list_follows_it(board):
    view = board.snapshot("ticker", "1h", demo.TOP)
    assert demo.alert_headers("UTC")[-2:] == ["state", "id"]
    ids = [row[-1] for row in view["rows"]]
    assert [alert_id for _label, alert_id in view["alert_choices"]] == ids
    label = view["alert_choices"][0][0]
    assert label.startswith(f"{view['rows'][0][1]}, 2026-11-05T") and ", open, id " in label


def test_the_page_marks_mutes_and_refuses_in_its_own_words(board):
    view = board.snapshot("topic", "1h", demo.TOP)
    banking = view["alert_choices"][0][1]
    nameless = demo_triage.mark_alert(board._db, banking, "acknowledged", "  ", None)
    assert nameless.startswith("**Not marked:**") and "Your name" in nameless
    assert "Choose an alert" in demo_triage.mark_alert(board._db, None, "noise", "ana", None)
    said = demo_triage.mark_alert(board._db, banking, "noise", "ana", "a known story")
    assert said == "Alert on topic banking marked as noise by ana."
    again = demo_triage.mark_alert(board._db, banking, "acknowledged", "bo", None)
    assert "Reopen it first" in again and "--" not in again
    reopened = demo_triage.mark_alert(board._db, banking, "reopened", "bo", None)
    assert reopened == "Alert on topic banking reopened by bo; it is open again."
    muted = demo_triage.mute_alert_key(board._db, banking, "2d", "ana", "earnings week")
    assert muted.startswith("Muted topic banking until ") and "(2d, by ana)" in muted
    assert "Muted now: topic banking until " in board.snapshot("topic", "1h", demo.TOP)["details"]
    assert demo_triage.unmute_alert_key(board._db, banking).startswith("Unmuted topic banking")
    refused = demo_triage.unmute_alert_key(board._db, banking)
    assert "topic banking is not muted" in refused and "--" not in refused
    states = {row[1]: row[7] for row in board.snapshot("topic", "1h", demo.TOP)["rows"]}
    assert states == {"banking": "open"}
