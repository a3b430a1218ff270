"""The core's one network call, a hub model download, has a total deadline (the hub client's own
timeouts are per socket read), and later loads read the downloaded folder."""

from __future__ import annotations

import threading
import time

import pytest

from tunesmith.errors import ModelNotFoundError
from tunesmith.models import resolve_model


@pytest.fixture
def network_on(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


def test_a_download_that_trickles_past_the_deadline_is_abandoned_in_one_line(
    network_on, monkeypatch
):
    hub = pytest.importorskip("huggingface_hub")
    release = threading.Event()

    def trickling(repo_id, **kwargs):  # a server sending one byte every few seconds
        release.wait(30)
        return "/never/used"

    monkeypatch.setattr(hub, "snapshot_download", trickling)
    monkeypatch.setenv("TUNESMITH_DOWNLOAD_TIMEOUT", "0.5")
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match=r"'org/model' did not finish within 0\.5 s"):
        resolve_model("org/model")
    assert time.monotonic() - started < 5
    release.set()


def test_a_finished_download_resolves_to_its_local_folder(network_on, monkeypatch, tmp_path):
    hub = pytest.importorskip("huggingface_hub")
    calls = []

    def fake(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(tmp_path)

    monkeypatch.setattr(hub, "snapshot_download", fake)
    resolved = resolve_model("org/model")
    assert resolved.location == str(tmp_path) and not resolved.is_local
    assert resolved.display_name == "org/model"
    assert "*.onnx" in calls[0][1]["ignore_patterns"]


def test_a_failed_download_is_one_line(network_on, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")

    def failing(repo_id, **kwargs):
        raise OSError("401 Client Error\nRepository Not Found")

    monkeypatch.setattr(hub, "snapshot_download", failing)
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("org/model")
    assert "\n" not in str(info.value) and "Repository Not Found" in str(info.value)


def test_a_deadline_that_is_not_a_number_is_refused(network_on, monkeypatch):
    monkeypatch.setenv("TUNESMITH_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(ModelNotFoundError, match="TUNESMITH_DOWNLOAD_TIMEOUT='soon'"):
        resolve_model("org/model")
