"""``finance alerts`` and ``finance replay`` take ``--device``: the model that scores the replay
and explains the alert windows loads there, and a device the machine lacks is refused in one
line before the database or the file is read.

This machine has no GPU: CUDA is faked where a test needs it present, and the core's loader is
spied on (it records the device asked for, then loads on the CPU).
"""

from __future__ import annotations

import json

import pytest
import torch
from finance_fakes import spy_loader

from tunesmith.testing import fake_cuda
from tunesmith_finance.sample import RULES, STREAM

NO_GPU = "Error: --device cuda: no CUDA device is available"


@pytest.fixture
def surge_db(tmp_path):
    """The sample stream stored (scored by keywords): by ticker its surge fires twice."""
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.storage import open_store

    db = tmp_path / "f.sqlite"
    store = open_store(db)
    Ingester(store, KeywordModel(), load_rules(RULES), warn=lambda _m: None).ingest_file(STREAM)
    store.close()
    return db


def test_alerts_explain_their_windows_on_the_device_asked_for(
    cli, tiny_model, surge_db, monkeypatch
):
    fake_cuda(monkeypatch)
    asked = spy_loader(monkeypatch)
    args = ["finance", "alerts", "--db", str(surge_db), "--model", str(tiny_model), "--json"]
    result = cli(*args, "--by", "ticker", "--max-explain", "2", "--device", "cuda:0")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert len(found) == 2 and any(alert["words"] for alert in found)
    assert asked == ["cuda:0"]  # loaded once, there, for both windows


def test_alerts_default_is_auto(cli, tiny_model, surge_db, monkeypatch):
    asked = spy_loader(monkeypatch)
    args = ["finance", "alerts", "--db", str(surge_db), "--model", str(tiny_model), "--json"]
    result = cli(*args, "--by", "ticker", "--max-explain", "2")
    assert result.exit_code == 0, result.output
    assert asked == ["auto"]


def test_replay_scores_and_explains_on_the_device_asked_for(cli, tiny_model, tmp_path, monkeypatch):
    import tunesmith_finance.scoring as scoring

    fake_cuda(monkeypatch)
    asked = spy_loader(monkeypatch)
    topic_asked: list[str] = []
    real = scoring.load_model

    def topic_spy(path, *, device="cpu", **kwargs):
        topic_asked.append(device)
        return real(path, device="cpu", **kwargs)

    monkeypatch.setattr(scoring, "load_model", topic_spy)
    db = tmp_path / "r.sqlite"
    args = ["finance", "replay", str(STREAM), "--model", str(tiny_model), "--db", str(db)]
    result = cli(*args, "--topic-model", str(tiny_model), "--device", "cuda")
    assert result.exit_code == 0, result.output
    assert "replayed" in result.output
    assert asked == ["cuda"] and topic_asked == ["cuda"]


def test_alerts_refuse_a_missing_gpu_before_reading_the_database(
    cli, tiny_model, surge_db, tmp_path, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = surge_db.read_bytes()
    for extra in ([], ["--list"], ["--no-explain"]):
        args = ["finance", "alerts", "--db", str(surge_db), "--model", str(tiny_model), *extra]
        result = cli(*args, "--device", "cuda")
        assert result.exit_code == 2 and result.output.strip() == NO_GPU
    assert surge_db.read_bytes() == before  # no alert stored, none sent
    # Not even opened: a missing database would be said first otherwise.
    result = cli("finance", "alerts", "--db", str(tmp_path / "none.sqlite"), "--device", "cuda")
    assert result.exit_code == 2 and result.output.strip() == NO_GPU


def test_replay_refuses_a_missing_gpu_before_reading_the_file(
    cli, tiny_model, tmp_path, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    db = tmp_path / "r.sqlite"
    unread = str(tmp_path / "not_read.jsonl")
    args = ["finance", "replay", unread, "--model", str(tiny_model), "--db", str(db)]
    result = cli(*args, "--device", "cuda")
    assert result.exit_code == 2 and result.output.strip() == NO_GPU
    assert not db.exists()
