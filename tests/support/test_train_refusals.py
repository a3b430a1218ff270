"""`support train` checks its arguments before any work or output, and `support index` an
--out that is not a knowledge base before it reads the sources."""

from __future__ import annotations

import pytest

from tunesmith.errors import UserInputError
from tunesmith_support.sample import sample_paths


def _fail(*_args, **_kwargs):
    raise AssertionError("work done before the arguments were checked")


@pytest.fixture
def no_work(monkeypatch):
    """train_kb's first pieces of work (loading the KB's encoder, reading the questions) fail."""
    from tunesmith_support import learning

    monkeypatch.setattr(learning, "load_encoder", _fail)
    monkeypatch.setattr(learning, "read_labelled", _fail)
    monkeypatch.setattr(learning, "check_training_device", _fail)  # imports torch


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": 0}, "--epochs 0 is not valid; expected a finite number above 0"),
        ({"epochs": float("inf")}, "--epochs inf is not valid"),
        ({"classifier": True, "classifier_epochs": 0}, "--classifier-epochs 0 is not valid"),
        ({"target_precision": 1.5}, "--target-precision must be between 0 and 1"),
    ],
)
def test_train_kb_refuses_bad_arguments_before_any_work_or_output(
    kb_copy, no_work, options, message
):
    from tunesmith_support.learning import train_kb

    said: list[str] = []
    with pytest.raises(UserInputError) as caught:
        train_kb(kb_copy, [sample_paths()["history"]], log=said.append, **options)
    assert message in str(caught.value)
    assert said == []  # "fine-tuning the encoder on N pairs" came before the refusal


def test_knowledge_base_train_epochs_0_is_refused_in_keywords_before_any_output(
    kb_copy, no_work, capsys
):
    from tunesmith_support.python_api import KnowledgeBase

    with KnowledgeBase.open(kb_copy, device="cpu") as kb, pytest.raises(UserInputError) as caught:
        kb.train(sample_paths()["history"], epochs=0)
    assert str(caught.value).startswith("epochs 0 is not valid")  # the keyword, not --epochs
    assert "fine-tuning" not in capsys.readouterr().err


def test_support_train_epochs_0_says_only_the_refusal(cli, kb_copy, no_work):
    result = cli("support", "train", "--kb", str(kb_copy), "--data",
                 str(sample_paths()["history"]), "--epochs", "0")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "fine-tuning" not in result.output
    assert "--epochs" in result.output


def test_support_index_refuses_a_folder_of_other_files_before_reading_the_sources(
    cli, monkeypatch, tmp_path
):
    from tunesmith_support import kbindex

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    monkeypatch.setattr(kbindex, "read_sources", _fail)
    result = cli("support", "index", "--kb", str(sample_paths()["kb"]), "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "is not a knowledge base" in result.output
    assert (out / "notes.txt").read_text() == "mine\n"
