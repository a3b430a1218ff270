"""Shared fixtures: an isolated plugin manager per test that changes plugins or environment."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `make test` runs two pytest-xdist workers on a 2-core machine: each takes one core, or the
# two workers' torch threads fight over both cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TUNESMITH_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _private_caches(tmp_path_factory):
    """Keep every cache and demo model a test makes out of the user's home directory."""
    root = tmp_path_factory.mktemp("tunesmith_home")
    saved = {k: os.environ.get(k) for k in ("TUNESMITH_CACHE_DIR", "TUNESMITH_HOME")}
    os.environ["TUNESMITH_CACHE_DIR"] = str(root / "cache")
    os.environ["TUNESMITH_HOME"] = str(root / "home")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def fresh_plugins(monkeypatch):
    """Rebuild the plugin manager after the test has changed the environment, and after it."""
    from tunesmith.plugins import reset_plugin_manager

    reset_plugin_manager()
    yield monkeypatch
    reset_plugin_manager()


@pytest.fixture
def cli():
    """Invoke the CLI in-process: ``cli("plugins", "--json")`` returns a click Result."""
    from typer.testing import CliRunner

    from tunesmith.cli import build_app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(build_app(), list(args), input=input)

    return invoke


@pytest.fixture
def explained_targets(monkeypatch):
    """``watch(module)``: from then on, the ``target`` of each ``explain_loaded`` call made
    through ``module`` is appended to the list ``watch`` returns (the call itself still runs)."""

    def watch(module):
        asked: list[object] = []
        explain = module.explain_loaded

        def spy(loaded, texts, **options):
            asked.append(options.get("target"))
            return explain(loaded, texts, **options)

        monkeypatch.setattr(module, "explain_loaded", spy)
        return asked

    return watch


@pytest.fixture
def register_plugin():
    """Register throw-away plugin objects on the live manager; unregister them afterwards."""
    from tunesmith.plugins import get_plugin_manager

    pm = get_plugin_manager()
    names: list[str] = []

    def register(plugin: object, name: str) -> object:
        pm.register(plugin, name=name)
        names.append(name)
        return plugin

    yield register
    for name in names:
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)


# Browser tests: Debian's Chromium driven by Playwright, never a downloaded browser.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def launch_blocks():
    """Serve Gradio apps on free local ports: ``url = launch_blocks(app)``; closed after the module."""
    apps = []

    def launch(app) -> str:
        from tunesmith.ui.launch import serve

        port = _free_port()
        serve(app, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False)
        apps.append(app)
        return f"http://127.0.0.1:{port}/"

    yield launch
    for app in apps:
        app.close()


@pytest.fixture(scope="module")
def launch_demo():
    """Serve demos as ``tunesmith ... demo`` serves them (:func:`tunesmith.ui.launch.launch`:
    with the page script that makes the live status a status and names what Gradio leaves
    unnamed): ``url = launch_demo(app)``; closed after the module."""
    apps = []

    def launch(app) -> str:
        from tunesmith.ui.launch import launch as serve_demo

        serve_demo(app, host="127.0.0.1", port=0, prevent_thread_lock=True, quiet=True)
        apps.append(app)
        return f"http://127.0.0.1:{app.server_port}/"

    yield launch
    for app in apps:
        app.close()


#: Keeps each new text of the live status under ``selector`` in ``window.tunesmithHeard``, as a
#: screen reader hears it (:func:`listen_to_status`).
_HEAR_STATUS = """(selector) => {
    window.tunesmithHeard = [];
    const status = document.querySelector(selector);
    const note = () => {
        const said = (status.querySelector('[role=status]') || status).innerText
            .replace(/[\\u200b\\s]+$/, '').replace(/^[\\u200b\\s]+/, '');
        const heard = window.tunesmithHeard;
        if (said && heard[heard.length - 1] !== said) heard.push(said);
    };
    const what = {subtree: true, childList: true, characterData: true};
    new MutationObserver(note).observe(status, what);
}"""


@pytest.fixture(scope="session")
def listen_to_status():
    """``listen_to_status(page, "#finance-status")``: from then on each new text of that live
    status is recorded in ``window.tunesmithHeard``, as a screen reader hears it."""

    def listen(page, selector: str) -> None:
        page.evaluate(_HEAR_STATUS, selector)

    return listen


@pytest.fixture(scope="module")
def page():
    """One headless Chromium page for a test module."""
    import shutil

    chromium = shutil.which("chromium") or CHROMIUM
    if not os.path.exists(chromium):
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        yield page
        browser.close()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch and tunesmith on one thread for a module: tiny models train several times faster
    than on a busy shared CPU, and the same reductions run in the same order (the same bits)."""
    import torch

    from tunesmith.engine import threads

    before, saved = torch.get_num_threads(), threads._configured
    old_env = os.environ.get("TUNESMITH_THREADS")
    os.environ["TUNESMITH_THREADS"] = "1"
    threads._configured = None
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    threads._configured = saved
    if old_env is None:
        os.environ.pop("TUNESMITH_THREADS", None)
    else:
        os.environ["TUNESMITH_THREADS"] = old_env


@pytest.fixture
def custom_code_model(tmp_path, monkeypatch):
    """A model folder someone sent whose config names its own code (``auto_map`` and a model
    type transformers does not know), and the file that code writes when it runs. ``input`` is
    patched to answer "y", as a user might to transformers' "run the custom code?" prompt."""
    import json

    from tunesmith.testing import make_tiny_base_model

    directory = make_tiny_base_model(tmp_path / "sent_model", ["hello good bad late"])
    ran = tmp_path / "custom_code_ran"
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    config["model_type"] = "sentbert"
    config["auto_map"] = {
        name: "custom.SentModel" for name in ("AutoModel", "AutoModelForSequenceClassification")
    }
    config["auto_map"]["AutoConfig"] = "custom.SentConfig"
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (directory / "custom.py").write_text(
        f"open({str(ran)!r}, 'a').write('ran')\n"
        "from transformers import BertConfig, BertModel\n"
        "class SentConfig(BertConfig):\n    model_type = 'sentbert'\n"
        "class SentModel(BertModel):\n    config_class = SentConfig\n",
        encoding="utf-8",
    )
    monkeypatch.setattr("builtins.input", lambda *_args: "y")
    return directory, ran
