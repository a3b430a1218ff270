from __future__ import annotations

import json

from tunesmith.testing import check_plugin_contract
from tunesmith_finance import plugin
from tunesmith_finance.sample import STREAM, sample_data


def test_the_finance_plugin_keeps_the_contract():
    assert check_plugin_contract(plugin) == []


def test_the_sample_stream_has_zones_tickers_topics_and_a_banking_surge():
    docs = [json.loads(line) for line in STREAM.read_text().splitlines()]
    assert len(docs) == 435 and len({d["id"] for d in docs}) == 435
    assert {d["time"][19:] for d in docs} >= {"Z", "+01:00", "-05:00", "+09:00", "+05:30"}
    assert any("tickers" in d for d in docs) and any("topic" not in d for d in docs)
    surge = [
        d for d in docs if d["time"].startswith("2026-11-05T1") and d.get("topic") == "banking"
    ]
    assert len(surge) >= 10


def test_sample_sets_are_registered_with_existing_files():
    names = {s.name: s for s in sample_data()}
    assert set(names) == {"finance_sentences", "finance_headlines"}
    assert all(p.is_file() for s in names.values() for p in s.paths.values())
