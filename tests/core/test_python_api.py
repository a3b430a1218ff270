"""The core from Python: docs/cli.md's "From Python" example runs as written (a tiny base
model in place of the default one), ``tunesmith.train`` and a loaded model's ``predict``,
``explain``, ``evaluate`` and ``calibrate`` return what the commands' ``--json`` prints,
in-memory data trains as its file does, importing the API stays light, and mistakes are the
commands' one-line errors.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.data.sample import SAMPLE_DIR
from tunesmith.errors import DataError, UserInputError
from tunesmith.testing import HEAVY_MODULES

ROOT = Path(__file__).resolve().parents[2]
TRAIN = SAMPLE_DIR / "support_intents.csv"
EVAL = SAMPLE_DIR / "support_intents_eval.csv"
#: Quick settings for the tiny model: the tests compare results, not their quality.
QUICK = {"epochs": 1, "batch_size": 16, "lr": 0.01}
QUICK_FLAGS = ["--epochs", "1", "--batch-size", "16", "--lr", "0.01"]
TEXTS = ["my card never arrived", "hello", "I want my money back"]


def rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def json_of(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def error_line(result) -> str:
    assert result.exit_code != 0, result.output
    return result.output.strip().splitlines()[-1].removeprefix("Error: ")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models train faster on one thread, and the same run gives the same bits."""


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    from tunesmith.testing import make_tiny_base_model

    texts = [r["text"] for r in rows(TRAIN) + rows(EVAL)] + TEXTS
    return make_tiny_base_model(tmp_path_factory.mktemp("base"), texts)


@pytest.fixture(scope="module")
def trained(base, tmp_path_factory) -> tuple[Path, dict]:
    """A model trained by ``tunesmith.train`` on the sample files, and what it returned."""
    import tunesmith

    out = tmp_path_factory.mktemp("trained") / "intents"
    return out, tunesmith.train(TRAIN, out, eval_data=EVAL, model=str(base), **QUICK)


@pytest.fixture
def model_copy(trained, tmp_path):
    """A copy of the trained model: calibrate rewrites its folder."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(trained[0], tmp_path / name))

    return copy


def without_run_facts(report: dict) -> dict:
    """A train report without what differs between two runs of one recipe: the folder, the
    seconds each step took, and whether the frozen-feature cache was already warm."""

    def strip(value):
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in value.items()
                if "seconds" not in k and k not in ("model_dir", "feature_cache_hits")
            }
        return value

    return strip(report)


# ---------------------------------------------------------------- the page's example


def python_example() -> str:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "docs/cli.md: no python block under 'From Python'"
    return "\n".join(blocks)


def test_the_cli_page_python_example_runs_and_returns_the_records(base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = python_example()
    old = "epochs=2)"
    assert old in code, "the example no longer trains with epochs=2"
    code = code.replace(old, f"epochs=1, model={str(base)!r}, batch_size=16, lr=0.01)")
    found: dict[str, object] = {"__name__": "__docs_example__"}
    exec(compile(code, "docs/cli.md", "exec"), found)
    assert found["result"]["metrics"]["report"]["n_examples"] == 48
    assert [r["text"] for r in found["records"]] == ["my card never arrived", "hello"]
    assert all(len(r["top"]) == 2 for r in found["records"])
    assert len(found["why"]) == 1 and found["why"][0]["tokens"]
    assert found["report"]["n_examples"] == 48
    assert found["fitted"]["n_examples"] == 48
    assert not any((tmp_path / "home").glob("python_data/*"))


# ---------------------------------------------------------------- the same as --json


def test_train_returns_what_train_json_prints_for_the_same_run(trained, base, tmp_path, cli):
    printed = json_of(
        cli("train", "--data", str(TRAIN), "--eval", str(EVAL), "--model", str(base),
            "--out", str(tmp_path / "by_cli"), *QUICK_FLAGS, "--json")
    )  # fmt: skip
    out, returned = trained
    assert returned["model_dir"] == str(out)
    assert without_run_facts(returned) == without_run_facts(printed)


def test_texts_and_labels_in_memory_train_the_model_their_file_trains(trained, base, tmp_path):
    import pandas as pd

    import tunesmith

    train, held_out = pd.read_csv(TRAIN), pd.read_csv(EVAL)
    returned = tunesmith.train(
        texts=train["text"],
        labels=train["label"],
        out=tmp_path / "in_memory",
        eval_data=held_out.to_dict(orient="records"),
        model=str(base),
        **QUICK,
    )
    assert returned["metrics"]["report"] == trained[1]["metrics"]["report"]
    from_file = tunesmith.load(trained[0]).predict(TEXTS)
    assert tunesmith.load(tmp_path / "in_memory").predict(TEXTS) == from_file
    # The run records the file the engine read, which is gone with the call.
    recorded = json.loads((tmp_path / "in_memory" / "run_config.json").read_text())
    assert Path(recorded["data"]).name == "data.jsonl"
    assert not Path(recorded["data"]).exists()


def test_predict_returns_the_records_predict_json_prints(trained, cli):
    import tunesmith

    model = tunesmith.load(trained[0])
    args = ["predict", "-m", str(trained[0]), "--json", "-k", "2"]
    printed = json_of(cli(*args, *[f"--text={t}" for t in TEXTS]))
    assert model.predict(TEXTS, top_k=2) == printed
    # One string is one text: a list of one record, not one per character.
    assert model.predict(TEXTS[0], top_k=2) == printed[:1]
    assert model.predict([]) == []
    raw = json_of(cli("predict", "-m", str(trained[0]), "--json", "--no-calibrate", "--text=hello"))
    assert model.predict("hello", calibrated=False) == [raw]


def test_explain_returns_the_records_explain_json_prints(trained, tmp_path, cli):
    import tunesmith
    from tunesmith.testing import write_csv

    model = tunesmith.load(trained[0])
    one = json_of(cli("explain", "-m", str(trained[0]), "--text", TEXTS[0], "--json"))
    assert model.explain(TEXTS[0]) == [one]
    data = write_csv(tmp_path / "texts.csv", [[t, "x"] for t in TEXTS])
    lines = cli("explain", "-m", str(trained[0]), "--data", str(data))
    assert lines.exit_code == 0, lines.output
    printed = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [p.pop("index") for p in printed] == [0, 1, 2]
    assert model.explain(TEXTS) == printed
    page = tmp_path / "why.html"
    model.explain(TEXTS, target="greeting", method="grad-input", html=page)
    assert "greeting" in page.read_text(encoding="utf-8")


def test_evaluate_returns_the_report_evaluate_json_prints_for_a_file_or_a_dataframe(trained, cli):
    import pandas as pd

    import tunesmith

    model = tunesmith.load(trained[0])
    printed = json_of(cli("evaluate", "-m", str(trained[0]), "--data", str(EVAL), "--json"))
    assert model.evaluate(EVAL) == printed
    in_memory = model.evaluate(pd.read_csv(EVAL))
    assert in_memory.pop("data") is None  # no file to name
    assert in_memory == {k: v for k, v in printed.items() if k != "data"}


def test_calibrate_returns_what_calibrate_json_prints_and_predict_uses_the_new_temperature(
    model_copy, cli
):
    import tunesmith

    by_cli, by_python = model_copy("cli"), model_copy("python")
    printed = json_of(cli("calibrate", "-m", str(by_cli), "--data", str(TRAIN), "--json"))
    fitted_by_train = json.loads((by_python / "calibration.json").read_text())["temperature"]
    model = tunesmith.load(by_python)
    model.predict(TEXTS)  # the model is loaded and used before it is calibrated
    returned = model.calibrate(TRAIN)
    printed["model"] = str(by_python)  # each names its own folder
    assert returned.pop("fitted_at") >= printed.pop("fitted_at")
    assert returned == printed
    # Fitted on the training texts, the temperature moved from the one train fitted ...
    assert returned["temperature"] != fitted_by_train
    # ... and the open model predicts with it, as a model loaded afresh does.
    assert model.predict(TEXTS) == tunesmith.load(by_python).predict(TEXTS)


def test_calibrating_on_in_memory_data_names_it_so_not_a_temporary_file(model_copy):
    import pandas as pd

    import tunesmith

    folder = model_copy("in_memory")
    returned = tunesmith.load(folder).calibrate(pd.read_csv(EVAL))
    saved = json.loads((folder / "calibration.json").read_text())
    assert returned["fitted_on"] == saved["fitted_on"] == "in-memory data (48 records)"


# ---------------------------------------------------------------- in-memory data


def test_in_memory_data_errors_name_the_argument_and_the_record(trained, base, tmp_path):
    import tunesmith

    model = tunesmith.load(trained[0])
    records = [{"text": "lost my card", "label": "card_lost"}, {"text": None, "label": "greeting"}]
    with pytest.raises(DataError) as raised:
        model.evaluate(records)
    assert str(raised.value).startswith("data[1], column 'text': ")
    with pytest.raises(DataError, match=r"data, column 'label': there is no column 'label'; "
                       r"the columns are: text, intent"):  # fmt: skip
        model.evaluate([{"text": "lost my card", "intent": "card_lost"}])
    with pytest.raises(UserInputError, match=r"the columns have different lengths"):
        tunesmith.train({"text": ["a", "b"], "label": ["x"]}, tmp_path / "m", model=str(base))
    with pytest.raises(UserInputError, match=r"data\[0\] is a str, not a dict"):
        model.calibrate(["lost my card"])
    # Nothing is left behind, whatever failed.
    from tunesmith.home import tunesmith_home

    assert not any((tunesmith_home() / "python_data").glob("*"))


def test_the_same_in_memory_data_gives_the_same_file_so_a_run_can_resume():
    from tunesmith.python_data import data_file

    data = {"text": ["a", "b"], "label": ["x", "y"]}
    with data_file(data, what="data", columns=("text", "label"), stable=True) as first:
        lines = first.read_text(encoding="utf-8").splitlines()
    with data_file(data, what="data", columns=("text", "label"), stable=True) as second:
        assert second == first
    assert not first.exists()
    assert [json.loads(line) for line in lines] == [
        {"text": "a", "label": "x"},
        {"text": "b", "label": "y"},
    ]


def test_numpy_values_and_list_labels_are_written_as_plain_json():
    import numpy as np

    from tunesmith.python_data import data_file

    data = [{"text": np.str_("a"), "label": np.array(["x", "y"]), "other": object()}]
    with data_file(data, what="data", columns=("text", "label")) as path:
        assert json.loads(path.read_text(encoding="utf-8")) == {"text": "a", "label": ["x", "y"]}


# ---------------------------------------------------------------- the public names


def test_every_public_name_is_exported_with_a_docstring():
    import tunesmith
    from tunesmith import python_api

    assert {"Model", "load", "train"} <= set(tunesmith.__all__)
    missing = []
    for name in ("Model", "load", "train"):
        value = getattr(tunesmith, name)
        assert value is getattr(python_api, name)
        if not inspect.getdoc(value):
            missing.append(name)
    for attr, member in vars(python_api.Model).items():
        if not attr.startswith("_") and not inspect.getdoc(member):
            missing.append(f"Model.{attr}")
    assert missing == []
    with pytest.raises(AttributeError):
        tunesmith.predict  # noqa: B018 (not a name of the API)


def test_importing_tunesmith_and_its_api_imports_nothing_heavy():
    probe = (
        "import sys, tunesmith; tunesmith.load; tunesmith.train; tunesmith.Model; "
        f"print([m for m in {(*HEAVY_MODULES, 'numpy')!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_train_keywords_are_the_commands_flags():
    import tunesmith
    from tunesmith.commands.engine.train import train_command

    flags = set(inspect.signature(train_command).parameters)
    keywords = set(inspect.signature(tunesmith.train).parameters) - {"options", "texts", "labels"}
    assert keywords <= flags
    with pytest.raises(TypeError, match="did you mean 'epochs'"):
        tunesmith.train(TRAIN, "out", epoch=2)
    with pytest.raises(TypeError, match="did you mean 'eval_data'"):  # the flag is --eval
        tunesmith.train(TRAIN, "out", eval=EVAL)
    with pytest.raises(TypeError, match="unexpected keyword argument 'as_json'"):
        tunesmith.train(TRAIN, "out", as_json=True)


# ---------------------------------------------------------------- mistakes


def test_mistakes_are_the_commands_lines(trained, tmp_path, cli):
    import tunesmith

    missing = tmp_path / "missing"
    with pytest.raises(UserInputError) as raised:
        tunesmith.load(missing)
    assert str(raised.value) == error_line(cli("predict", "-m", str(missing), "--text", "hi"))
    model = tunesmith.load(trained[0])
    with pytest.raises(UserInputError) as raised:
        model.explain("hi", target="nope")
    assert str(raised.value) == error_line(
        cli("explain", "-m", str(trained[0]), "--text", "hi", "--target", "nope")
    )
    with pytest.raises(UserInputError, match=r"texts\[1\] is a float, not a string"):
        model.predict(["fine", float("nan")])
    with pytest.raises(UserInputError, match=r"texts\[1\] is empty"):
        model.predict(["fine", " "])
    with pytest.raises(UserInputError, match="top_k must be a whole number"):
        model.predict("fine", top_k=0)
    with pytest.raises(UserInputError, match="out: give the folder"):
        tunesmith.train(TRAIN)
    with pytest.raises(UserInputError, match="--task pairs"):
        tunesmith.train(TRAIN, tmp_path / "pairs", task="pairs")
    # The command's line, said with the keywords the caller passed.
    with pytest.raises(UserInputError, match="^lora_r goes with strategy lora"):
        tunesmith.train(TRAIN, tmp_path / "lora", lora_r=4)
    assert not (tmp_path / "lora").exists()


def test_errors_name_the_keywords_passed_not_the_commands_flags(trained, base, tmp_path):
    import tunesmith

    frame = {"text": ["a b", "c d"], "label": ["x", "y"]}
    with pytest.raises(UserInputError) as raised:
        tunesmith.train(frame, tmp_path / "m", model=str(base), batch_size=0)
    assert str(raised.value).startswith("batch_size 0 is not valid")
    with pytest.raises(UserInputError) as raised:
        tunesmith.train(frame, trained[0], model=str(base), epochs=1)
    assert str(raised.value) == f"{trained[0]} exists already; pass force=True to replace it"
    with pytest.raises(UserInputError, match="^device gpu: not a device"):
        tunesmith.load(trained[0], device="gpu")
    # A DataError keeps its class and where it is, its message reworded.
    with pytest.raises(DataError) as raised:
        tunesmith.train(TRAIN, tmp_path / "m", text_col="body", model=str(base))
    assert raised.value.column == "body" and "--" not in str(raised.value)
    assert not (tmp_path / "m").exists()


def test_keyword_message_keeps_quoted_commands_and_dashes_inside_words():
    from tunesmith.python_data import keyword_message

    said = keyword_message(
        "--min-rating needs --rating-col; give --sample or --items/--events; see "
        "`tunesmith recommend train --sample` in a-b--c",
        {"--items": "items"},
    )
    assert said == (
        "min_rating needs rating_col; give sample=True or items/events; see "
        "`tunesmith recommend train --sample` in a-b--c"
    )
    assert keyword_message("epochs (--epochs) must be positive") == "epochs must be positive"
    assert keyword_message("`x --kb KB` (or `y`)", {"`x --kb KB` (or `y`)": "kb.x()"}) == "kb.x()"


# ---------------------------------------------------------------- one vocabulary with the plugins


def test_an_empty_dataframe_cell_is_a_missing_value_not_the_text_nan():
    import pandas as pd

    from tunesmith.python_data import data_file

    # read_csv's empty cell is a float NaN, which json.dumps writes as NaN, read back as 'nan'
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["x", float("nan")]})
    with data_file(frame, what="data", columns=("text", "label")) as path:
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [{"text": "a", "label": "x"}, {"text": "b", "label": None}]


def test_a_wrong_quantize_is_the_line_the_commands_and_finance_print(trained, cli):
    import tunesmith

    with pytest.raises(UserInputError) as raised:
        tunesmith.load(trained[0], quantize="int4")
    printed = cli("predict", "-m", str(trained[0]), "--quantize", "int4", "--text", "hi")
    assert str(raised.value) == error_line(printed)


def test_a_model_repr_says_its_folder_task_and_loading():
    from tunesmith.python_api import Model

    model = Model.__new__(Model)  # repr reads no weights: a model as load leaves it
    model.path, model.quantize, model.device, model._task = Path("m"), None, "auto", "ner"
    assert repr(model) == "Model('m', task='ner')"
    model.quantize = "int8"
    assert repr(model) == "Model('m', task='ner', quantize='int8')"
