"""`finance alerts` loads the sentiment model (torch, transformers, scikit-learn: seconds) only
when a new alert needs its explaining words, and once."""

from __future__ import annotations

import json

import pytest

from tunesmith_finance.sample import RULES, STREAM


@pytest.fixture
def model_loads(monkeypatch):
    """The paths ``SentimentModel.load`` is asked for from now on (the loads still happen)."""
    from tunesmith_finance.scoring import SentimentModel

    asked: list[str] = []
    original = SentimentModel.load

    def counted(cls, path, **kwargs):
        asked.append(str(path))
        return original(path, **kwargs)

    monkeypatch.setattr(SentimentModel, "load", classmethod(counted))
    return asked


def test_alerts_finding_nothing_new_load_no_model(cli, tiny_model, tmp_path, model_loads):
    from tunesmith_finance.storage import open_store

    open_store(tmp_path / "f.sqlite").close()
    result = cli("finance", "alerts", "--db", str(tmp_path / "f.sqlite"), "--model",
                 str(tiny_model))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "no new alerts" in result.output
    assert model_loads == []


def test_new_alerts_load_the_model_once_for_their_words(cli, tiny_model, tmp_path, model_loads):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.storage import open_store

    db = tmp_path / "f.sqlite"
    store = open_store(db)
    Ingester(store, KeywordModel(), load_rules(RULES), warn=lambda _m: None).ingest_file(STREAM)
    store.close()
    # By ticker the sample's surge fires twice: both explained with the one loaded model.
    result = cli("finance", "alerts", "--db", str(db), "--model", str(tiny_model), "--json",
                 "--by", "ticker", "--max-explain", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert len(found) == 2
    assert any(alert["words"] for alert in found)
    assert model_loads == [str(tiny_model)]


def test_the_stored_model_path_is_absolute_so_alerts_find_it_from_any_folder(tmp_path, monkeypatch):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.storage import get_meta, open_store

    monkeypatch.chdir(tmp_path)
    store = open_store(tmp_path / "f.sqlite")
    try:
        ingester = Ingester(
            store, KeywordModel(path="fin"), load_rules(RULES), warn=lambda _m: None
        )
        ingester.ingest_file(STREAM)
        assert get_meta(store, "model") == str(tmp_path / "fin")
    finally:
        store.close()


def test_the_stored_model_path_keeps_a_link_so_alerts_follow_it_to_a_new_model(tmp_path):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.storage import get_meta, open_store

    # A deployment ships each model to its own folder and points `current` at the one served:
    # stored resolved, alerts kept explaining with (or, once removed, without) the old model.
    (tmp_path / "v1").mkdir()
    (tmp_path / "current").symlink_to(tmp_path / "v1", target_is_directory=True)
    store = open_store(tmp_path / "f.sqlite")
    try:
        ingester = Ingester(
            store, KeywordModel(path=tmp_path / "current"), load_rules(RULES),
            warn=lambda _m: None,
        )  # fmt: skip
        ingester.ingest_file(STREAM)
        assert get_meta(store, "model") == str(tmp_path / "current")
    finally:
        store.close()


def test_ingest_run_again_over_stored_rows_loads_no_model(cli, tiny_model, tmp_path, model_loads):
    db = str(tmp_path / "f.sqlite")
    first = cli("finance", "ingest", str(STREAM), "--model", str(tiny_model), "--db", db)
    assert first.exit_code == 0, first.output
    assert model_loads == [str(tiny_model)]  # loaded once, for the first batch
    again = cli("finance", "ingest", str(STREAM), "--model", str(tiny_model), "--db", db)
    assert again.exit_code == 0, again.output
    assert "0 rows read" in again.output
    assert model_loads == [str(tiny_model)]  # nothing new to score: no second load


def test_ingest_refuses_a_missing_model_before_any_work(cli, tmp_path, model_loads):
    db = tmp_path / "f.sqlite"
    result = cli("finance", "ingest", str(STREAM), "--model", str(tmp_path / "nomodel"),
                 "--db", str(db))  # fmt: skip
    assert result.exit_code != 0
    assert "nomodel" in result.output and "does not exist" in result.output
    assert "Traceback" not in result.output
    assert not db.exists()
