"""The security review's mends in finance: text from a news feed is data, never terminal input."""

from __future__ import annotations

import json

from finance_fakes import KeywordModel

from tunesmith_finance.sample import STREAM

#: What a hostile feed can put in a headline: clear the screen, set the window title, write the
#: clipboard (OSC 52, honoured by several terminals) and overwrite the line with a carriage return.
HOSTILE = "\x1b[2J\x1b]0;owned\x07\x1b]52;c;ZWNobyBvd25lZA==\x07\rall is fine\u202e"


def test_feed_text_and_topics_are_printed_with_control_characters_escaped(
    cli, db, sample_rules, tmp_path
):
    """`finance alerts --list` and `finance trends` printed the headlines and topics of an
    ingested feed as they came, escape sequences and all: a feed could clear the operator's
    terminal, retitle it, write the clipboard or forge a line of output."""
    from tunesmith_finance.alerts import run_alerts
    from tunesmith_finance.detector import SurgeDetector
    from tunesmith_finance.ingest import Ingester

    hostile = tmp_path / "feed.jsonl"
    with STREAM.open(encoding="utf-8") as source, hostile.open("w", encoding="utf-8") as out:
        for line in source:
            row = json.loads(line)
            row["text"] += " " + HOSTILE
            out.write(json.dumps(row) + "\n")
    Ingester(db, KeywordModel(), sample_rules, warn=lambda _m: None).ingest_file(hostile)
    Ingester(db, KeywordModel(), sample_rules, warn=lambda _m: None).ingest_file(
        _one_topic_row(tmp_path)
    )
    assert run_alerts(db, detector=SurgeDetector(prior=0.2))
    path = str(db.path)
    db.close()
    listed = cli("finance", "alerts", "--db", path, "--list")
    assert listed.exit_code == 0, listed.output
    trends = cli("finance", "trends", "--db", path, "--by", "topic", "--bucket", "1d")
    assert trends.exit_code == 0, trends.output
    for result in (listed, trends):
        assert "\x1b" not in result.output and "\x07" not in result.output
        assert "\r" not in result.output and "\u202e" not in result.output
    assert "\\x1b]0;owned" in listed.output  # shown, so the operator sees what the feed held
    assert "\\x1b]0 " in trends.output  # a topic split at ";" as topics are


def _one_topic_row(tmp_path):
    """A document naming its own topic, which the store keeps as a trend key."""
    path = tmp_path / "topic.jsonl"
    row = {"id": "t1", "time": "2026-11-03T10:00:00Z", "source": "x", "text": "quiet day",
           "topic": "\x1b]0;owned\x07"}  # fmt: skip
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return path
