"""Upgrading a model trained with a lone plural ``--item-noun``: before the singular rule,
``--item-noun novels`` was stored as ``novels``/``novelss`` (and ``series`` as ``seriess``); the
commands now read such a ``meta.json`` without the extra "s" instead of printing it in every
message."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tunesmith_recommend.nouns import item_noun_meta, item_nouns


def run(*args):
    from tunesmith.cli import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args])


@pytest.mark.parametrize(
    "stored, words",
    [
        (("novels", "novelss"), ("novels", "novels")),
        (("bus", "buss"), ("bus", "bus")),
        (("series", "seriess"), ("series", "series")),
        (("box", "boxs"), ("box", "boxs")),  # the old rule's plural, not a doubled "s": kept
    ],
)
def test_an_item_noun_stored_before_the_singular_rule_loses_its_doubled_s(stored, words):
    assert item_nouns({"item_noun": stored[0], "item_noun_plural": stored[1]}) == words


@pytest.mark.parametrize("value", ["book", "class", "series", "bus/buses", "novel/novels"])
def test_item_nouns_recorded_today_read_back_unchanged(value):
    meta = item_noun_meta(value)
    assert item_nouns(meta) == (meta["item_noun"], meta["item_noun_plural"])


def test_add_items_to_a_model_trained_with_item_noun_novels_says_novels(tiny_model, tmp_path):
    out = tmp_path / "model"
    result = run(
        "recommend", "train", "--sample", "--model", tiny_model, "--no-fine-tune",
        "--tower-epochs", 1, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # meta.json as yesterday's `train --item-noun novels` wrote it
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta.update(item_noun="novels", item_noun_plural="novelss")
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    new = tmp_path / "new.csv"
    new.write_text(
        "item_id,title,description,genres\nn1,Harbour,A rebel pilot.,sea\n"
        "n2,Kite,A quiet fox.,drama\n",
        encoding="utf-8",
    )
    result = run("recommend", "add-items", "--items", new, "-m", out)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Added 2 novels to {out} (152 novels now)"
    result = run("recommend", "similar", "x999", "-m", out)
    assert "novelss" not in result.output and "novels 'x999'" in result.output
    # the stored words are read, not rewritten behind the user's back
    assert json.loads(meta_path.read_text(encoding="utf-8"))["item_noun_plural"] == "novelss"
