"""Fixtures of the support tests: a tiny encoder and the sample KB built with it (never the
default model, never a download)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tunesmith_support.sample import sample_paths


def sample_texts() -> list[str]:
    """Every text of the sample data, so the tiny tokenizer knows their words."""
    paths = sample_paths()
    texts: list[str] = []
    with paths["faq"].open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            texts += [row["question"], row["answer"]]
    for name in ("history", "questions"):
        with paths[name].open(encoding="utf-8") as handle:
            texts += [row["question"] for row in csv.DictReader(handle)]
    for doc in paths["docs"].iterdir():
        texts.append(doc.read_text(encoding="utf-8"))
    return texts


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from tunesmith.testing import make_tiny_base_model

    return make_tiny_base_model(tmp_path_factory.mktemp("support_model") / "tiny", sample_texts())


@pytest.fixture(scope="session")
def built_kb(tiny_model, tmp_path_factory) -> Path:
    """The sample KB indexed with the tiny model and calibrated on the sample history.

    A random tiny encoder is right less often than 90% of the time at any threshold, so the
    target precision is 0.5: the KB then answers some questions instead of handing all off."""
    from tunesmith_support.kbindex import build_index
    from tunesmith_support.learning import calibrate_kb, read_labelled

    out = tmp_path_factory.mktemp("support_kb") / "kb"
    build_index(sample_paths()["kb"], out, model=str(tiny_model))
    from tunesmith_support.kbindex import load_encoder, open_index, stored_entries

    ids = {e.id for e in stored_entries(open_index(out, load_encoder(out)))}
    calibrate_kb(out, read_labelled([sample_paths()["history"]], ids), target_precision=0.5)
    return out


@pytest.fixture
def kb_copy(built_kb, tmp_path) -> Path:
    """A private copy of the built KB (a test may write conversations and hand-offs)."""
    target = tmp_path / "kb"
    shutil.copytree(built_kb, target)
    return target


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private TUNESMITH_HOME for the demo, whose cached services are closed afterwards."""
    from tunesmith_support import demo

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    demo._services.clear()
    yield tmp_path
    for service in demo._services.values():
        service.close()
    demo._services.clear()


@pytest.fixture
def client(kb_copy):
    """The HTTP API over a private KB copy, in-process; ``client.service`` is its service. A
    500 shows as a status, as an integrator sees it, not as a raised exception."""
    from fastapi.testclient import TestClient

    from tunesmith_support.api import create_app
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    with TestClient(create_app(service), raise_server_exceptions=False) as test_client:
        test_client.service = service
        yield test_client
    service.close()


@pytest.fixture
def free_port() -> str:
    """A TCP port nothing listens on now, for `support serve --port` (a fixed 8765 failed the
    tests whenever that port was in use). Found on every interface, so that 0.0.0.0 is free
    there too."""
    import socket

    with socket.socket() as sock:
        sock.bind(("", 0))
        return str(sock.getsockname()[1])


@pytest.fixture
def make_client(kb_copy):
    """``make_client(**create_app_options)``: a TestClient over a private KB copy."""
    from fastapi.testclient import TestClient

    from tunesmith_support.api import create_app
    from tunesmith_support.service import SupportService

    opened = []

    def make(**options):
        service = SupportService(kb_copy)
        client = TestClient(create_app(service, **options), raise_server_exceptions=False)
        client.__enter__()
        client.service = service
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)
        client.service.close()


@pytest.fixture
def builds(monkeypatch):
    """The entry counts of each BM25 index built (not read) from now on."""
    from tunesmith_support import scoring

    built: list[int] = []
    original = scoring.Lexical.__init__

    def counted(self, entries, languages=("en",)):
        built.append(len(entries))
        original(self, entries, languages)

    monkeypatch.setattr(scoring.Lexical, "__init__", counted)
    return built
