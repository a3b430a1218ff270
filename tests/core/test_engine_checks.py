"""Each numeric training setting has one rule (tunesmith.engine.checks): `train`, the pair
training and a plugin's own flag refuse a value with the same words, naming the caller's flag."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.errors import UserInputError


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\ngood,pos\nbad,neg\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("batch_size", 2.5, "--batch-size 2.5 is not valid; expected a whole number of at least 1"),
        ("batch_size", True, "--batch-size True is not valid"),
        ("seed", 1.5, "--seed 1.5 is not valid; expected a whole number from 0 to"),
        ("max_length", 64.0, "--max-length 64.0 is not valid"),
        ("pseudo_rounds", 1.5, "--pseudo-rounds 1.5 is not valid"),
        ("lora_r", 2.5, "--lora-r 2.5 is not valid; expected a whole number of at least 1"),
        ("epochs", "3", "--epochs '3' is not valid; expected a finite number above 0"),
        ("max_length", np.int64(2), "--max-length 2 is not valid; expected a whole number"),
    ],
)
def test_a_whole_number_setting_given_as_a_fraction_a_bool_or_text_is_one_error_line(
    data, option, value, message
):
    """`tunesmith.train(..., batch_size=2.5)` passed the checks, loaded the model and ended in
    torch's DataLoader traceback; a string epoch count was a TypeError from a comparison."""
    from tunesmith.engine.config import RunConfig

    strategy = "lora" if option.startswith("lora") else "full"
    with pytest.raises(UserInputError) as caught:
        RunConfig(data=data, strategy=strategy, **{option: value}).validate()
    assert str(caught.value).startswith(message)


def test_a_numpy_whole_number_is_a_whole_number(data):
    from tunesmith.engine.config import RunConfig

    RunConfig(data=data, batch_size=np.int64(8), seed=np.int32(7)).validate()


@pytest.mark.parametrize("epochs", [0, -1.0, float("inf"), float("nan")])
def test_train_and_pair_training_refuse_epochs_with_the_same_words(data, epochs):
    from tunesmith.engine.config import RunConfig
    from tunesmith.retrieval.pairs import check_pair_settings

    with pytest.raises(UserInputError) as engine:
        RunConfig(data=data, epochs=epochs).validate()
    with pytest.raises(UserInputError) as pairs:
        check_pair_settings(epochs=epochs)
    assert str(pairs.value) == str(engine.value)
    assert (
        str(engine.value) == f"--epochs {epochs!r} is not valid; expected a finite number above 0"
    )


def test_a_caller_names_its_own_flag_for_an_engine_rule():
    from tunesmith.engine.checks import check_epochs, check_settings

    with pytest.raises(UserInputError, match=r"^--classifier-epochs inf is not valid; expected a"):
        check_epochs(float("inf"), "--classifier-epochs")
    with pytest.raises(UserInputError, match=r"^--encoder-batch 0 is not valid; expected a whole"):
        check_settings({"epochs": 1.0, "batch_size": 0}, {"batch_size": "--encoder-batch"})
    check_settings({"epochs": None, "lr": None, "max_length": None})  # None: not given


def test_train_task_pairs_refuses_a_bad_setting_before_it_reads_the_pairs(
    cli, tmp_path, monkeypatch
):
    """`--epochs 0` was refused only once the pairs file had been read and checked."""
    from tunesmith.retrieval import pairs

    def read_pairs(*_args, **_kwargs):
        raise AssertionError("the pairs were read before the settings were checked")

    monkeypatch.setattr(pairs, "read_pairs", read_pairs)
    data = tmp_path / "pairs.csv"
    data.write_text("q,a\nq1,a1\n", encoding="utf-8")
    result = cli("train", "--task", "pairs", "--data", str(data), "--text-col", "q",
                 "--pair-col", "a", "--out", str(tmp_path / "enc"), "--max-length", "2")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --max-length 2 is not valid; expected a whole number of at least 4"
    )
