"""Command-line texts: argv bytes that are not UTF-8 end in one ``Error:`` line, in predict and
explain, before the tokenizer can raise a ``TypeError``."""

from __future__ import annotations

import os

import pytest

from tunesmith.data.limits import MAX_FIELD_CHARS, cli_text
from tunesmith.errors import UserInputError

torch = pytest.importorskip("torch")

LABELS = ["negative", "positive"]
TEXTS = ["the app is great", "i love it", "the refund is terrible", "i hate the delay"]
# What Python makes of the argv bytes b"caf\xe9" (Latin-1 "café") under a UTF-8 locale.
LATIN1_ARGV = os.fsdecode(b"caf\xe9")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from tunesmith.testing import make_tiny_classifier

    return make_tiny_classifier(tmp_path_factory.mktemp("clf"), LABELS, TEXTS)


def test_latin1_argv_byte_is_refused_naming_the_byte():
    assert LATIN1_ARGV == "caf\udce9"
    with pytest.raises(UserInputError, match=r"--text is not UTF-8 \(byte 0xe9 at character 4\)"):
        cli_text(LATIN1_ARGV)


def test_text_longer_than_the_limit_is_refused():
    with pytest.raises(UserInputError, match="the limit is 1,000,000"):
        cli_text("a" * (MAX_FIELD_CHARS + 1))


def test_unicode_text_including_line_separators_passes_unchanged():
    text = "café \u2028 naïve \u0085 日本"
    assert cli_text(text) == text


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_not_utf8_text_is_one_error_line_in_predict_and_explain(cli, model_dir, command):
    result = cli(command, "--model", str(model_dir), "--text", LATIN1_ARGV)
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, TypeError | UnicodeError)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "Error: --text is not UTF-8 (byte 0xe9 at character 4); set a UTF-8 locale or "
        "convert it, e.g. with `iconv -t utf-8`"
    ]


def test_predict_still_labels_a_valid_unicode_text(cli, model_dir):
    result = cli("predict", "--model", str(model_dir), "--text", "café \u2028 ok", "--json")
    assert result.exit_code == 0, result.output
    assert '"label"' in result.stdout
