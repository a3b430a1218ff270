"""The web UI opens models only inside the allowed roots, says nothing about other paths, and
keeps a bounded cache keyed by the resolved path."""

from __future__ import annotations

import os
import shutil

import pytest

from tunesmith.errors import UserInputError
from tunesmith.ui import model_access
from tunesmith.ui.model_access import OUTSIDE_ROOTS, resolve_model_dir, set_model_roots


@pytest.fixture(autouse=True)
def _roots(tmp_path, monkeypatch):
    """A private demo folder and no --models roots; the cache empty before and after."""
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "demo-models").mkdir(parents=True)
    set_model_roots([])
    model_access._cache.clear()
    yield
    set_model_roots([])
    model_access._cache.clear()


@pytest.mark.parametrize(
    "typed", ["/etc/passwd", "/root/.ssh", "/no/such/dir", "/etc", "/", "\x00/etc"]
)
def test_paths_outside_the_roots_get_one_message_that_reveals_nothing(typed):
    with pytest.raises(ValueError) as info:
        resolve_model_dir(typed)
    assert str(info.value) == OUTSIDE_ROOTS


def test_dot_dot_out_of_a_root_is_refused_after_resolving(tmp_path):
    root = tmp_path / "models"
    (root / "m").mkdir(parents=True)
    set_model_roots([root])
    with pytest.raises(ValueError, match="not in a folder the UI may open"):
        resolve_model_dir(str(root / ".." / ".." / ".." / "etc"))
    with pytest.raises(ValueError, match="not in a folder the UI may open"):
        resolve_model_dir("../../../../../../etc")
    assert resolve_model_dir(str(root / "x" / ".." / "m")) == (root / "m").resolve()


def test_symlink_inside_a_root_pointing_outside_is_refused(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    outside = tmp_path / "secret"
    outside.mkdir()
    os.symlink(outside, root / "link")
    set_model_roots([root])
    with pytest.raises(ValueError, match="not in a folder the UI may open"):
        resolve_model_dir(str(root / "link"))


def test_relative_names_are_found_under_the_roots(tmp_path):
    root = tmp_path / "models"
    (root / "banking").mkdir(parents=True)
    set_model_roots([root])
    assert resolve_model_dir("banking") == (root / "banking").resolve()
    demo = model_access.demo_models_dir() / "support_intents"
    demo.mkdir()
    assert resolve_model_dir("support_intents") == demo.resolve()


def test_models_option_must_name_a_folder(tmp_path):
    with pytest.raises(UserInputError, match="--models .*: not a folder"):
        set_model_roots([tmp_path / "missing"])


def test_playground_refuses_a_path_outside_the_roots_with_the_fixed_message():
    from tunesmith.ui.core_demos import classify

    for typed in ("/etc/passwd", "/root/.ssh", "../../etc"):
        with pytest.raises(ValueError) as info:
            classify(typed, "hello")
        assert str(info.value) == OUTSIDE_ROOTS


def test_playground_refuses_a_text_with_a_lone_surrogate(tmp_path):
    from tunesmith.ui.core_demos import classify

    with pytest.raises(ValueError, match="lone surrogate"):
        classify(str(model_access.demo_models_dir()), "bad \ud800")


torch = pytest.importorskip("torch")


def test_cache_is_keyed_by_resolved_path_and_bounded(tmp_path, monkeypatch):
    from tunesmith.testing import make_tiny_classifier

    root = tmp_path / "models"
    first = make_tiny_classifier(root / "m0", ["a", "b"], ["x y", "z w"])
    for i in range(1, model_access.MAX_CACHED_MODELS + 1):
        shutil.copytree(first, root / f"m{i}")
    set_model_roots([root])
    loads = []
    original = model_access.load_ensemble

    def counting(path, **kwargs):
        loads.append(str(path))
        return original(path, **kwargs)

    monkeypatch.setattr(model_access, "load_ensemble", counting)  # the name the cache calls
    spellings = [str(first), f"{root}/./m0", f"{root}/m1/../m0", "m0"]
    models = {id(model_access.load_allowed(s)) for s in spellings}
    assert len(models) == 1 and loads == [str(first.resolve())]
    for i in range(1, model_access.MAX_CACHED_MODELS + 1):
        model_access.load_allowed(f"m{i}")
    assert len(model_access.cached_paths()) == model_access.MAX_CACHED_MODELS
    assert str(first.resolve()) not in model_access.cached_paths()  # least recently used


def test_ui_models_option_sets_the_allowed_roots_before_serving(cli, tmp_path, monkeypatch):
    pytest.importorskip("tunesmith_suite")
    import tunesmith_suite.suite as suite

    served = {}

    class FakeApp:
        server_port = 0

        def launch(self, **kwargs):
            served["roots"] = model_access.model_roots()

        def block_thread(self):
            pass

    monkeypatch.setattr(suite, "build_suite", lambda only=None: FakeApp())
    folder = tmp_path / "models"
    folder.mkdir()
    result = cli("ui", "--models", str(folder), "--port", "0")
    assert result.exit_code == 0, result.output
    assert folder.resolve() in served["roots"]
    refused = cli("ui", "--models", str(tmp_path / "missing"))
    assert refused.exit_code == 2
    assert refused.stderr.strip() == f"Error: --models {tmp_path / 'missing'}: not a folder"


def test_a_relative_name_found_under_no_root_is_named_as_typed(tmp_path, monkeypatch):
    # It exists in the working folder, which is not a root: the message names what was typed,
    # not the demo folder's candidate the loader would have said does not exist.
    (tmp_path / "work" / "runs" / "tickets").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises(ValueError) as info:
        resolve_model_dir("runs/tickets")
    assert str(info.value).startswith("No model directory 'runs/tickets' in the folders the UI")
    assert "demo-models" not in str(info.value)


def _config(folder, labels, **extra):
    import json

    folder.mkdir(parents=True, exist_ok=True)
    config = {"id2label": {str(i): label for i, label in enumerate(labels)}, **extra}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_models_found_lists_the_models_in_the_roots_by_the_name_that_opens_them(tmp_path):
    import json

    root = tmp_path / "models"
    _config(root / "bank77", [f"intent{i}" for i in range(77)])
    ens = _config(root / "runs" / "fin_ens", ["negative", "neutral", "positive"])
    _config(ens / "members" / "seed43", ["negative", "neutral", "positive"])
    (ens / "ensemble.json").write_text(json.dumps({"members": ["members/seed43"]}))
    _config(root / "ner", ["O", "B-PER"], tunesmith_task="ner")
    _config(root / ".bank77.123-abc.tmp", ["a"])  # a model being written
    (root / "data").mkdir()
    sample = _config(model_access.demo_models_dir() / "support_intents", ["a", "b"])
    set_model_roots([root])
    found = dict((value, label) for label, value in model_access.find_models())
    # Typing a path the user had to guess was the only way in; no member listed on its own.
    assert found == {
        "support_intents": "support_intents (2 labels)",
        "bank77": "bank77 (77 labels)",
        "ner": "ner (tagger)",
        "runs/fin_ens": "runs/fin_ens (3 labels, seed ensemble of 2 models)",
    }
    assert all(
        resolve_model_dir(value) == p.resolve()
        for value, p in [("support_intents", sample), ("runs/fin_ens", ens)]
    )


def test_models_found_names_a_model_hidden_by_an_earlier_root_by_its_full_path(tmp_path):
    _config(model_access.demo_models_dir() / "m", ["a", "b"])
    other = _config(tmp_path / "models" / "m", ["x", "y", "z"])
    set_model_roots([tmp_path / "models"])
    values = [value for _, value in model_access.find_models()]
    assert values == ["m", str(other.resolve())]
    assert resolve_model_dir(values[1]) == other.resolve()


def test_models_found_skips_a_link_to_a_model_outside_the_roots_instead_of_failing(tmp_path):
    # A deployment's `models/current -> ../releases/v3`: the picker raised "not in the
    # subpath" and listed nothing; a link inside the root is listed by its target's name.
    root = tmp_path / "models"
    release = _config(tmp_path / "releases" / "v3", ["a", "b"])
    _config(root / "v2", ["a", "b"])
    (root / "current").symlink_to(release, target_is_directory=True)
    (root / "latest").symlink_to(root / "v2", target_is_directory=True)
    set_model_roots([root])
    assert [value for _, value in model_access.find_models()] == ["v2"]


def test_a_model_directory_typed_with_a_tilde_is_read_from_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    model = _config(tmp_path / "models" / "bank77", ["a", "b"])
    set_model_roots([tmp_path / "models"])
    # As a shell reads it: it was a folder named "~" under each root ("No model directory").
    assert resolve_model_dir("~/models/bank77") == model.resolve()
    with pytest.raises(ValueError) as info:
        resolve_model_dir("~nosuchuser9/models/bank77")
    assert "No model directory" in str(info.value)
