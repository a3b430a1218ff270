"""`support serve --reload-every` beside the nightly job (`support index`, `train` on the same
KB): a load overtaken by a switch of ``kb.json`` is done again at once, a reload keeps the
encoder and intent classifier it already holds when ``kb.json`` names the same ones, one load
reads every part from one ``kb.json``, a file renamed into place with the same time and size
is seen as changed, `index --language` switches the languages with the index, and pipelined
requests are held to the limits of the first."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from tunesmith_support.sample import sample_paths

QUESTION = "how much does shipping cost"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def guarded_server():
    """``(host, port)`` of uvicorn in a thread with `serve`'s protocol over a tiny app that
    answers 200 with the number of header bytes it got."""
    import uvicorn

    from tunesmith_support.serve_limits import guarded_protocol

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        size = sum(len(k) + len(v) for k, v in scope["headers"])
        body = json.dumps({"header_bytes": size}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
        http=guarded_protocol(5.0, 50), timeout_keep_alive=5,
    )  # fmt: skip
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # not the main thread
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield ("127.0.0.1", port)
    server.should_exit = True
    thread.join(10)


def _exchange(server, payload: bytes) -> list[int]:
    """The statuses answered to ``payload``, sent in one write (read until the server closes
    or goes quiet)."""
    with socket.create_connection(server, timeout=3) as sock:
        sock.sendall(payload)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            pass
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


def _get(extra: bytes = b"") -> bytes:
    return b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n"


def test_a_pipelined_request_with_headers_over_the_limit_is_a_431_as_the_first_would_be(
    guarded_server,
):
    """Two requests in one TCP write: uvicorn parsed the second from what was buffered once the
    first was answered, past the size check in data_received, and answered 40 KB of headers."""
    big = b"X-Big: " + b"a" * 40_000 + b"\r\n"
    assert _exchange(guarded_server, _get(big)) == [431]
    assert _exchange(guarded_server, _get() + _get()) == [200, 200]
    assert _exchange(guarded_server, _get() + _get(big)) == [200, 431]
    # Three: the third is never read once the second is refused (its connection closed).
    assert _exchange(guarded_server, _get() + _get(big) + _get()) == [200, 431]


def _changed_sources(where: Path) -> Path:
    """The sample KB with one FAQ answer reworded and one entry gone: a re-index changes the
    index (and so switches ``kb.json``)."""
    source = shutil.copytree(sample_paths()["kb"], where)
    faq = source / "faq.csv"
    lines = faq.read_text(encoding="utf-8").splitlines(keepends=True)
    faq.write_text("".join([lines[0], *lines[2:]]), encoding="utf-8")
    return source


def _switch_then_open_old(monkeypatch, kb: Path, sources: Path) -> list[int]:
    """Make the next load of ``kb`` read ``kb.json`` and then meet a re-index that switches it
    and removes the folders the old one named (as `support index` beside a starting server):
    the load goes on with the ``kb.json`` it read. Returns the calls' count, once patched."""
    from tunesmith.locks import run_lock
    from tunesmith_support import answer
    from tunesmith_support.kbindex import build_index, read_meta

    real = answer.open_index
    calls: list[int] = []

    def overtaken(kb_dir, encoder, meta=None):
        calls.append(1)
        if len(calls) == 1:
            meta = read_meta(kb_dir)
            with run_lock(kb):
                build_index(sources, kb)
        return real(kb_dir, encoder, meta)

    monkeypatch.setattr(answer, "open_index", overtaken)
    return calls


def test_a_server_starting_while_a_reindex_switches_the_kb_loads_the_new_one(
    kb_copy, tmp_path, monkeypatch
):
    """`serve` (re)started during the nightly job read the old kb.json, then found its index
    folder removed by the switch, and exited with an error instead of loading the new KB."""
    from tunesmith_support.service import SupportService

    sources = _changed_sources(tmp_path / "sources")
    calls = _switch_then_open_old(monkeypatch, kb_copy, sources)
    service = SupportService(kb_copy)
    try:
        assert len(calls) == 2
        answerer = service.answerer
        assert answerer.meta["index"] != "index" and len(answerer.entries) == 74
        assert service.ask(QUESTION).answer.question == QUESTION
    finally:
        service.close()


def test_a_reload_overtaken_by_a_switch_loads_again_at_once_not_at_the_next_check(
    kb_copy, tmp_path, monkeypatch
):
    """A reload that read kb.json a moment before a switch found the old folders removed: no
    error, but the new KB waited a whole --reload-every (and again if a writer came back)."""
    from tunesmith.io import atomic_write_json
    from tunesmith_support.kbindex import read_meta
    from tunesmith_support.reload import KbReloader
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    lines: list[str] = []
    reloader = KbReloader(service, 0, log=lines.append)
    try:
        atomic_write_json(kb_copy / "kb.json", {**read_meta(kb_copy), "note": "touched"})
        calls = _switch_then_open_old(monkeypatch, kb_copy, _changed_sources(tmp_path / "src"))
        assert reloader.check() is True, lines
        assert len(calls) >= 2 and reloader.error is None
        assert len(service.answerer.entries) == 74 and reloader.generation == 2
    finally:
        service.close()


@pytest.fixture
def own_encoder_kb(tiny_model, tmp_path):
    """The sample KB indexed with a private copy of the tiny model (a test may touch its
    files), calibrated."""
    from tunesmith_support.kbindex import build_index, kb_entries
    from tunesmith_support.learning import calibrate_kb, read_labelled

    model = shutil.copytree(tiny_model, tmp_path / "encoder")
    kb = tmp_path / "kb"
    build_index(sample_paths()["kb"], kb, model=str(model))
    ids = {e.id for e in kb_entries(kb)}
    calibrate_kb(kb, read_labelled([sample_paths()["history"]], ids), target_precision=0.5)
    return kb, model


def test_a_reload_after_an_index_keeps_the_encoder_it_holds_and_reloads_a_changed_one(
    own_encoder_kb, tmp_path
):
    """Every reload loaded the encoder again, though `index` keeps it: 0.8 s and a second
    model in memory per reload on the sample KB (0.26 s with it kept)."""
    import os

    from tunesmith.locks import run_lock
    from tunesmith_support.kbindex import build_index
    from tunesmith_support.reload import KbReloader
    from tunesmith_support.service import SupportService

    kb, model = own_encoder_kb
    service = SupportService(kb)
    reloader = KbReloader(service, 0, log=lambda _line: None)
    try:
        first = service.answerer
        with run_lock(kb):
            build_index(_changed_sources(tmp_path / "sources"), kb)
        assert reloader.check() is True
        second = service.answerer
        assert second is not first and len(second.entries) == 74
        assert second.encoder is first.encoder  # the same folder, unchanged: kept
        assert second._lock is first._lock  # one model: its calls serialised across copies
        asked = service.ask(QUESTION).answer
        assert asked.candidates, asked
        # The folder rewritten in place (the same name): loaded again.
        weights = next(p for p in model.iterdir() if p.suffix == ".safetensors")
        later = weights.stat().st_mtime_ns + 5_000_000_000
        os.utime(weights, ns=(later, later))
        os.utime(kb / "kb.json", ns=(later, later))
        assert reloader.check() is True
        assert service.answerer.encoder is not first.encoder
    finally:
        service.close()


class _Killed(Exception):
    """Stands for a SIGKILL at a rename: the run stops there."""


def test_index_language_killed_at_any_rename_keeps_the_languages_with_the_index(
    kb_copy, cli, tmp_path, monkeypatch
):
    """`index --language` wrote language.json after switching kb.json: killed between the two,
    the KB served the new index with the old languages."""
    import os

    from tunesmith_support.answer import Answerer
    from tunesmith_support.kbindex import kb_entries, remove_unused

    sources = _changed_sources(tmp_path / "sources")

    def state(kb: Path) -> tuple[int, list[str]]:
        answerer = Answerer(kb)
        return len(kb_entries(kb)), answerer.languages.languages

    def run(kb: Path, kill_at: int | None) -> int:
        renames: list[object] = []
        real = os.replace, os.rename

        def counted(fn):
            def inner(*args, **kwargs):
                renames.append(args)
                if len(renames) == kill_at:
                    raise _Killed(f"killed at rename {kill_at}")
                return fn(*args, **kwargs)

            return inner

        monkeypatch.setattr(os, "replace", counted(real[0]))
        monkeypatch.setattr(os, "rename", counted(real[1]))
        try:
            result = cli("support", "index", "--kb", str(sources), "--out", str(kb),
                         "--language", "de", "--language", "fr")  # fmt: skip
        finally:
            monkeypatch.setattr(os, "replace", real[0])
            monkeypatch.setattr(os, "rename", real[1])
        assert (result.exit_code == 0) == (kill_at is None), result.output
        return len(renames)

    before = state(kb_copy)
    whole = shutil.copytree(kb_copy, tmp_path / "whole")
    total = run(whole, None)
    after = state(whole)
    assert before == (75, ["en"]) and after == (74, ["de", "fr"])
    assert not list(whole.glob("language-g*")) and "language" not in json.loads(
        (whole / "kb.json").read_text(encoding="utf-8")
    )
    seen = set()
    for n in range(1, total + 1):
        kb = shutil.copytree(kb_copy, tmp_path / f"kill{n}")
        run(kb, n)
        got = state(kb)
        assert got in (before, after), f"killed at rename {n} of {total}: {got}"
        seen.add(got == after)
        # The next run finishes and leaves no staged file behind.
        run(kb, None)
        assert state(kb) == after and remove_unused(kb) == [] and not list(kb.glob("language-g*"))
    assert seen == {True, False}


@pytest.fixture
def classifier_kb(kb_copy):
    """The sample KB with an intent classifier generation (``classifier-g000001``, as `train
    --classifier` names it), calibrated on it."""
    import csv

    from tunesmith.io import atomic_write_json
    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith_support.kbindex import kb_entries, read_meta
    from tunesmith_support.learning import calibrate_kb, read_labelled
    from tunesmith_support.scoring import OUT_OF_SCOPE

    with sample_paths()["history"].open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    labels = sorted({r["answer_id"] or OUT_OF_SCOPE for r in rows})
    make_tiny_trained_classifier(
        kb_copy / "classifier-g000001",
        labels,
        [r["question"] for r in rows],
        [labels.index(r["answer_id"] or OUT_OF_SCOPE) for r in rows],
        steps=2,
    )
    atomic_write_json(
        kb_copy / "kb.json", {**read_meta(kb_copy), "classifier": "classifier-g000001"}
    )
    ids = {e.id for e in kb_entries(kb_copy)}
    calibrate_kb(kb_copy, read_labelled([sample_paths()["history"]], ids), target_precision=0.5)
    return kb_copy


def test_a_reload_keeps_the_intent_classifier_it_holds_with_the_new_kbs_renamed_ids(
    classifier_kb, tmp_path
):
    """Every reload loaded the intent classifier again, though only `train --classifier` makes
    a new one (in a new folder): a second model loaded per reload, for nothing."""
    from tunesmith.io import atomic_write_json
    from tunesmith.locks import run_lock
    from tunesmith_support.kbindex import RENAMED_KEY, read_meta
    from tunesmith_support.reload import KbReloader
    from tunesmith_support.service import SupportService

    kb = classifier_kb
    service = SupportService(kb)
    reloader = KbReloader(service, 0, log=lambda _line: None)
    try:
        first = service.answerer
        assert first.scorer.intent is not None
        label = first.scorer.intent.labels[0]
        # A re-index that renamed an entry (kb.json switched, the classifier folder kept).
        with run_lock(kb):
            meta = read_meta(kb)
            atomic_write_json(kb / "kb.json", {**meta, RENAMED_KEY: {label: "renamed-entry"}})
        assert reloader.check() is True
        second = service.answerer
        assert second is not first
        assert second.scorer.intent.models is first.scorer.intent.models  # kept
        assert second._lock is first._lock  # one model: its calls serialised across copies
        # Its labels are the new kb.json's ids; the copy serving before keeps its own.
        assert second.scorer.intent.labels[0] == "renamed-entry"
        assert first.scorer.intent.labels[0] == label
        assert second.scorer.intent_columns["renamed-entry"] == 0
        assert service.ask(QUESTION).answer.candidates
        # A new generation of the classifier (a new folder): loaded.
        shutil.copytree(kb / "classifier-g000001", kb / "classifier-g000002")
        with run_lock(kb):
            meta = read_meta(kb)
            atomic_write_json(kb / "kb.json", {**meta, "classifier": "classifier-g000002"})
            calibration = json.loads((kb / "calibration.json").read_text(encoding="utf-8"))
            calibration["fitted_on"]["classifier"] = "classifier-g000002"
            atomic_write_json(kb / "calibration.json", calibration)
        assert reloader.check() is True, reloader.error
        third = service.answerer
        assert third.scorer.intent.models is not first.scorer.intent.models
        assert third.scorer.intent.directory.name == "classifier-g000002"
    finally:
        service.close()


def test_one_load_reads_every_part_from_the_one_kb_json_it_read(kb_copy, monkeypatch):
    """The answerer read kb.json for its calibration, again for its encoder and again for its
    index: a switch in between gave one copy the index of one generation beside the kb.json
    and calibration of another."""
    from tunesmith.io import atomic_write_json
    from tunesmith_support import answer
    from tunesmith_support.answer import Answerer
    from tunesmith_support.kbindex import read_meta

    other = shutil.copytree(kb_copy / "index", kb_copy / "index-g000009")
    real = answer.load_encoder

    def switched_meanwhile(*args, **kwargs):
        encoder = real(*args, **kwargs)
        atomic_write_json(kb_copy / "kb.json", {**read_meta(kb_copy), "index": other.name})
        return encoder

    monkeypatch.setattr(answer, "load_encoder", switched_meanwhile)
    loaded = Answerer(kb_copy)
    assert loaded.meta.get("index", "index") == "index"
    assert Path(loaded.index.path).name == "index"
    # The switch is seen: a reloader loads the KB again.
    assert answer.kb_stamp(kb_copy) != loaded.loaded_stamp


def test_a_kb_file_replaced_within_the_same_time_and_size_is_seen_as_changed(kb_copy):
    """The change stamp compared modification times only: a calibrate whose new file had the
    same size and landed within the file system's time granularity (a second or two on some)
    was never reloaded."""
    import os

    from tunesmith_support.reload import KbReloader
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    reloader = KbReloader(service, 0, log=lambda _line: None)
    try:
        path = kb_copy / "calibration.json"
        old = path.stat()
        text = path.read_text(encoding="utf-8")
        found = re.search(r'"answer_threshold": ([0-9.e-]+)', text)
        assert found, text[:200]
        value = found.group(1)
        new = value[:-1] + ("1" if value[-1] != "1" else "2")  # as many characters
        text = text[: found.start(1)] + new + text[found.end(1) :]
        # An atomic write (a new file renamed into place) within the same time granule.
        (kb_copy / "calibration.new").write_text(text, encoding="utf-8")
        os.replace(kb_copy / "calibration.new", path)
        os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
        assert (path.stat().st_size, path.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)
        assert reloader.changed()
        assert reloader.check() is True, reloader.error
        assert service.answerer.calibration.answer_threshold == float(new)
    finally:
        service.close()
