"""The code in docs/writing_plugins.md runs: each example is taken from the guide and executed.

A stranger copies these blocks into a fourth plugin; when the core changes under them, these
tests fail instead of the stranger's plugin. Training uses a tiny base model, so nothing is
downloaded.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
import tomllib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "writing_plugins.md"
HELLO = ROOT / "tests" / "fixtures" / "third_party_plugin"
ROWS = [
    ("the site is down for every customer", "urgent"),
    ("production outage, nobody can pay", "urgent"),
    ("all servers are down", "urgent"),
    ("typo on the pricing page", "low"),
    ("please add dark mode someday", "low"),
    ("the footer text is misaligned", "low"),
]


def guide_blocks(lang: str) -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    found = re.findall(rf"^ *```{lang}\n(.*?)^ *```", text, re.S | re.M)
    return [textwrap.dedent(block) for block in found]


def block_with(marker: str, lang: str = "python") -> str:
    found = [b for b in guide_blocks(lang) if marker in b]
    assert len(found) == 1, f"expected one {lang} block with {marker!r} in {GUIDE.name}"
    return found[0]


def as_module(code: str, name: str, file: Path | None = None) -> types.ModuleType:
    module = types.ModuleType(name)
    if file is not None:
        module.__file__ = str(file)
    exec(compile(code, f"{GUIDE.name}:{name}", "exec"), module.__dict__)
    return module


@pytest.fixture
def hello_on_path(fresh_plugins):
    fresh_plugins.syspath_prepend(str(HELLO / "src"))
    yield fresh_plugins
    for name in [m for m in sys.modules if m.startswith("tunesmith_hello")]:
        sys.modules.pop(name)


def test_guide_pyproject_declares_an_entry_point_in_the_tunesmith_group():
    project = tomllib.loads(block_with("[project.entry-points.tunesmith]", "toml"))
    fixture = tomllib.loads((HELLO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    points = project["project"]["entry-points"]["tunesmith"]
    assert points == fixture["project"]["entry-points"]["tunesmith"]
    assert project["tool"]["setuptools"]["packages"]["find"]["where"] == ["src"]


def test_guide_hooks_add_a_command_and_keep_the_contract(hello_on_path, register_plugin, cli):
    from tunesmith.testing import check_plugin_contract

    plugin = as_module(block_with("def tunesmith_cli(app)"), "guide_hello_plugin")
    register_plugin(plugin, "hello")
    result = cli("hello", "greet", "Ada")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Hello, Ada!"
    assert check_plugin_contract(plugin) == []


def test_guide_sample_data_and_sink_hooks_work(tmp_path, fresh_plugins, register_plugin, cli):
    from tunesmith.events import emit
    from tunesmith.hooktypes import Event
    from tunesmith.testing import check_plugin_contract, write_csv

    (tmp_path / "sample_data").mkdir()
    write_csv(tmp_path / "sample_data" / "greetings.csv", [("hi", "warm")])
    code = block_with("def tunesmith_sample_data()")
    plugin = as_module(code, "guide_sample_plugin", file=tmp_path / "plugin.py")
    register_plugin(plugin, "greetings")
    assert check_plugin_contract(plugin) == []
    listed = cli("sample-data")
    assert listed.exit_code == 0 and "greetings" in listed.stdout
    log = tmp_path / "pager.log"
    report = emit(Event(kind="hello.greeted", message="Ada"), [f"pager:{log}"])
    assert report.failed == [] and log.read_text(encoding="utf-8") == "hello.greeted: Ada\n"


def test_guide_training_call_trains_a_model(tmp_path, monkeypatch, one_torch_thread):
    import tunesmith.engine.config as config
    import tunesmith.engine.train  # noqa: F401  (imported before RunConfig is wrapped below)
    from tunesmith.testing import make_tiny_base_model, write_csv

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUNESMITH_CACHE_DIR", str(tmp_path / "cache"))
    write_csv("tickets.csv", ROWS * 3)
    write_csv("tickets_eval.csv", ROWS)
    base = make_tiny_base_model(tmp_path / "base", [t for t, _ in ROWS])
    real = config.RunConfig

    def small(**fields):  # the guide's call, with a tiny model and one fast epoch
        return real(**fields, model=str(base), strategy="head", epochs=1)

    monkeypatch.setattr(config, "RunConfig", small)
    namespace: dict = {}
    exec(block_with("model_dir = train(RunConfig("), namespace)
    model_dir = Path(namespace["model_dir"])
    assert model_dir.resolve() == (tmp_path / "runs" / "tickets").resolve()
    assert (model_dir / "config.json").is_file()


def test_guide_prediction_explanation_and_retrieval_examples_run(tmp_path, monkeypatch, capsys):
    from tunesmith.testing import make_tiny_classifier

    monkeypatch.chdir(tmp_path)
    model_dir = make_tiny_classifier(tmp_path / "model", ["high", "low"], [t for t, _ in ROWS])
    namespace: dict = {"model_dir": model_dir}
    exec(block_with("predict_texts(loaded, texts, top_k=2)"), namespace)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.split()[0] in {"high", "low"} for line in lines)
    exec(block_with("VectorIndex.create("), namespace)
    assert len(namespace["hits"]) == 1
    assert namespace["hits"][0].payload["text"] in namespace["texts"]


def test_guide_read_table_example_reads_a_plugins_own_columns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("library.csv").write_text("id,text\n c7 ,unlimited liability\n", encoding="utf-8")
    namespace: dict = {}
    exec(block_with('read_table("library.csv"'), namespace)
    assert namespace["ids"] == ["c7"]
    assert namespace["rows"] == [
        {"__row__": 2, "id": " c7 ", "text": "unlimited liability", "label": ""}
    ]


def test_guide_event_examples_deliver_and_commit_with_the_callers_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    exec(block_with("report = emit(event,"), {})
    namespace: dict = {}
    exec(block_with("outgoing = record(event,"), namespace)
    assert namespace["report"].failed == []
    kinds = [json.loads(line)["kind"] for line in Path("greetings.jsonl").read_text().splitlines()]
    assert kinds == ["hello.greeted", "hello.greeted"]
    import sqlite3

    with sqlite3.connect("greetings.sqlite") as db:
        rows = db.execute("SELECT name, event_id FROM greeted").fetchall()
    assert rows == [("Ada", namespace["event"].id)]


def test_guide_test_examples_pass(hello_on_path, register_plugin):
    contract = as_module(block_with("check_plugin_contract(tunesmith_hello.plugin)"), "guide_t1")
    contract.test_hello_keeps_the_plugin_contract()
    import tunesmith_hello.plugin

    register_plugin(tunesmith_hello.plugin, "hello")
    runner = as_module(block_with("CliRunner().invoke(build_app()"), "guide_t2")
    runner.test_greet_says_the_name()


def test_guide_startup_example_passes(hello_on_path):
    module = as_module(block_with("check_startup_imports(tunesmith_hello.plugin)"), "guide_t3")
    module.test_hello_starts_light()


def _resolve(dotted: str) -> object:
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(dotted)


def test_every_dotted_tunesmith_name_in_the_guide_exists():
    # A stranger copies these names into a plugin; a renamed or moved function must fail here.
    text = GUIDE.read_text(encoding="utf-8")
    names = sorted(set(re.findall(r"`(tunesmith(?:\.[A-Za-z_]\w*)+)", text)))
    assert "tunesmith.plugins.plugin_home" in names
    missing = []
    for name in names:
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert missing == []


def test_guide_demo_handler_example_passes(hello_on_path):
    module = as_module(block_with("demo_handler(build_demo()"), "guide_t4")
    module.test_the_tab_greets()
