"""The recommend demo's pieces without a browser."""

from __future__ import annotations

import pytest

from tunesmith.errors import UserInputError
from tunesmith_recommend import demo


def test_demo_on_a_folder_that_is_not_a_model_says_so_in_one_line(tmp_path):
    # `tunesmith recommend demo -m DIR` builds the page first: a traceback before this.
    with pytest.raises(UserInputError, match="is not a recommend model directory"):
        demo.build_demo(str(tmp_path / "missing"))
    (tmp_path / "histories.json").write_text("not json", encoding="utf-8")
    with pytest.raises(UserInputError, match="is not a recommend model directory"):
        demo.choices(str(tmp_path))


def test_titles_from_the_catalogue_are_shown_as_text():
    from types import SimpleNamespace

    rec = SimpleNamespace(
        title="<b>Night</b> *Shift*",
        item_id="f1",
        score=1.0,
        because=[{"title": "[Fog](javascript:x)", "share": 1.0}],
    )
    text = demo.results_markdown([rec], "For u01")
    assert "**&lt;b&gt;Night&lt;/b&gt; \\*Shift\\***" in text
    assert "*\\[Fog\\]\\(javascript:x\\)* (100%)" in text
