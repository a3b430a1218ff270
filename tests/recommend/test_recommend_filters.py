"""Query-time filters on item fields (``train --filter-cols``, ``--where``): what a shop's
merchandiser asks for ("only horror", "only films before 2000") and the one-line mistakes.
Each test failed before filters existed. Models are tiny and built in-process."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from tunesmith.errors import DataError, UserInputError
from tunesmith_recommend.data import load_items, sample_paths

FIELDS = "year,genres,theme"


def run(*args):
    from tunesmith.cli import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def shop(tiny_model, tmp_path_factory):
    """The sample trained by `train`'s own workflow with --filter-cols year,genres,theme."""
    from tunesmith_recommend.pipeline import Settings
    from tunesmith_recommend.workflow import DataFiles, train_model

    out = tmp_path_factory.mktemp("filters") / "films"
    settings = Settings(model=tiny_model, fine_tune=False, tower_epochs=1)
    said: list[str] = []
    train_model(out, DataFiles(sample=True, filter_cols=FIELDS), settings, say=said.append)
    return out


@pytest.fixture
def copy(shop, tmp_path):
    target = tmp_path / "films"
    shutil.copytree(shop, target)
    return target


def items_of(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [item["item_id"] for item in json.loads(result.stdout)["items"]]


def test_train_keeps_the_filter_columns_typed_in_the_model(shop):
    meta = json.loads((shop / "meta.json").read_text(encoding="utf-8"))
    assert meta["item_fields"] == {"year": "number", "genres": "text", "theme": "text"}
    fields = json.loads((shop / "catalogue.json").read_text(encoding="utf-8"))["fields"]
    catalogue = load_items(sample_paths()["items"])
    at = catalogue.position["f002"]
    assert fields["year"][at] == 2020.0
    assert fields["genres"][at] == ["animation", "space opera"]  # an a|b cell: either matches


def test_for_user_where_is_the_full_ranking_of_the_matching_items(shop):
    # A filter is a mask over the catalogue applied before the top k: the same order as every
    # unseen item ranked and then filtered, never an item that fails a condition.
    from tunesmith_recommend.model import Recommender

    recommender = Recommender(shop)
    fields = json.loads((shop / "catalogue.json").read_text(encoding="utf-8"))["fields"]

    def matches(item: str) -> bool:
        at = recommender.position[item]
        genres = fields["genres"][at]
        genres = [genres] if isinstance(genres, str) else genres
        return "horror" in genres and fields["year"][at] < 2005

    everything = recommender.for_user("u01", k=len(recommender.ids))
    expected = [r.item_id for r in everything if matches(r.item_id)][:5]
    assert len(expected) == 5
    got = items_of(
        run(
            "recommend", "for-user", "u01", "-m", shop, "-k", 5, "--json",
            "--where", "genres=Horror", "--where", "year<2005",
        )
    )  # fmt: skip
    assert got == expected


def test_a_wide_filter_takes_the_candidate_pools_and_still_matches(shop, monkeypatch):
    # Above FILTERED_FULL_RANK matching items the request keeps its candidate pools (plus the
    # filter's best items by the item-only part): every item returned matches, k of them.
    from tunesmith_recommend import model

    monkeypatch.setattr(model, "FILTERED_FULL_RANK", 3)
    recommender = model.Recommender(shop)
    found = recommender.for_user("u02", k=10, where=["year>=2000"])
    assert len(found) == 10
    fields = recommender.fields.numbers["year"]
    assert all(fields[recommender.position[r.item_id]] >= 2000 for r in found)
    liked = recommender.for_liked(["f001"], k=10, where=["theme!=history"])
    assert len(liked) == 10
    history = set(recommender.fields.texts["theme"]["history"].tolist())
    assert not history & {recommender.position[r.item_id] for r in liked}


def test_similar_and_search_take_where_too(shop, monkeypatch):
    from tunesmith_recommend import model

    recommender = model.Recommender(shop)
    years = recommender.fields.numbers["year"]
    for full_rank in (5_000, 3):  # exact over the matches, and the widened index search
        monkeypatch.setattr(model, "FILTERED_FULL_RANK", full_rank)
        near = recommender.similar("f042", k=5, where=["year<2010"])
        assert len(near) == 5 and "f042" not in [r.item_id for r in near]
        assert all(years[recommender.position[r.item_id]] < 2010 for r in near)
        unfiltered = [r.item_id for r in recommender.similar("f042", k=len(recommender.ids))]
        kept = [i for i in unfiltered if years[recommender.position[i]] < 2010][:5]
        assert [r.item_id for r in near] == kept
        found = recommender.search("a haunted lake", k=4, where=["year>=2010"])
        assert len(found) == 4
        assert all(years[recommender.position[r.item_id]] >= 2010 for r in found)


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("colour=red", "--where 'colour=red': this model keeps no field 'colour' to filter on "
         "(its fields: genres, theme, year)"),
        ("year<abc", "--where 'year<abc': year is a number in this model, 'abc' is not"),
        ("genres<b", "--where 'genres<b': genres is text in this model; compare it with = or !="),
        ("year~2000", "--where 'year~2000': no comparison; write FIELD=VALUE"),
        ("year=", "--where 'year=': no value after '='"),
        ("year<=>3", "--where 'year<=>3': one comparison per condition"),
    ],
)  # fmt: skip
def test_a_bad_filter_is_one_line(shop, where, said):
    result = run("recommend", "for-user", "u01", "-m", shop, "--where", where)
    assert result.exit_code == 2
    assert said in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_filter_that_leaves_nothing_says_so(shop):
    result = run("recommend", "for-user", "u01", "-m", shop, "--where", "year>3000")
    assert result.exit_code == 2
    assert "no films match --where year>3000" in result.output
    found = run("recommend", "search", "lake", "-m", shop, "--where", "genres=western")
    assert found.exit_code == 2 and "no films match --where genres=western" in found.output


def test_fewer_matches_than_asked_are_said_under_the_list(shop):
    result = run(
        "recommend", "for-user", "u01", "-m", shop, "-k", 50,
        "--where", "genres=horror", "--where", "year<2000",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("only ") and "match --where genres=horror, year<2000" in last


def test_a_model_without_filter_columns_says_how_to_keep_them(shop, tmp_path):
    target = tmp_path / "plain"
    shutil.copytree(shop, target)
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    meta["item_fields"] = {}
    (target / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    catalogue = json.loads((target / "catalogue.json").read_text(encoding="utf-8"))
    del catalogue["fields"]
    (target / "catalogue.json").write_text(json.dumps(catalogue), encoding="utf-8")
    result = run("recommend", "for-user", "u01", "-m", target, "--where", "year<2000")
    assert result.exit_code == 2
    assert "train it with --filter-cols" in result.output


def test_added_items_carry_their_fields_and_a_bad_cell_is_one_line(copy, tmp_path):
    new = tmp_path / "new.csv"
    new.write_text(
        "item_id,title,year,genres,theme,description\n"
        "n001,Harbour of Stars,2031,space opera,rebellion,A rebel pilot leads a stolen fleet.\n"
        "n002,The Drowned Bell,2030,horror,grief,A bell rings under a haunted lake.\n",
        encoding="utf-8",
    )
    assert run("recommend", "add-items", "--items", new, "-m", copy).exit_code == 0
    got = items_of(
        run("recommend", "for-user", "u01", "-m", copy, "--json", "--where", "year>2029")
    )
    assert sorted(got) == ["n001", "n002"]
    assert items_of(
        run("recommend", "similar", "f042", "-m", copy, "--json", "--where", "theme=grief")
    ) == ["n002"]
    before = (copy / "added_items.json").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "item_id,title,year,genres,theme,description\n"
        "n003,Quiet Harbour,soon,drama,family,A ferry town waits.\n",
        encoding="utf-8",
    )
    result = run("recommend", "add-items", "--items", bad, "-m", copy)
    assert result.exit_code == 2
    assert "bad.csv:2, column 'year': 'soon' is not a number" in result.output
    missing = tmp_path / "missing.csv"
    missing.write_text("item_id,title,description,genres\nn004,Far,A far place.,drama\n")
    result = run("recommend", "add-items", "--items", missing, "-m", copy)
    assert result.exit_code == 2 and "column 'year'" in result.output
    assert (copy / "added_items.json").read_bytes() == before  # nothing written


def test_added_items_keep_their_fields_through_a_merge(copy, tmp_path, monkeypatch):
    # Past a tenth of the catalogue the added part is written whole into catalogue.json: the
    # fields must go with it.
    from tunesmith_recommend import item_parts

    monkeypatch.setattr(item_parts, "MERGE_SHARE", 0.0)
    new = tmp_path / "new.csv"
    new.write_text(
        "item_id,title,year,genres,theme,description\n"
        "n001,Harbour of Stars,2031,space opera,rebellion,A rebel pilot leads a stolen fleet.\n",
        encoding="utf-8",
    )
    from tunesmith_recommend.workflow import add_items_from

    add_items_from(copy, new)
    assert not (copy / "added_items.json").exists()
    fields = json.loads((copy / "catalogue.json").read_text(encoding="utf-8"))["fields"]
    assert fields["year"][-1] == 2031.0 and len(fields["theme"]) == 151
    got = items_of(
        run("recommend", "for-user", "u01", "-m", copy, "--json", "--where", "year>2029")
    )
    assert got == ["n001"]


def test_the_python_api_takes_where_as_text_list_or_dict(copy):
    import pandas as pd

    import tunesmith_recommend as recommend

    model = recommend.load(copy, reload="call")
    horror = model.for_user("u01", where={"genres": "horror"}, top_k=3)
    assert len(horror) == 3
    either = model.for_user("u01", where={"genres": ["horror", "comedy"]}, top_k=3)
    assert either == model.for_user("u01", where="genres=horror|comedy", top_k=3)
    both = model.for_user("u01", where=["genres=horror", "year<2000"], top_k=3)
    assert [r["item_id"] for r in both] == [
        r["item_id"] for r in model.for_user("u01", where="genres=horror", top_k=50)
        if r["item_id"] in {b["item_id"] for b in both}
    ][:3]  # fmt: skip
    with pytest.raises(UserInputError, match="where 'year<abc': year is a number"):
        model.for_liked(["f001"], where="year<abc")
    # add_items from a DataFrame keeps the fields' columns (data_file writes only those named)
    frame = pd.DataFrame(
        {
            "item_id": ["n010"], "title": ["Glass Harbour"], "year": [2040],
            "genres": ["drama"], "theme": ["grief"], "description": ["A quiet port."],
            "unused": ["x"],
        }
    )  # fmt: skip
    model.add_items(frame)
    assert [r["item_id"] for r in model.search("harbour", where="year=2040")] == ["n010"]


def test_a_mostly_numeric_column_with_a_stray_text_is_text_with_a_note(tmp_path):
    file = tmp_path / "items.csv"
    file.write_text(
        "item_id,title,price\na,Alpha,12.5\nb,Beta,n/a\nc,Gamma,3\nd,Delta,\n", encoding="utf-8"
    )
    catalogue = load_items(file, text_cols=[], field_cols=["price"])
    assert catalogue.field_types == {"price": "text"}
    assert catalogue.notes == [
        "--filter-cols price: read as text ('n/a' on row 3 is not a number), so --where "
        "compares it with = and != only"
    ]
    typed = load_items(file, text_cols=[], field_cols=["price"], field_types={"price": "text"})
    assert typed.fields["price"] == ["12.5", "n/a", "3", None]
    with pytest.raises(DataError, match="'n/a' is not a number"):
        load_items(file, text_cols=[], field_cols=["price"], field_types={"price": "number"})


def test_missing_cells_match_no_condition():
    from tunesmith_recommend.filters import ItemFields

    fields = ItemFields(
        {"price": [10.0, None, 30.0], "category": ["books", None, ["music", "Books"]]},
        {"price": "number", "category": "text"},
        3,
    )
    mask = lambda *where: np.flatnonzero(fields.mask(fields.parse(where))).tolist()  # noqa: E731
    assert mask("price<20") == [0]
    assert mask("price!=10") == [2]
    assert mask("category=BOOKS") == [0, 2]
    assert mask("category!=books") == []
    assert mask("category=music|books", "price>=20") == [2]
