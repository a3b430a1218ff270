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


def test_the_recommend_page_example_runs_on_a_trained_model(films, tmp_path, monkeypatch):
    monkeypatch.chdir(films.parent)
    found = run_example("recommend.md", {})
    assert len(found["picks"]) == 5 and found["picks"][0]["because"]
    assert len(found["found"]) == 10
    assert found["words"]["passage_tokens"]


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
    assert str(raised.value) == error_line(cli("finance", "trends", "--db", str(missing)))
    with pytest.raises(UserInputError, match="text 1: not a string"):
        finance.score(["fine", 3], finance_model)
    with pytest.raises(UserInputError, match="text 1: empty"):
        finance.score(["fine", " "], finance_model)
    with pytest.raises(UserInputError, match="no such file"):
        finance.Monitor(tmp_path / "new.sqlite").ingest(tmp_path / "feed.jsonl", finance_model)
    assert not (tmp_path / "new.sqlite").exists()


def test_recommend_mistakes_are_the_commands_lines(films, cli):
    import tunesmith_recommend as recommend

    model = recommend.load(films)
    with pytest.raises(UserInputError) as raised:
        model.for_user("nobody")
    assert str(raised.value) == error_line(cli("recommend", "for-user", "nobody", "-m", str(films)))
    with pytest.raises(UserInputError, match="k must be"):
        model.similar("f042", k=0)
    with pytest.raises(UserInputError, match="must be a string"):
        model.for_user(1)


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
