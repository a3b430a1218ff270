"""`finance train` refuses an existing --out before it reads the data or imports torch: the
refusal took as long as reading a large file (seconds) before it came."""

from __future__ import annotations

import pytest


def _fail(*_args, **_kwargs):
    raise AssertionError("read before the --out check")


@pytest.fixture
def existing_out(tmp_path):
    out = tmp_path / "runs" / "fin"
    out.mkdir(parents=True)
    return out


@pytest.fixture
def data(tmp_path):
    from tunesmith.testing import write_csv

    return write_csv(tmp_path / "t.csv", [["profit beats estimates", "positive"]] * 4)


def test_finance_train_refuses_an_existing_out_before_reading_the_data(
    cli, monkeypatch, existing_out, data
):
    import tunesmith.data.load
    import tunesmith_finance.training

    monkeypatch.setattr(tunesmith.data.load, "load_text_dataset", _fail)
    # Telling the device imports torch (seconds): the engine does it after the --out check too.
    monkeypatch.setattr(tunesmith_finance.training, "resolve_device", _fail)
    result = cli("finance", "train", "--data", str(data), "--out", str(existing_out))
    assert result.exit_code == 2, result.output
    assert "exists already; pass --force" in result.output


def test_finance_train_topics_refuses_an_existing_out_before_reading_the_topics(
    cli, monkeypatch, existing_out, data
):
    import tunesmith_finance.topic_data
    import tunesmith_finance.training

    monkeypatch.setattr(tunesmith_finance.topic_data, "topic_training_files", _fail)
    monkeypatch.setattr(tunesmith_finance.training, "resolve_device", _fail)
    result = cli("finance", "train", "--topics", "--data", str(data), "--out", str(existing_out))
    assert result.exit_code == 2, result.output
    assert "exists already; pass --force" in result.output
    assert "every row has a topic" not in result.output  # nothing said about data not read


def test_finance_train_refuses_bad_epochs_before_reading_the_data(cli, monkeypatch, tmp_path, data):
    import tunesmith.data.load

    monkeypatch.setattr(tunesmith.data.load, "load_text_dataset", _fail)
    result = cli("finance", "train", "--data", str(data), "--out", str(tmp_path / "m"),
                 "--epochs", "0")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--epochs 0.0 is not valid" in result.output


def test_train_sentiment_refuses_an_existing_out_before_counting_the_rows(
    monkeypatch, existing_out, data
):
    from tunesmith.errors import OutputExistsError
    from tunesmith_finance import training

    monkeypatch.setattr(training, "load_text_dataset", _fail)
    with pytest.raises(OutputExistsError, match="exists already"):
        training.train_sentiment(data, existing_out, training.SentimentRecipe())
