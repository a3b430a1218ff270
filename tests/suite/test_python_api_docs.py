"""The plugins from Python: the "From Python" example of each plugin's page runs as written
(tiny models in place of the default ones), every public name is in ``__all__`` with a
docstring, importing a plugin stays light, the results equal the commands' ``--json``, and
mistakes raise the command's one-line error.

A notebook user reads docs/support.md, finance.md and recommend.md and runs their examples:
a renamed function or a changed record must fail here, not in her notebook.
"""

from __future__ import annotations

import csv
import importlib
import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.errors import UserInputError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tunesmith_support", "tunesmith_finance", "tunesmith_recommend")
HEAVY = ("torch", "transformers", "faiss", "gradio", "captum", "numpy", "pandas")
FINANCE_LABELS = ["negative", "neutral", "positive"]


def python_example(page: str) -> str:
    """The code of the ```python blocks of a page's "From Python" section."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    section = text.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, f"{page}: no python block under 'From Python'"
    return "\n".join(blocks)


def run_example(page: str, replacements: dict[str, str]) -> dict[str, object]:
    """Run a page's example in the current folder, each ``replacements`` key (which must be
    in it) replaced; returns its variables."""
    code = python_example(page)
    for old, new in replacements.items():
        assert old in code, f"{page}: the example no longer has {old!r}"
        code = code.replace(old, new)
    namespace: dict[str, object] = {"__name__": "__docs_example__"}
    exec(compile(code, f"docs/{page}", "exec"), namespace)
    return namespace


def json_of(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def error_line(result) -> str:
    assert result.exit_code != 0, result.output
    return result.output.strip().splitlines()[-1].removeprefix("Error: ")


# ---------------------------------------------------------------- tiny models


@pytest.fixture(scope="module")
def support_encoder(tmp_path_factory) -> Path:
    from tunesmith.testing import make_tiny_base_model
    from tunesmith_support.sample import sample_paths

    paths = sample_paths()
    texts = []
    for name in ("faq", "history", "questions"):
        with paths[name].open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                texts += [row["question"], row.get("answer", "")]
    texts += [doc.read_text(encoding="utf-8") for doc in paths["docs"].iterdir()]
    return make_tiny_base_model(tmp_path_factory.mktemp("support_encoder"), texts)


@pytest.fixture(scope="module")
def support_kb(support_encoder, tmp_path_factory) -> Path:
    """The sample KB indexed with the tiny encoder and calibrated on the sample history."""
    import tunesmith_support as support
    from tunesmith_support.sample import sample_paths

    out = tmp_path_factory.mktemp("support_kb") / "kb"
    support.index(sample_paths()["kb"], out, model=str(support_encoder))
    with support.KnowledgeBase.open(out) as kb:
        kb.calibrate(sample_paths()["history"], target_precision=0.5)
    for leftover in (
        "conversations.sqlite",
        "conversations.sqlite-wal",
        "conversations.sqlite-shm",
    ):
        (out / leftover).unlink(missing_ok=True)
    return out


@pytest.fixture(scope="module")
def finance_model(tmp_path_factory) -> Path:
    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith_finance.sample import TRAIN

    with TRAIN.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:60]
    extra = ["helix bank shares plunge on deposit worries", "orcana beats estimates"]
    return make_tiny_trained_classifier(
        tmp_path_factory.mktemp("finance_model"),
        FINANCE_LABELS,
        [r["text"] for r in rows] + extra,
        [FINANCE_LABELS.index(r["label"]) for r in rows] + [0, 2],
        steps=15,
    )


@pytest.fixture(scope="module")
def finance_db(finance_model, tmp_path_factory) -> Path:
    """The sample stream ingested with the tiny model, its alerts found."""
    import tunesmith_finance as finance
    from tunesmith_finance.sample import RULES, STREAM

    db = tmp_path_factory.mktemp("finance_db") / "fin.sqlite"
    monitor = finance.Monitor(db)
    monitor.ingest(STREAM, model=finance_model, rules=RULES)
    # Loose settings: the tiny model's scores are nearly random, yet some alert must be stored.
    assert monitor.alerts(max_explain=5, min_volume=1, min_lift=0.0, p_value=0.5, prior=0.0)
    return db


@pytest.fixture(scope="module")
def films(tmp_path_factory) -> Path:
    """A recommend model of the sample films on a tiny encoder, trained by the command."""
    from typer.testing import CliRunner

    from tunesmith.cli import build_app
    from tunesmith.testing import make_tiny_base_model
    from tunesmith_recommend.data import load_items, sample_paths

    root = tmp_path_factory.mktemp("films")
    encoder = make_tiny_base_model(root / "encoder", load_items(sample_paths()["items"]).texts)
    out = root / "films"
    result = CliRunner().invoke(
        build_app(),
        ["recommend", "train", "--sample", "--model", str(encoder), "--out", str(out),
         "--no-fine-tune", "--tower-epochs", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def films_encoder(films: Path) -> Path:
    """The tiny encoder the ``films`` model was trained with."""
    return films.parent / "encoder"


#: The files of docs/recommend.md's quick start and daily updates.
NEW_FILMS = """item_id,title,genres,description
n001,Harbour of Stars,space opera,A rebel pilot leads a stolen fleet against a galactic empire.
n002,The Drowned Bell,horror,A bell rings under a haunted lake every night a child goes missing.
"""
DAY = """user_id,item_id,rating,timestamp
u01,f017,5,2026-04-20T09:00:00Z
newbie,f001,5,2026-04-20T10:00:00Z
newbie,f017,4,2026-04-20T10:05:00Z
"""


# ---------------------------------------------------------------- the pages' examples


def test_the_support_page_example_runs_and_answers(support_encoder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = run_example(
        "support.md",
        {
            'support.index(S["kb"], "kb")': f'support.index(S["kb"], "kb", model={str(support_encoder)!r})'
        },
    )
    assert found["report"]["entries"] == 75
    assert found["turn"]["decision"] in ("answer", "clarify", "handoff")
    assert found["follow_up"]["conversation_id"] == found["turn"]["conversation_id"]
    assert found["metrics"]["questions"] == 88
    assert found["rows"][0]["turns"] == 2 and found["rows"][0]["feedback"] == 1


def test_the_finance_page_example_runs_on_the_sample_stream(finance_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    found = run_example("finance.md", {'"runs/fin"': repr(str(finance_model))})
    assert [r["tickers"] for r in found["scored"]] == [["HLXB"], ["ORCN"]]
    assert all("words" in r for r in found["scored"])
    assert found["report"]["added"] == 435
    assert {r["key"] for r in found["rows"]} >= {"banking"}
    assert [a["id"] for a in found["stored"]] == [a["id"] for a in found["new"]][::-1]


def test_the_recommend_page_example_trains_serves_updates_and_evaluates(
    films, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "new_films.csv").write_text(NEW_FILMS, encoding="utf-8")
    (tmp_path / "day.csv").write_text(DAY, encoding="utf-8")
    tiny = f"sample=True, fine_tune=False, model={str(films_encoder(films))!r}, tower_epochs=2)"
    found = run_example(
        "recommend.md",
        {
            'recommend.train("films", sample=True, fine_tune=False)': f'recommend.train("films", {tiny}',
            "recommend.evaluate_models(sample=True, fine_tune=False)": f"recommend.evaluate_models({tiny}",
        },
    )  # fmt: skip
    assert found["summary"]["items"] == 150 and found["summary"]["out"] == "films"
    assert len(found["picks"]) == 5 and found["picks"][0]["because"]
    assert len(found["found"]) == 10
    assert found["words"]["passage_tokens"]
    assert found["added"] == {"model_dir": "films", "added": 2, "items": 152}
    assert found["day"]["added"] == 3 and found["day"]["new_users"] == 1
    assert found["newbie"] and {p["item_id"] for p in found["newbie"]}.isdisjoint({"f001", "f017"})
    assert found["report"]["best_baseline"] and "final_ranker" in found["report"]["models"]


# ---------------------------------------------------------------- the public names


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_is_in_all_and_has_a_docstring(name):
    package = importlib.import_module(name)
    assert package.__all__ and package.__doc__
    missing = []
    for public in package.__all__:
        value = getattr(package, public)  # a name __all__ lists must resolve
        if not inspect.getdoc(value):
            missing.append(public)
        if inspect.isclass(value):
            for attr, member in vars(value).items():
                if not attr.startswith("_") and not inspect.getdoc(member):
                    missing.append(f"{public}.{attr}")
    assert missing == []
    # Every public function of the API module is exported.
    api = importlib.import_module(f"{name}.python_api")
    defined = {
        n for n, v in vars(api).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == api.__name__
        and (inspect.isfunction(v) or inspect.isclass(v))
    }  # fmt: skip
    assert defined - set(package.__all__) <= {"score_records"}  # the command's helper


@pytest.mark.parametrize("name", PACKAGES)
def test_no_public_name_is_a_module_of_its_package_so_importing_one_cannot_replace_it(name):
    # Importing a submodule sets the package's attribute of its name: `tunesmith_recommend.
    # evaluate` (a module) would stand where a function `evaluate` was, once anything
    # imported it.
    import importlib.util

    package = importlib.import_module(name)
    assert [n for n in package.__all__ if importlib.util.find_spec(f"{name}.{n}")] == []


def test_evaluate_models_stays_the_function_after_the_evaluate_module_is_imported():
    import tunesmith_recommend as recommend
    import tunesmith_recommend.evaluate  # noqa: F401  (what training imports)

    assert inspect.isfunction(recommend.evaluate_models)
    assert inspect.isfunction(recommend.train)


@pytest.mark.parametrize("name", PACKAGES)
def test_the_python_api_imports_no_private_helper_of_a_command_module(name):
    import ast

    api = importlib.import_module(f"{name}.python_api")
    tree = ast.parse(Path(api.__file__).read_text(encoding="utf-8"))
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and ".commands" in (node.module or "")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


@pytest.mark.parametrize("name", PACKAGES)
def test_importing_a_plugin_package_and_its_api_imports_nothing_heavy(name):
    probe = (
        f"import sys, {name}; {name}.{importlib.import_module(name).__all__[0]}; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


# ---------------------------------------------------------------- the same as --json


def test_support_ask_returns_what_ask_json_prints(support_kb, tmp_path, cli):
    import tunesmith_support as support

    by_cli, by_python = tmp_path / "cli", tmp_path / "python"
    shutil.copytree(support_kb, by_cli)
    shutil.copytree(support_kb, by_python)
    printed = json_of(cli("support", "ask", "--kb", str(by_cli), "--json", "how much is delivery?"))
    with support.KnowledgeBase.open(by_python) as kb:
        returned = kb.ask("how much is delivery?")
    for fresh in ("conversation_id", "handoff_event"):  # a new random id each time
        assert (returned.pop(fresh) is None) == (printed.pop(fresh) is None)
    assert returned == printed


def test_support_evaluate_and_calibrate_return_what_their_json_prints(support_kb, tmp_path, cli):
    import tunesmith_support as support
    from tunesmith_support.sample import sample_paths

    paths = sample_paths()
    kb_dir = tmp_path / "kb"
    shutil.copytree(support_kb, kb_dir)
    with support.KnowledgeBase.open(kb_dir) as kb:
        metrics = kb.evaluate(paths["questions"])
        fitted = kb.calibrate(paths["history"], target_precision=0.5)
    assert metrics == json_of(cli("support", "eval", "--kb", str(kb_dir), "--data",
                                  str(paths["questions"]), "--json"))  # fmt: skip
    assert fitted == json_of(cli("support", "calibrate", "--kb", str(kb_dir), "--data",
                                 str(paths["history"]), "--target-precision", "0.5", "--json"))  # fmt: skip


def test_finance_score_returns_the_records_score_json_prints(finance_model, cli):
    import tunesmith_finance as finance
    from tunesmith_finance.sample import RULES

    texts = ["Helix Bank shares plunge on deposit worries", "Orcana beats estimates"]
    args = ["finance", "score", "-m", str(finance_model), "--rules", str(RULES), "--json"]
    result = cli(*args, *[f"--text={t}" for t in texts])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert finance.score(texts, finance_model, rules=RULES) == printed
    # One string is one text, not a list of its characters.
    assert finance.score(texts[0], finance.load_model(finance_model), rules=RULES) == printed[:1]
    # A DataFrame's column, as the core's API takes it (it was refused: "got Series").
    pandas = pytest.importorskip("pandas")
    assert finance.score(pandas.Series(texts), finance_model, rules=RULES) == printed


def test_finance_trends_and_alerts_return_what_their_json_prints(finance_db, cli):
    import tunesmith_finance as finance

    monitor = finance.Monitor(finance_db)
    rows = monitor.trends(by="ticker", bucket="6h", since="2026-11-04")
    assert rows and rows == json_of(cli("finance", "trends", "--db", str(finance_db), "--by",
                                        "ticker", "--bucket", "6h", "--since", "2026-11-04",
                                        "--json"))  # fmt: skip
    stored = monitor.stored_alerts()
    assert stored and stored == json_of(
        cli("finance", "alerts", "--db", str(finance_db), "--list", "--json")
    )
    # Already stored: nothing new.
    assert monitor.alerts(max_explain=5, min_volume=1, min_lift=0.0, p_value=0.5, prior=0.0) == []


def test_recommend_results_are_the_items_of_the_commands_json(films, cli):
    import tunesmith_recommend as recommend

    model = recommend.load(films)
    m = ["-m", str(films), "--json"]
    assert (
        model.for_user("u01", k=4)
        == json_of(cli("recommend", "for-user", "u01", "-k", "4", *m))["items"]
    )
    assert (
        model.for_liked(["f001", "f017"])
        == json_of(cli("recommend", "for-user", "--liked", "f001", "--liked", "f017", *m))["items"]
    )
    assert (
        model.similar("f042", k=3)
        == json_of(cli("recommend", "similar", "f042", "-k", "3", *m))["items"]
    )
    assert (
        model.search("a haunted lake")
        == json_of(cli("recommend", "search", "a haunted lake", *m))["items"]
    )
    printed = json_of(cli("recommend", "for-user", "u01", "-k", "1", "--explain", *m))
    assert model.explain(model.for_user("u01", k=1)[0]) == printed["words"]


def test_finance_prune_returns_what_prune_json_prints(finance_db, tmp_path, cli):
    import tunesmith_finance as finance

    by_cli, by_python = tmp_path / "cli.sqlite", tmp_path / "python.sqlite"
    shutil.copy(finance_db, by_cli)
    shutil.copy(finance_db, by_python)
    cut = ["--before", "2026-11-04"]
    monitor = finance.Monitor(by_python)
    plan = monitor.prune(before="2026-11-04", dry_run=True)
    assert plan["documents"] > 0
    assert plan == json_of(
        cli("finance", "prune", "--db", str(by_cli), *cut, "--dry-run", "--json")
    )
    pruned = monitor.prune(before="2026-11-04")
    printed = json_of(cli("finance", "prune", "--db", str(by_cli), *cut, "--json"))
    assert pruned.pop("seconds") >= 0 and printed.pop("seconds") >= 0
    assert pruned == printed and pruned["documents"] == plan["documents"]
    assert monitor.stored_alerts() == finance.Monitor(finance_db).stored_alerts()  # kept
    # A datetime without a zone is UTC, as --before reads it.
    from datetime import datetime

    again = monitor.prune(before=datetime(2026, 11, 4), dry_run=True)
    assert again["cutoff"] == plan["cutoff"] and again["documents"] == 0


def test_recommend_train_and_evaluate_models_return_what_their_json_prints(films, tmp_path, cli):
    import tunesmith_recommend as recommend

    encoder = films_encoder(films)
    tiny = ["--sample", "--model", str(encoder), "--no-fine-tune", "--tower-epochs", "2"]

    def train(out):
        return recommend.train(out, sample=True, model=encoder, fine_tune=False, tower_epochs=2)

    # The first fit after other tests' torch work here moved the ranker's weights in their
    # last digits (and only then: each fit after it agrees with the next to the bit), so one
    # is run first and compared without them.
    warm = train(tmp_path / "warm")
    printed = json_of(cli("recommend", "train", *tiny, "--out", str(tmp_path / "cli"), "--json"))
    returned = train(tmp_path / "python")
    assert {k: v for k, v in warm.items() if k not in ("out", "ranker_weights")} == {
        k: v for k, v in printed.items() if k not in ("out", "ranker_weights")
    }
    assert returned.pop("out") == str(tmp_path / "python")
    assert printed.pop("out") == str(tmp_path / "cli")
    assert returned == printed and returned["items"] == 150
    cli_model, python_model = recommend.load(tmp_path / "cli"), recommend.load(tmp_path / "python")
    assert python_model.for_user("u01") == cli_model.for_user("u01")
    report = recommend.evaluate_models(
        sample=True, model=encoder, fine_tune=False, tower_epochs=2, max_test_requests=30
    )
    assert report["n_test"] == 30 and report["n_test_all"] == 60
    assert report == json_of(cli("recommend", "eval", *tiny, "--max-test-requests", "30", "--json"))


def test_recommend_add_items_and_add_events_return_their_json_and_serve_at_once(
    films, tmp_path, cli
):
    import tunesmith_recommend as recommend

    (tmp_path / "new_films.csv").write_text(NEW_FILMS, encoding="utf-8")
    (tmp_path / "day.csv").write_text(DAY, encoding="utf-8")
    by_cli, by_python = tmp_path / "cli", tmp_path / "python"
    shutil.copytree(films, by_cli)
    shutil.copytree(films, by_python)
    model = recommend.load(by_python)
    with pytest.raises(UserInputError, match="'newbie' has no events"):
        model.for_user("newbie")
    printed = json_of(cli("recommend", "add-items", "--items", str(tmp_path / "new_films.csv"),
                          "-m", str(by_cli), "--json"))  # fmt: skip
    added = model.add_items(tmp_path / "new_films.csv")
    assert added == {**printed, "model_dir": str(by_python)} and added["added"] == 2
    printed = json_of(cli("recommend", "add-events", "--events", str(tmp_path / "day.csv"),
                          "-m", str(by_cli), "--json"))  # fmt: skip
    day = model.add_events(tmp_path / "day.csv")
    assert day == {**printed, "model_dir": str(by_python)} and day["new_users"] == 1
    # The object loaded before the updates serves them: the new user, the new items.
    assert (
        model.for_user("newbie", k=20)
        == json_of(cli("recommend", "for-user", "newbie", "-k", "20", "-m", str(by_cli),
                       "--json"))["items"]
    )  # fmt: skip
    assert (
        model.similar("n001", k=3)
        == json_of(cli("recommend", "similar", "n001", "-k", "3", "-m", str(by_cli), "--json"))[
            "items"
        ]
    )
    # The same day again adds nothing (an event is its user, item and time).
    assert model.add_events(tmp_path / "day.csv")["added"] == 0


# ---------------------------------------------------------------- mistakes


def test_a_mistyped_knowledge_base_is_the_commands_line_and_no_folder_is_made(tmp_path, cli):
    import tunesmith_support as support

    with pytest.raises(UserInputError) as raised:
        support.KnowledgeBase.open(tmp_path / "typo")
    assert str(raised.value) == error_line(
        cli("support", "feedback", "--kb", str(tmp_path / "typo"), "--turn", "1", "--helpful")
    )
    assert not (tmp_path / "typo").exists()


def test_finance_mistakes_are_the_commands_lines(finance_db, finance_model, tmp_path, cli):
    import tunesmith_finance as finance

    missing = tmp_path / "missing.sqlite"
    with pytest.raises(UserInputError) as raised:
        finance.Monitor(missing).trends()
    # The command's line, said with the keyword (Monitor(db)), not the flag.
    printed = error_line(cli("finance", "trends", "--db", str(missing)))
    assert str(raised.value) == printed.replace("--db ", "db ", 1)
    with pytest.raises(UserInputError, match=r"texts\[1\] is an int, not a string"):
        finance.score(["fine", 3], finance_model)
    with pytest.raises(UserInputError, match=r"texts\[1\] is empty"):
        finance.score(["fine", " "], finance_model)
    with pytest.raises(UserInputError, match="no such file"):
        finance.Monitor(tmp_path / "new.sqlite").ingest(tmp_path / "feed.jsonl", finance_model)
    assert not (tmp_path / "new.sqlite").exists()


def test_recommend_mistakes_are_the_commands_lines(films, cli):
    import tunesmith_recommend as recommend

    model = recommend.load(films)
    with pytest.raises(UserInputError) as raised:
        model.for_user("nobody")
    printed = error_line(cli("recommend", "for-user", "nobody", "-m", str(films)))
    assert str(raised.value) == printed.replace("--liked ITEM", "for_liked([ITEM, ...])").replace(
        "--query TEXT", "for_query(TEXT)"
    )
    with pytest.raises(UserInputError, match="k must be"):
        model.similar("f042", k=0)
    with pytest.raises(UserInputError, match="must be a string"):
        model.for_user(1)
    with pytest.raises(UserInputError) as raised:
        recommend.train(films.parent / "again", sample=True, items=films.parent / "items.csv")
    printed = error_line(
        cli("recommend", "train", "--sample", "--items", str(films.parent / "items.csv"),
            "--out", str(films.parent / "again"))
    )  # fmt: skip
    assert printed == "give --sample or --items/--events, not both"
    assert str(raised.value) == "give sample=True or items/events, not both"
    with pytest.raises(UserInputError, match="tower_epochs must be a whole number"):
        recommend.evaluate_models(sample=True, tower_epochs=0)
    with pytest.raises(UserInputError, match="^encoder_epochs 0 is not valid"):
        recommend.train(films.parent / "again", sample=True, encoder_epochs=0)
    assert not (films.parent / "again").exists()
    with pytest.raises(UserInputError, match="is not in the model's catalogue"):
        bad = films.parent / "bad_day.csv"
        bad.write_text("user_id,item_id,timestamp\nx,nope,2026-04-20T09:00:00Z\n", "utf-8")
        model.add_events(bad)


def test_finance_prune_mistakes_are_one_line_and_delete_nothing(finance_db):
    import tunesmith_finance as finance

    monitor = finance.Monitor(finance_db)
    before = monitor.trends(by="all", bucket="1d")
    with pytest.raises(UserInputError, match="give one of older_than"):
        monitor.prune()
    with pytest.raises(UserInputError, match="would keep less than a day"):
        monitor.prune(older_than="90m")
    with pytest.raises(UserInputError, match="in the future"):
        monitor.prune(before="2999-01-01")
    assert monitor.trends(by="all", bucket="1d") == before


def test_an_open_knowledge_base_reloads_after_a_rewrite_but_not_while_a_writer_holds_it(
    support_kb, tmp_path
):
    import os

    import tunesmith_support as support
    from tunesmith.locks import lock_path
    from tunesmith_support.sample import sample_paths

    kb_dir = tmp_path / "kb"
    shutil.copytree(support_kb, kb_dir)
    with support.KnowledgeBase.open(kb_dir) as kb:
        kb.ask("how much is delivery?")
        first = kb._service.answerer
        # A `calibrate` run elsewhere, still holding the KB's run lock: keep the loaded copy.
        with support.KnowledgeBase.open(kb_dir) as other:
            other.calibrate(sample_paths()["history"], target_precision=0.8)
        lock_path(kb_dir).write_text(str(os.getpid()), encoding="utf-8")
        kb.ask("how much is delivery?")
        assert kb._service.answerer is first
        lock_path(kb_dir).unlink()
        kb.ask("how much is delivery?")
        assert kb._service.answerer is not first


# ---------------------------------------------------------------- one vocabulary with the core


def test_support_takes_a_dataframe_where_it_takes_a_file_as_the_core_does(support_kb, tmp_path):
    pandas = pytest.importorskip("pandas")
    import numpy as np

    import tunesmith_support as support
    from tunesmith_support.sample import sample_paths

    paths = sample_paths()
    kb_dir = tmp_path / "kb"
    shutil.copytree(support_kb, kb_dir)
    with support.KnowledgeBase.open(kb_dir) as kb:
        # The questions file has empty answer ids (hand-off questions): NaN in a DataFrame.
        frame = pandas.read_csv(paths["questions"])
        assert frame["answer_id"].isna().any()
        assert kb.evaluate(frame) == kb.evaluate(paths["questions"])
        with pytest.raises(UserInputError, match=r"^data\[1\], column 'question': empty"):
            kb.evaluate([{"question": "hi", "answer_id": ""}, {"question": " ", "answer_id": ""}])
        # A turn id read back from a DataFrame of turns is a numpy int.
        turn = kb.ask("how much is delivery?")
        kb.feedback(np.int64(turn["turn_id"]), helpful=True)
    assert repr(kb) == f"KnowledgeBase({str(kb_dir)!r}, closed)"
    with pytest.raises(UserInputError, match="is closed; open it again"):
        kb.ask("how much is delivery?")


def test_finance_score_of_no_texts_is_no_records_as_the_cores_predict(finance_model):
    import tunesmith_finance as finance

    assert finance.score([], finance_model) == []


def test_finance_ingest_of_a_dataframe_records_or_texts_stores_what_the_file_stores(
    finance_model, tmp_path
):
    pandas = pytest.importorskip("pandas")
    import tunesmith_finance as finance
    from tunesmith_finance.sample import RULES, STREAM

    by_file, by_frame = (
        finance.Monitor(tmp_path / "f.sqlite"),
        finance.Monitor(tmp_path / "d.sqlite"),
    )
    printed = by_file.ingest(STREAM, finance_model, rules=RULES)
    frame = pandas.read_json(STREAM, lines=True, dtype=False)
    frame["time"] = pandas.to_datetime(frame["time"], utc=True)  # as a notebook parses them
    model = finance.load(finance_model)  # a loaded model works where a folder does
    returned = by_frame.ingest(frame, model, rules=RULES)
    for report in (printed, returned):
        report.pop("seconds"), report.pop("docs_per_second")
    assert returned == printed and returned["added"] == 435
    assert by_frame.trends(by="ticker", bucket="6h") == by_file.trends(by="ticker", bucket="6h")
    # The same rows again, as records: stored already, by their ids.
    again = by_frame.ingest(frame.to_dict(orient="records"), finance_model, rules=RULES)
    assert again["added"] == 0 and again["duplicates"] == 435
    # A row it cannot read is an issue naming the argument and the record's position.
    rows = [{"text": "Helix Bank plunges", "time": "2026-11-04T09:00:00Z"},
            {"text": "Orcana beats estimates", "time": "someday"}]  # fmt: skip
    report = by_frame.ingest(rows, finance_model)
    assert report["added"] == 1 and report["skipped"] == 1
    assert [(i["file"], i["line"]) for i in report["issues"]] == [("data", 1)]
    # Headlines alone are stored at the time of the call.
    fresh = finance.Monitor(tmp_path / "t.sqlite")
    assert fresh.ingest(texts=["Helix Bank plunges"], model=finance_model)["added"] == 1
    assert fresh.trends(by="all", bucket="1d")[0]["count"] == 1
    # A frame without a time column: one line naming the argument, nothing created.
    with pytest.raises(UserInputError, match=r"^data, column 'time': there is no column 'time'"):
        finance.Monitor(tmp_path / "new.sqlite").ingest(frame.drop(columns="time"), finance_model)
    with pytest.raises(UserInputError, match="give one of data"):
        finance.Monitor(tmp_path / "new.sqlite").ingest(frame, finance_model, texts=["a"])
    assert not (tmp_path / "new.sqlite").exists()
    # `files=`, the argument's earlier name, still reads files.
    assert by_file.ingest(files=[STREAM], model=finance_model)["read"] == 0  # resumed: no new line


def test_each_package_opens_its_work_with_load_and_keeps_the_earlier_names(
    finance_model, support_kb, films
):
    import tunesmith_finance as finance
    import tunesmith_recommend as recommend
    import tunesmith_support as support

    model = finance.load(finance_model)
    assert repr(model) == repr(finance.load_model(finance_model))
    assert finance.score("Helix Bank plunges", model) == finance.score(
        "Helix Bank plunges", finance.load_model(finance_model)
    )
    with support.load(support_kb) as kb:
        assert isinstance(kb, support.KnowledgeBase)
        assert repr(kb) == f"KnowledgeBase({str(support_kb)!r})"
    with support.KnowledgeBase.open(support_kb) as kb:
        assert repr(kb) == f"KnowledgeBase({str(support_kb)!r})"
    assert repr(recommend.load(films)) == f"RecommendModel({str(films)!r})"
    # The same keywords where the packages load the same thing.
    for load in (finance.load, support.load, recommend.load):
        assert "device" in inspect.signature(load).parameters
        assert list(inspect.signature(load).parameters)[0] == "path"


def test_plugin_errors_name_the_keywords_passed_not_the_commands_flags(
    finance_db, support_kb, films, tmp_path
):
    pandas = pytest.importorskip("pandas")
    import tunesmith_finance as finance
    import tunesmith_recommend as recommend
    import tunesmith_support as support
    from tunesmith_recommend.data import sample_paths
    from tunesmith_support.sample import sample_paths as support_paths

    said = []
    for call in (
        lambda: finance.Monitor(finance_db).alerts(window=0),
        lambda: finance.Monitor(finance_db).trends(bucket="7x"),
        lambda: recommend.train(tmp_path / "r", sample=True, items=sample_paths()["items"]),
        lambda: recommend.load(films).for_user("nobody"),
        lambda: recommend.train(films, sample=True, model="x"),
        lambda: support.index(support_paths()["kb"], support_paths()["history"]),
    ):
        with pytest.raises(UserInputError) as raised:
            call()
        said.append(str(raised.value))
    assert said[0] == "window must be at least 1 bucket"
    assert said[1].startswith("bucket '7x': expected a duration")
    assert said[2] == "give sample=True or items/events, not both"
    assert said[3].endswith("recommend from liked items (for_liked([ITEM, ...])) or a text "
                            "(for_query(TEXT)) instead")  # fmt: skip
    assert said[4] == f"{films} exists already; pass force=True to replace it"
    assert said[5].startswith(f"kb {support_paths()['history']} is a file")
    kb_dir = tmp_path / "kb"
    shutil.copytree(support_kb, kb_dir)
    with (
        support.load(kb_dir) as kb,
        pytest.raises(UserInputError, match="^held_out must be between 0 and 1"),
    ):
        kb.train(support_paths()["history"], held_out=2.0)
    (kb_dir / "calibration.json").unlink()
    with support.load(kb_dir) as kb, pytest.raises(UserInputError) as raised:
        kb.ask("how much is delivery?")
    assert str(raised.value).endswith("fit one on labelled questions with kb.calibrate(data) "
                                      "(or kb.train(data))")  # fmt: skip
    # recommend.train takes the folder first: the core's (data, out) order is one line.
    items = pandas.read_csv(sample_paths()["items"])
    with pytest.raises(UserInputError, match="^out: give the model folder, got DataFrame"):
        recommend.train(items, sample_paths()["events"], tmp_path / "r")
    with pytest.raises(UserInputError, match=r"^out: .*items\.csv is a file, not a model folder"):
        recommend.train(sample_paths()["items"], sample_paths()["events"], tmp_path / "r",
                        force=True)  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_recommend_counts_are_top_k_as_in_the_core_and_k_still_works(films):
    pandas = pytest.importorskip("pandas")
    import tunesmith_recommend as recommend

    model = recommend.load(path=films)  # the core's tunesmith.load(path) keyword
    assert model.for_user("u01", top_k=3) == model.for_user("u01", k=3) == model.for_user("u01", 3)
    assert len(model.search("a haunted lake", top_k=2)) == 2
    with pytest.raises(UserInputError, match="not both"):
        model.similar("f042", top_k=3, k=2)
    with pytest.raises(UserInputError, match="top_k must be a whole number"):
        model.similar("f042", top_k=0)
    # A DataFrame's column of liked ids, as the core's predict takes a Series of texts.
    liked = pandas.Series(["f001", "f017"])
    assert model.for_liked(liked, top_k=4) == model.for_liked(["f001", "f017"], top_k=4)


# ---------------------------------------------------------------- recommend's data in memory


def test_data_file_writes_a_moment_as_the_iso_text_a_csv_of_the_frame_reads_as(
    tmp_path, monkeypatch
):
    pandas = pytest.importorskip("pandas")
    import numpy as np

    from tunesmith.data.times import parse_time
    from tunesmith.python_data import data_file

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    paris = pandas.to_datetime(["2026-04-20 09:00", "2026-04-20 10:05"]).tz_localize("Europe/Paris")
    frame = pandas.DataFrame({"timestamp": paris})
    naive = {"timestamp": [pandas.Timestamp("2026-04-20 09:00"), pandas.NaT]}
    numpy_times = {"timestamp": np.array(["2026-04-20T09:00", "NaT"], dtype="datetime64[ns]")}
    with (
        data_file(frame, what="events", columns=["timestamp"]) as aware,
        data_file(naive, what="events", columns=["timestamp"]) as pandas_naive,
        data_file(numpy_times, what="events", columns=["timestamp"]) as numpy_naive,
    ):
        written = [
            [json.loads(line)["timestamp"] for line in path.read_text("utf-8").splitlines()]
            for path in (aware, pandas_naive, numpy_naive)
        ]
    moments = [parse_time(t)[0] for t in written[0]]
    assert [m.isoformat() for m in moments] == [
        "2026-04-20T07:00:00+00:00",
        "2026-04-20T08:05:00+00:00",
    ]
    # Naive: read as UTC, as the same text in a CSV; NaT: a missing time at its record.
    assert written[1] == written[2] == ["2026-04-20T09:00:00", None]


def _frames(items_csv: Path, events_csv: Path):
    """The files as a notebook reads them: the times parsed into Timestamps."""
    pandas = pytest.importorskip("pandas")

    events = pandas.read_csv(events_csv)
    events["timestamp"] = pandas.to_datetime(events["timestamp"])
    assert str(events["timestamp"].dtype).startswith("datetime64")
    return pandas.read_csv(items_csv), events


def test_recommend_train_of_dataframes_gives_what_train_of_their_csv_files_prints(
    films, tmp_path, cli
):
    import tunesmith_recommend as recommend
    from tunesmith_recommend.data import sample_paths

    paths = sample_paths()
    items, events = _frames(paths["items"], paths["events"])
    encoder = films_encoder(films)
    tiny = {"model": encoder, "fine_tune": False, "tower_epochs": 2}
    # A first fit after other tests' torch work may move the ranker's weights in their last
    # digits (see test_recommend_train_and_evaluate_models_return_what_their_json_prints).
    recommend.train(tmp_path / "warm", paths["items"], paths["events"], **tiny)
    printed = json_of(
        cli("recommend", "train", "--items", str(paths["items"]), "--events",
            str(paths["events"]), "--model", str(encoder), "--no-fine-tune", "--tower-epochs",
            "2", "--out", str(tmp_path / "cli"), "--json")
    )  # fmt: skip
    returned = recommend.train(tmp_path / "frames", items, events, **tiny)
    assert returned.pop("out") == str(tmp_path / "frames")
    assert printed.pop("out") == str(tmp_path / "cli")
    assert returned == printed and returned["events"] > 0
    # Records and a dict of columns are read the same way.
    report = recommend.evaluate_models(
        items.to_dict(orient="records"), {c: list(events[c]) for c in events}, **tiny,
        max_test_requests=30,
    )  # fmt: skip
    assert report == recommend.evaluate_models(
        paths["items"], paths["events"], **tiny, max_test_requests=30
    )
    # Nothing of the data is left under $TUNESMITH_HOME.
    from tunesmith.home import tunesmith_home

    assert not list((tunesmith_home() / "python_data").iterdir())


def test_recommend_add_items_and_add_events_of_dataframes_equal_their_csv_files(films, tmp_path):
    import tunesmith_recommend as recommend

    (tmp_path / "new_films.csv").write_text(NEW_FILMS, encoding="utf-8")
    (tmp_path / "day.csv").write_text(DAY, encoding="utf-8")
    new_items, day = _frames(tmp_path / "new_films.csv", tmp_path / "day.csv")
    by_file, by_frame = tmp_path / "file", tmp_path / "frame"
    shutil.copytree(films, by_file)
    shutil.copytree(films, by_frame)
    file_model, frame_model = recommend.load(by_file), recommend.load(by_frame)
    # An items frame without a text column the model reads: one line naming the argument.
    with pytest.raises(UserInputError) as raised:
        frame_model.add_items(new_items.drop(columns=["genres"]))
    assert str(raised.value).startswith("items, column 'genres': there is no column 'genres'")
    assert "python_data" not in str(raised.value)
    added = frame_model.add_items(new_items)
    assert added == {**file_model.add_items(tmp_path / "new_films.csv"), "model_dir": str(by_frame)}
    assert added["added"] == 2
    got = frame_model.add_events(day)
    assert got == {**file_model.add_events(tmp_path / "day.csv"), "model_dir": str(by_frame)}
    assert got["added"] == 3 and got["newest_event"] == "2026-04-20T10:05:00Z"
    assert frame_model.for_user("newbie", top_k=20) == file_model.for_user("newbie", top_k=20)
    # The same day as records again: an event is its user, item and time, so nothing is added.
    assert frame_model.add_events(day.to_dict(orient="records"))["added"] == 0
    with pytest.raises(UserInputError, match=r"^events\[0\], column 'item_id': item 'nope' is"):
        frame_model.add_events(
            [{"user_id": "x", "item_id": "nope", "timestamp": "2026-04-21T09:00:00Z"}]
        )
