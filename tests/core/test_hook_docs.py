"""Every hook is documented with its exact signature and has a test (datasette's rule)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from tunesmith import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(
    name for name, obj in vars(hookspecs).items() if name.startswith("tunesmith_") and callable(obj)
)


def documented_headings() -> set[str]:
    text = (ROOT / "docs" / "plugin_hooks.md").read_text(encoding="utf-8")
    return {m.group(1).strip() for m in re.finditer(r"^## (.+)$", text, re.MULTILINE)}


def expected_heading(name: str) -> str:
    params = inspect.signature(getattr(hookspecs, name)).parameters
    return f"{name}({', '.join(params)})"


def all_test_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names.update(re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.M))
    return names


def test_hookspecs_define_the_hooks_of_the_design():
    assert len(HOOKS) >= 8


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_heading_with_its_exact_signature(name):
    assert expected_heading(name) in documented_headings()


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_docstring(name):
    assert (getattr(hookspecs, name).__doc__ or "").strip()


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test_named_after_it(name):
    assert any(t.startswith(f"test_hook_{name}") for t in all_test_names())


def test_docs_mention_no_hook_that_does_not_exist():
    documented = {h.split("(")[0] for h in documented_headings() if h.startswith("tunesmith_")}
    assert documented == set(HOOKS)


def dotted_names(doc: str) -> set[str]:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    return set(re.findall(r"`(tunesmith(?:\.\w+)+)", text))


def resolve(dotted: str) -> object:
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("doc", ["writing_plugins.md", "plugin_hooks.md"])
def test_every_dotted_name_in_the_plugin_docs_exists(doc):
    names = dotted_names(doc)
    assert "tunesmith.engine.train.train" in names or doc == "plugin_hooks.md"
    for name in sorted(names):
        resolve(name)  # raises for a module or function the docs name but the code lacks


def test_the_plugin_guide_training_and_explanation_calls_match_the_code():
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.train import train
    from tunesmith.explain.attribute import explain_loaded, explain_texts

    assert list(inspect.signature(train).parameters) == ["run", "log"]
    assert {"data", "eval_data", "out", "model", "epochs", "force"} <= set(
        inspect.signature(RunConfig).parameters
    )
    assert list(inspect.signature(explain_texts).parameters)[:3] == ["model", "tokenizer", "texts"]
    assert list(inspect.signature(explain_loaded).parameters)[:2] == ["loaded", "texts"]
