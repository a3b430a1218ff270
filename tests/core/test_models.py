"""Model resolution: default from site-packages, local directories, hub ids only when allowed."""

from __future__ import annotations

import pytest

from tunesmith.errors import ModelNotFoundError
from tunesmith.models import allow_network, resolve_model


def test_default_resolves_to_the_packaged_minilm_weights():
    resolved = resolve_model("default")
    assert resolved.is_local
    assert "all-MiniLM-L6-v2" in resolved.display_name
    from pathlib import Path

    assert (Path(resolved.location) / "config.json").exists()


def test_default_model_loads_with_the_network_off(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolve_model("default").location)
    assert config.hidden_size == 384


def test_local_directory_with_config_resolves(tmp_path):
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    assert resolve_model(str(tmp_path)).location == str(tmp_path.resolve())


def test_directory_without_config_is_refused_with_a_reason(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_hub_id_without_network_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="--allow-network"):
        resolve_model("bert-base-uncased")


def test_hub_id_is_downloaded_when_network_is_allowed(monkeypatch, tmp_path):
    import huggingface_hub

    # The download (with its total deadline) is the one network call; loads read its folder.
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **_: str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    allow_network(True)
    try:
        resolved = resolve_model("org/some-model")
    finally:
        allow_network(False)
    assert not resolved.is_local and resolved.location == str(tmp_path)
    assert resolved.display_name == "org/some-model"


def test_missing_relative_directory_is_named_in_the_error():
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model("./no/such/model/dir")


@pytest.mark.parametrize("name", ["/nonexistent", "./missing", "~/missing"])
def test_a_missing_rooted_path_with_one_slash_is_a_missing_directory_not_a_hub_id(name):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(name)


def test_a_hub_id_without_network_says_how_to_allow_it():
    with pytest.raises(ModelNotFoundError, match="--allow-network"):
        resolve_model("org/some-model")
