"""Serving a demo: transformers is resolved before the first request (tunesmith.ui.launch)."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import pytest


def test_after_preloading_first_uses_of_transformers_in_parallel_threads_do_not_fail():
    # transformers resolves its names lazily and not thread-safely: the first question in one tab
    # while the finance set-up loaded its model failed with "cannot import name 'AutoModel'".
    code = """
import json, threading
from tunesmith.ui.launch import preload_transformers
preload_transformers()
errors = []
def use(names):
    try:
        exec("from transformers import " + ", ".join(names), {})
    except Exception as exc:
        errors.append(repr(exc))
pairs = [["AutoModel", "AutoTokenizer"], ["AutoModelForSequenceClassification", "AutoConfig"]]
threads = [threading.Thread(target=use, args=(pairs[i % 2],)) for i in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(errors))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_launch_preloads_then_serves_on_the_given_address(monkeypatch):
    from tunesmith.ui import launch

    events = []

    class Blocks:
        def launch(self, **options):
            events.append(("launch", options))

    monkeypatch.setattr(launch, "preload_transformers", lambda: events.append("preload"))
    from tunesmith.ui.a11y import page_options

    launch.launch(Blocks(), host="127.0.0.1", port=7999, share=False)
    assert events[0] == "preload"
    _, options = events[1]
    # With the page's script, CSS and Gradio's missing texts (tunesmith.ui.a11y).
    assert set(options) == {"server_name", "server_port", "share"} | set(page_options())
    assert (options["server_name"], options["server_port"], options["share"]) == (
        "127.0.0.1",
        7999,
        False,
    )


def test_a_page_stopped_by_sigterm_says_so_after_gradio_closes(monkeypatch, capsys):
    import signal

    from tunesmith import signals
    from tunesmith.ui import launch

    class Blocks:
        def launch(self, **options):
            # Gradio's loop ends on the KeyboardInterrupt that tunesmith.signals raises.
            monkeypatch.setattr(signals, "_received", signal.SIGTERM)

    monkeypatch.setattr(launch, "preload_transformers", lambda: None)
    launch.launch(Blocks(), host="127.0.0.1", port=7999)
    assert capsys.readouterr().err.strip().splitlines()[-1] == "stopped by SIGTERM"


def test_port_0_serves_a_demo_on_a_free_port_it_can_name(monkeypatch):
    """`tunesmith ui --port 0` (and every demo's) passed 0 to Gradio, which printed
    http://127.0.0.1:0 and failed with "Connection refused". 0 is resolved to a free port."""
    import socket

    from tunesmith.ui import launch

    got = {}

    class Blocks:
        def launch(self, **options):
            got.update(options)

    monkeypatch.setattr(launch, "preload_transformers", lambda: None)
    launch.launch(Blocks(), host="127.0.0.1", port=0)
    port = got["server_port"]
    assert 0 < port <= 65535
    with socket.socket() as server:  # free for the server to bind
        server.bind(("127.0.0.1", port))
    assert launch.check_address("127.0.0.1", port) == port  # a given port is kept


def test_plain_markdown_shows_markup_and_emphasis_as_typed():
    from tunesmith.ui.markdown import plain_markdown

    shown = plain_markdown("<img src=x onerror=alert(1)> *space* [link](u)")
    assert "<img" not in shown and "&lt;img" in shown
    assert "\\*space\\*" in shown and "\\[link\\]\\(u\\)" in shown


@pytest.mark.parametrize("typed", ["a<b", "shp-01", "a`b", "`x``", "<script>alert(1)</script>"])
def test_code_span_shows_its_text_as_typed(typed):
    from markdown_it import MarkdownIt

    from tunesmith.ui.markdown import code_span

    rendered = MarkdownIt().renderInline(code_span(typed))
    assert rendered.startswith("<code>") and rendered.endswith("</code>")
    inner = rendered.removeprefix("<code>").removesuffix("</code>")
    assert html.unescape(inner) == typed and "<" not in inner


@pytest.mark.parametrize(
    ("host", "port", "said"),
    [
        ("127.0.0.1", None, "cannot serve on 127.0.0.1:"),  # a port in use
        ("nosuchhost.invalid", 7999, "cannot serve on nosuchhost.invalid:7999"),
        ("127.0.0.1", 99999, "--port 99999: a port is a number from 0 to 65535"),
    ],
)
def test_an_address_the_ui_cannot_listen_on_is_one_line_before_anything_loads(
    host, port, said, monkeypatch
):
    import socket

    from tunesmith.errors import UserInputError
    from tunesmith.ui import launch

    events = []

    class Blocks:
        def launch(self, **options):  # Gradio: "Cannot find empty port ... launch()"
            events.append("launch")

    monkeypatch.setattr(launch, "preload_transformers", lambda: events.append("preload"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(UserInputError, match=re.escape(said)):
            launch.launch(Blocks(), host=host, port=port or busy.getsockname()[1])
    assert events == []


def test_a_demo_slow_to_answer_gradios_three_second_probe_is_served_not_refused(monkeypatch):
    """Under load Gradio's probe (a HEAD with a 3 s timeout) gave up and launch raised "When
    localhost is not accessible, a shareable link must be created" for a sound server; the
    browser tests' set-up failed so in CI. Here the probe always fails, as it did then."""
    import gradio as gr
    import httpx
    from gradio import networking

    from tunesmith.ui.launch import check_address, serve

    monkeypatch.setattr(networking, "url_ok", lambda url: False)
    with gr.Blocks() as app:
        gr.Markdown("served")
    port = check_address("127.0.0.1", 0)
    serve(app, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        assert httpx.get(app.local_url, timeout=30).status_code == 200
    finally:
        app.close()


def test_waiting_for_a_demo_that_never_answers_names_its_address():
    from tunesmith.ui.launch import check_address, wait_until_answering

    url = f"http://127.0.0.1:{check_address('127.0.0.1', 0)}/"  # free: nothing listens
    with pytest.raises(RuntimeError, match=re.escape(f"the demo at {url} did not answer")):
        wait_until_answering(url, within=0.5)
