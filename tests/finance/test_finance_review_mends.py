"""Bugs found by a review of the finance plugin, each pinned by a test that failed before its fix."""

from __future__ import annotations

import pytest
from finance_fakes import KeywordModel, doc, write_csv, write_jsonl

from tunesmith.errors import DataError
from tunesmith_finance.alerts import list_alerts, run_alerts
from tunesmith_finance.detector import SurgeDetector
from tunesmith_finance.ingest import Ingester
from tunesmith_finance.replay import replay
from tunesmith_finance.rules import Rules, rules_from_dict
from tunesmith_finance.storage import count_documents
from tunesmith_finance.trends import trends


def _ingester(db, rules=None):
    return Ingester(db, KeywordModel(), rules, warn=lambda _m: None)


def test_a_time_before_1970_falls_in_its_own_bucket_not_the_next(db):
    # SQLite's CAST truncates towards zero: -0.5 hour became bucket 0 (1970-01-01T00:00).
    _ingester(db).ingest_records(
        [
            doc(1, "shares plunge", time="1969-12-31T23:30:00Z", topic="x"),
            doc(2, "calm note", time="1970-01-01T00:30:00Z", topic="x"),
        ]
    )
    rows = trends(db, by="topic", bucket="1h")
    assert [(r.bucket_start, r.count, r.negatives) for r in rows] == [
        ("1969-12-31T23:00:00Z", 1, 1),
        ("1970-01-01T00:00:00Z", 1, 0),
    ]


def test_a_time_pushed_off_the_calendar_by_its_zone_is_a_skipped_row_not_a_crash(db, tmp_path):
    path = write_jsonl(
        tmp_path / "edge.jsonl",
        [
            doc(1, time="0001-01-01T00:00:00+01:00"),
            doc(2, time="9999-12-31T23:59:59-01:00"),
            doc(3),
        ],
    )
    report = _ingester(db).ingest_file(path)
    assert (report.read, report.added, report.skipped) == (3, 1, 2)
    assert [(i.line, i.kind) for i in report.issues] == [(1, "skipped"), (2, "skipped")]
    assert "out of range" in report.issues[0].detail
    assert count_documents(db) == 1


def test_replay_reports_issues_at_their_line_in_the_file(db, tmp_path):
    rules = rules_from_dict({"topics": {"banking": {"keywords": ["bank"]}}})
    rows = [doc(i, f"note {i}", time=f"2026-11-02T10:{i:02d}:00Z") for i in range(1, 6)]
    rows.append(doc(2, "a changed note", time="2026-11-02T11:10:00Z"))  # line 6
    rows.append(doc(7, "odd one", time="2026-11-02T11:20:00Z", topic="weird"))  # line 7
    path = write_jsonl(tmp_path / "stream.jsonl", rows)
    replay(
        _ingester(db, rules),
        path,
        detector=SurgeDetector(prior=0.2),
        explain=False,
        echo=lambda _line: None,
    )
    issues = db.query("SELECT line, doc_id, kind FROM finance_issues ORDER BY line")
    assert [(r["line"], r["doc_id"], r["kind"]) for r in issues] == [
        (6, "d2", "changed_text"),
        (7, "d7", "unknown_topic"),
    ]


def test_a_surge_found_a_bucket_earlier_by_a_later_run_stays_in_the_stored_alerts_cooldown(db):
    ingester = _ingester(db)
    calm = [
        doc(i, f"calm note {i}", time=f"2026-11-01T{i // 6:02d}:{i % 6 * 10:02d}:00Z", topic="x")
        for i in range(144)
    ]
    surge = [
        doc(200 + i, f"shares plunge {i}", time=f"2026-11-02T{10 + i // 6}:{i % 6 * 10:02d}:00Z")
        for i in range(18)
    ]
    for row in surge:
        row["topic"] = "x"
    ingester.ingest_records(calm + surge)
    detector = SurgeDetector(prior=0.1)
    (first,) = run_alerts(db, detector=detector)
    assert first["window"] == "2026-11-02T09:00:00Z/2026-11-02T12:00:00Z"
    # Late documents of the same surge: the detector now finds it one bucket earlier, a window
    # with another id, one hour after the stored alert, inside its 6 h cool-down.
    late = [
        doc(300 + i, f"shares plunge late {i}", time=f"2026-11-02T09:{i * 10:02d}:00Z", topic="x")
        for i in range(6)
    ]
    ingester.ingest_records(late)
    assert run_alerts(db, detector=detector) == []
    assert [a["id"] for a in list_alerts(db)] == [first["id"]]


def test_a_csv_header_naming_a_used_column_twice_is_refused_with_the_column(db, tmp_path):
    path = write_csv(
        tmp_path / "twice.csv",
        ["id", "time", "text", "text"],
        [["1", "2026-11-02T10:00:00Z", "old headline", "shares plunge"]],
    )
    with pytest.raises(DataError) as caught:
        _ingester(db).ingest_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:1, column 'text':")
    assert "fields 3, 4" in message
    assert count_documents(db) == 0


def test_an_unrelated_repeated_csv_column_is_still_accepted(db, tmp_path):
    path = write_csv(
        tmp_path / "notes.csv",
        ["id", "time", "text", "note", "note"],
        [["1", "2026-11-02T10:00:00Z", "shares plunge", "a", "b"]],
    )
    assert _ingester(db).ingest_file(path).added == 1


@pytest.mark.parametrize(
    ("text", "ticker"),
    [
        ("\u0130nc Ix shares rise", "III"),  # Turkish dotted capital I lowers to two characters
        ("\u017fass Corp shares fall", "SSS"),  # the long s matches s case-insensitively
        ("inc   ix posts results", "III"),
    ],
)
def test_an_alias_matched_case_insensitively_names_its_ticker_instead_of_crashing(text, ticker):
    # Lower-case aliases: those match in any case (a capitalised one is a name, matched as
    # written or in capitals).
    rules = rules_from_dict(
        {"tickers": {"III": {"aliases": ["inc ix"]}, "SSS": {"aliases": ["sass corp"]}}}
    )
    assert rules.tickers(text) == [ticker]


def test_rules_built_with_unnormalised_alias_spacing_still_find_the_ticker():
    assert Rules(aliases={"  Helix   Bank ": "HLXB"}).tickers("Helix Bank falls") == ["HLXB"]
    assert Rules(aliases={"  helix   bank ": "HLXB"}).tickers("HELIX bank falls") == ["HLXB"]


def test_a_nested_json_text_or_id_is_a_skipped_row_not_its_python_repr(db, tmp_path):
    path = write_jsonl(
        tmp_path / "nested.jsonl",
        [
            {"id": "n1", "time": "2026-11-02T10:00:00Z", "text": {"en": "shares plunge"}},
            {"id": ["n2"], "time": "2026-11-02T10:00:00Z", "text": "shares plunge"},
            doc(3),
        ],
    )
    report = _ingester(db).ingest_file(path)
    assert (report.added, report.skipped) == (1, 2)
    assert [i.detail for i in report.issues] == [
        "column 'text': text is an object, not a string",
        "column 'id': id is a list, not a string",
    ]
    assert [r["id"] for r in db.query("SELECT id FROM finance_documents")] == ["d3"]
