"""A damaged model directory: a truncated or garbled ``model.safetensors`` is one Error line
naming the file (was a ``SafetensorError`` traceback)."""

from __future__ import annotations

import shutil

import pytest

from tunesmith.errors import DataError

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from tunesmith.testing import make_tiny_classifier

    return make_tiny_classifier(tmp_path_factory.mktemp("clf"), ["a", "b"], ["x y", "z w"])


@pytest.fixture
def damaged(model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return copy


def test_truncated_weights_are_one_error_line_naming_the_file_in_predict(cli, damaged):
    weights = damaged / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    result = cli("predict", "--model", str(damaged), "--text", "hello")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {weights}: the weights file is damaged or incomplete")
    assert "retrain" in lines[0]


@pytest.mark.parametrize(
    ("cut", "reason"),
    [(4, "too short"), (20, "shorter than its own header"), (-1, "tensors need")],
)
def test_weights_cut_anywhere_are_refused_by_load_model(damaged, cut, reason):
    from tunesmith.engine.loading import load_model

    weights = damaged / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:cut])
    with pytest.raises(DataError, match=reason):
        load_model(damaged)


def test_garbled_header_is_refused_naming_the_file(damaged):
    from tunesmith.engine.loading import load_model

    weights = damaged / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:16] = b"\xff" * 8  # the JSON header's first bytes
    weights.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"model\.safetensors: .*header is not valid"):
        load_model(damaged)


def test_intact_weights_still_load(model_dir):
    from tunesmith.engine.loading import load_model

    assert load_model(model_dir).labels == ["a", "b"]


@pytest.mark.parametrize(
    "content",
    ["[" * 100_000 + "]" * 100_000, '{"temperature": ' + "9" * 5000 + "}", "{oops"],
)
@pytest.mark.parametrize("name", ["config.json", "calibration.json", "run_config.json"])
def test_hostile_json_in_a_model_directory_is_one_error_line(cli, damaged, name, content):
    (damaged / name).write_text(content, encoding="utf-8")
    result = cli("predict", "--model", str(damaged), "--text", "hello")
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
