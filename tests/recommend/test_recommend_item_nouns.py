"""What the items are called, from ``train --item-noun``: the singular with its plural by the
regular English endings (``--item-noun novels`` gave "novelss"), a few known irregulars, or
``singular/plural``; and every command's output uses those words, not "items"."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tunesmith.errors import UserInputError
from tunesmith_recommend import cli
from tunesmith_recommend.nouns import item_noun_meta, item_nouns


def run(*args):
    from tunesmith.cli import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args])


@pytest.mark.parametrize(
    "value, words",
    [
        ("book", ("book", "books")),
        ("box", ("box", "boxes")),
        ("class", ("class", "classes")),
        ("story", ("story", "stories")),
        ("day", ("day", "days")),
        ("audio book", ("audio book", "audio books")),
        ("series", ("series", "series")),
        ("person", ("person", "people")),
        ("Person", ("Person", "People")),
        ("novel/novels", ("novel", "novels")),
        ("bus/buses", ("bus", "buses")),
    ],
)
def test_a_singular_item_noun_gets_its_regular_or_known_plural(value, words):
    assert item_nouns(item_noun_meta(value)) == words


@pytest.mark.parametrize("value", ["novels", "books", "bus", "audio books"])
def test_an_item_noun_that_may_be_a_plural_is_refused_not_given_another_s(value):
    with pytest.raises(UserInputError, match="may be a plural.*'singular/plural'"):
        item_noun_meta(value)


@pytest.fixture(scope="module")
def novels(tiny_model, tmp_path_factory):
    """The sample trained by the CLI as a catalogue of novels."""
    out = tmp_path_factory.mktemp("nouns") / "novels"
    result = run(
        "recommend", "train", "--sample", "--model", tiny_model, "--no-fine-tune",
        "--tower-epochs", 1, "--item-noun", "novel", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}: 150 novels, 60 users" in result.output
    return out


def test_train_refuses_a_plural_looking_item_noun_before_reading_anything(tmp_path):
    result = run("recommend", "train", "--sample", "--item-noun", "novels", "--out", tmp_path / "m")
    assert result.exit_code != 0
    assert "--item-noun 'novels' ends in 's'" in result.output and "novelss" not in result.output
    assert not (tmp_path / "m").exists()


def test_commands_name_the_items_with_the_models_noun(novels, tmp_path):
    meta = json.loads((novels / "meta.json").read_text(encoding="utf-8"))
    assert (meta["item_noun"], meta["item_noun_plural"]) == ("novel", "novels")
    result = run("recommend", "similar", "x999", "-m", novels)
    assert (
        result.exit_code != 0 and "novel 'x999' is not in this model's catalogue" in result.output
    )
    new = tmp_path / "new.csv"
    new.write_text(
        "item_id,title,description,genres\nn1,Harbour,A rebel pilot.,sea\n", encoding="utf-8"
    )
    result = run("recommend", "add-items", "--items", new, "-m", novels)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Added 1 novel to {novels} (151 novels now)"
    result = run("recommend", "add-items", "--items", new, "-m", novels)
    assert result.exit_code != 0 and "novel 'n1' is in the model already" in result.output


def test_an_empty_list_says_what_the_items_are(capsys):
    cli._print([], False, one="novel")
    assert "every novel in the catalogue" in capsys.readouterr().out
