"""Retired items (``recommend retire`` / ``restore``): a sold-out, withdrawn or recalled
product is never recommended again, without retraining, but stays in users' histories. Each
test failed before retiring existed. Models are tiny and built in-process."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from tunesmith.errors import UserInputError


def run(*args):
    from tunesmith.cli import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """The sample trained by `train`'s own workflow, with its genres kept for filters."""
    from tunesmith_recommend.pipeline import Settings
    from tunesmith_recommend.workflow import DataFiles, train_model

    out = tmp_path_factory.mktemp("retire") / "films"
    settings = Settings(model=tiny_model, fine_tune=False, tower_epochs=1)
    data = DataFiles(sample=True, filter_cols="genres")
    train_model(out, data, settings, say=lambda _: None)
    return out, settings, data


@pytest.fixture
def films(trained, tmp_path):
    target = tmp_path / "films"
    shutil.copytree(trained[0], target)
    return target


def every_list(recommender) -> dict[str, list[str]]:
    return {
        user: [r.item_id for r in recommender.for_user(user, k=10)]
        for user in sorted(recommender.histories)
    }


def popular(recommender, count: int) -> list[str]:
    """The items most often recommended across users: the ones worth retiring in a test."""
    seen: dict[str, int] = {}
    for items in every_list(recommender).values():
        for item in items:
            seen[item] = seen.get(item, 0) + 1
    return sorted(seen, key=lambda i: -seen[i])[:count]


def test_retired_items_are_never_recommended_found_or_similar(films, tmp_path):
    from tunesmith_recommend.model import Recommender

    before = Recommender(films)
    gone = popular(before, 3)
    ids = tmp_path / "sold_out.txt"
    ids.write_text(f"# sold out today\n{gone[0]}\n\n{gone[1]}\n", encoding="utf-8")
    result = run("recommend", "retire", "-m", films, "--items", ids, "--item", gone[2])
    assert result.exit_code == 0, result.output
    assert "Retired 3 films" in result.output
    after = Recommender(films)
    for user, items in every_list(after).items():
        assert not set(items) & set(gone), user
        assert len(items) == 10
    for item in after.ids[:40]:
        assert not {r.item_id for r in after.similar(item, k=10)} & set(gone)
    for text in ("a haunted lake", after.titles[after.position[gone[0]]]):
        assert not {r.item_id for r in after.search(text, k=10)} & set(gone)
    assert not {r.item_id for r in after.for_liked([gone[0]], k=10)} & set(gone)
    # a retired item may still be asked about: what to offer instead of it
    assert len(after.similar(gone[0], k=5)) == 5


def test_retired_items_stay_in_histories_and_reasons(films):
    from tunesmith_recommend.model import Recommender

    before = Recommender(films)
    user = "u01"
    liked = before.for_user(user, k=10)[0].because[0]["item_id"]  # named in a reason
    run("recommend", "retire", "-m", films, "--item", liked)
    after = Recommender(films)
    assert after.histories[user] == before.histories[user]
    # the user tower still reads it, so the reasons may still name it ("because you liked X")
    named = {b["item_id"] for r in after.for_user(user, k=10) for b in r.because}
    assert liked in named
    # and the lists are those of before, the retired item left out (it was never offered back)
    assert [r.item_id for r in after.for_user(user, k=10)] == [
        r.item_id for r in before.for_user(user, k=10)
    ]


def test_restore_brings_back_exactly_the_lists_of_before(films):
    from tunesmith_recommend.model import Recommender

    before = Recommender(films)
    lists = every_list(before)
    gone = popular(before, 4)
    assert (
        run("recommend", "retire", "-m", films, *[a for i in gone for a in ("--item", i)]).exit_code
        == 0
    )
    result = run(
        "recommend", "restore", "-m", films, "--json", *[a for i in gone for a in ("--item", i)]
    )
    assert json.loads(result.stdout) == {
        "model_dir": str(films), "restored": 4, "not_retired": 0, "retired_items": 0,
    }  # fmt: skip
    assert every_list(Recommender(films)) == lists


def test_an_unknown_id_is_one_line_and_nothing_is_written(films, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("f001\nf999\n", encoding="utf-8")
    result = run("recommend", "retire", "-m", films, "--items", ids)
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {ids}:2: film 'f999' is not in this model's catalogue"
    assert not (films / "retired.json").exists()
    result = run("recommend", "restore", "-m", films, "--item", "nope")
    assert result.exit_code == 2 and "film 'nope' is not in this model's catalogue" in result.output
    table = tmp_path / "ids.csv"
    table.write_text("sku,reason\nf001,recall\nbad,x\n", encoding="utf-8")
    result = run("recommend", "retire", "-m", films, "--items", table, "--id-col", "sku")
    assert result.exit_code == 2 and "ids.csv:3" in result.output
    assert not (films / "retired.json").exists()


def test_retire_rewrites_the_folder_atomically_linking_every_other_file(films):
    inodes = {p.name: p.stat().st_ino for p in films.iterdir() if p.is_file()}
    result = run("recommend", "retire", "-m", films, "--item", "f001", "--json")
    assert json.loads(result.stdout)["retired"] == 1
    for name, inode in inodes.items():
        if name != "meta.json":
            assert (films / name).stat().st_ino == inode, name  # hard links, not copies
    assert json.loads((films / "meta.json").read_text())["retired_items"] == 1
    # the same again changes nothing and writes nothing
    meta = (films / "meta.json").stat().st_ino
    again = run("recommend", "retire", "-m", films, "--item", "f001")
    assert again.exit_code == 0 and "Nothing changed" in again.output
    assert (films / "meta.json").stat().st_ino == meta


def test_a_loaded_model_serves_the_retirement_from_its_next_call(films):
    import tunesmith_recommend as recommend

    model = recommend.load(films, reload="never")
    first = model.for_user("u01", top_k=3)[0]["item_id"]
    done = model.retire(first)
    assert done["retired"] == 1
    assert first not in [r["item_id"] for r in model.for_user("u01", top_k=10)]
    model.restore([first])
    assert model.for_user("u01", top_k=3)[0]["item_id"] == first
    with pytest.raises(UserInputError, match="film 'zz' is not in this model's catalogue"):
        model.retire(["zz"])


def test_add_items_add_events_and_train_force_keep_the_retired_items(films, trained, tmp_path):
    from tunesmith_recommend.model import Recommender
    from tunesmith_recommend.updates import EventColumns, add_events
    from tunesmith_recommend.workflow import add_items_from, train_model

    _, settings, data = trained
    run("recommend", "retire", "-m", films, "--item", "f010", "--item", "f020")
    new = tmp_path / "new.csv"
    new.write_text(
        "item_id,title,genres,description\nn001,Harbour of Stars,space opera,A rebel fleet.\n",
        encoding="utf-8",
    )
    add_items_from(films, new)
    day = tmp_path / "day.csv"
    day.write_text("user_id,item_id,timestamp\nu01,f030,2030-01-01T00:00:00Z\n", encoding="utf-8")
    add_events(films, day, EventColumns(None, None, None, None, None, None, None))
    assert Recommender(films).retired.sum() == 2
    said: list[str] = []
    train_model(films, data, settings, force=True, say=said.append)
    recommender = Recommender(films)
    assert sorted(recommender.ids[i] for i in recommender.retired.nonzero()[0]) == ["f010", "f020"]
    assert any("2 item(s) retired in the model replaced stay retired" in s for s in said)


def test_a_filter_whose_items_are_all_retired_says_so(films):
    from tunesmith_recommend.filters import NothingMatches
    from tunesmith_recommend.model import Recommender

    westerns = [
        i for i, g in zip(
            Recommender(films).ids,
            json.loads((films / "catalogue.json").read_text())["fields"]["genres"],
            strict=True,
        )
        if "animation" in ([g] if isinstance(g, str) else g)
    ]  # fmt: skip
    run("recommend", "retire", "-m", films, *[a for i in westerns for a in ("--item", i)])
    with pytest.raises(NothingMatches, match="films matching --where genres=animation is retired"):
        Recommender(films).for_user("u01", where=["genres=animation"])
