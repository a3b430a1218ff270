"""Which model directories the web UI may open, and a bounded cache of the models it loaded.

The UI answers whoever can reach its port, so a typed path is untrusted: it is resolved
(symlinks and ``..`` followed) and must then lie inside an allowed root, the demo's own model
folder or a folder given with ``tunesmith ui --models DIR``. A path outside gets one fixed
message, whether or not it exists, so the UI cannot be used to probe the server's files.
Loaded models are kept in a small LRU keyed by the resolved path: every spelling of one
directory shares one copy, and memory stays bounded however many are asked for.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tunesmith.engine.ensemble import MEMBERS_FILE, load_ensemble, read_members
from tunesmith.engine.lexical import LEXICAL_ARRAYS, LEXICAL_FILE
from tunesmith.errors import TunesmithError, UserInputError
from tunesmith.home import tunesmith_home
from tunesmith.io import change_stamp, read_json_object
from tunesmith.model_dir import ADAPTER_CONFIG_FILE, CALIBRATION_FILE, CONFIG_FILE, TASK_KEY

#: Loaded models kept at once (a small classifier is about 45 MB in memory).
MAX_CACHED_MODELS = 3
OUTSIDE_ROOTS = (
    "This model directory is not in a folder the UI may open: the demo's trained models, and "
    "the folders given with `tunesmith ui --models DIR`."
)

NOT_UNDER_ROOTS = (
    "No model directory {!r} in the folders the UI may open: the demo's trained models, and the "
    "folders given with `tunesmith ui --models DIR`."
)

_extra_roots: list[Path] = []
_cache: OrderedDict[tuple[str, tuple[int, ...]], Any] = OrderedDict()
_lock = threading.Lock()


def demo_models_dir() -> Path:
    """Where the demo keeps the models it trains (``TUNESMITH_HOME`` or ``~/.cache/tunesmith``)."""
    return tunesmith_home() / "demo-models"


def set_model_roots(folders: Iterable[str | Path]) -> list[Path]:
    """Allow the UI to open models under ``folders`` too (``tunesmith ui --models DIR``).

    Each must be an existing folder; they are resolved now, so a later change of the working
    directory or of a symlink does not widen what is allowed.
    """
    roots = []
    for folder in folders:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise UserInputError(f"--models {folder}: not a folder")
        roots.append(path.resolve())
    _extra_roots[:] = roots
    return list(roots)


def model_roots() -> list[Path]:
    """The folders models may be opened from: the demo's own first, then ``--models`` ones."""
    return [demo_models_dir().resolve(), *_extra_roots]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def resolve_model_dir(text: str) -> Path:
    """The resolved directory ``text`` names, if it lies inside an allowed root.

    A relative path is tried under each root (and the working directory); the first candidate
    inside a root that is a directory wins. Raises ``ValueError`` with :data:`OUTSIDE_ROOTS`
    for anything else, saying nothing about what exists there.
    """
    text = (text or "").strip()
    if not text:
        raise ValueError("Train a model on sample data first, or enter a model directory.")
    if "\x00" in text:
        raise ValueError(OUTSIDE_ROOTS)
    roots = model_roots()
    # "~/models/x" as a shell reads it (it was tried as a folder named "~" in each root).
    try:
        typed = Path(text).expanduser()
    except RuntimeError:  # "~nobody": no such user, so no such home folder
        typed = Path(text)
    bases = [Path()] if typed.is_absolute() else [*roots, Path.cwd()]
    inside = []
    for base in bases:
        try:
            candidate = (base / typed).resolve()
        except (OSError, RuntimeError):  # a symlink loop, a name too long
            continue
        if _inside(candidate, roots):
            inside.append(candidate)
    if not inside:
        raise ValueError(OUTSIDE_ROOTS)
    found = next((path for path in inside if path.is_dir()), None)
    if found is None and not typed.is_absolute():
        # The loader would name the first root's candidate, a path the user never typed (a
        # name that exists in the working folder only read as "demo-models/NAME does not exist").
        raise ValueError(NOT_UNDER_ROOTS.format(text))
    return found or inside[0]


#: How deep and how many model directories :func:`find_models` looks for: a ``--models`` folder
#: may be a whole home folder, and the list is made each time the page asks for it.
FIND_DEPTH = 3
FIND_LIMIT = 200


def find_models() -> list[tuple[str, str]]:
    """The model directories in the allowed roots, as ``(label, value)`` pairs for a picker.

    ``value`` is what :func:`resolve_model_dir` opens again: the path inside its root, never where
    the server keeps it (the absolute path only when an earlier root has the same name).
    ``label`` adds what the model is ("77 labels", "seed ensemble of 2 models"). Hidden folders
    (a model being written, ``.git``) and the inside of a model (its ensemble members) are
    skipped; at most :data:`FIND_LIMIT` are listed, :data:`FIND_DEPTH` folders deep.
    """
    found: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for root in model_roots():
        for path in _model_folders(root):
            if path in seen or len(found) >= FIND_LIMIT:
                continue
            seen.add(path)
            value = path.relative_to(root).as_posix() if path != root else "."
            try:
                opens = resolve_model_dir(value)
            except ValueError:
                opens = None
            if opens != path:  # the same name in an earlier root (or the working folder)
                value = str(path)
            found.append((f"{value} ({describe_model(path)})", value))
    return found


def _model_folders(root: Path) -> list[Path]:
    """Folders under ``root`` (itself included) holding a model, breadth first, sorted."""
    models, level = [], [root]
    for _ in range(FIND_DEPTH + 1):
        deeper = []
        for folder in level:
            if (folder / CONFIG_FILE).is_file() or (folder / ADAPTER_CONFIG_FILE).is_file():
                # A link to a model outside the root (`current -> ../releases/v3`) cannot be
                # opened (resolve_model_dir), so it is not offered: listed, it broke the picker.
                if _inside(found := folder.resolve(), [root]):
                    models.append(found)
                continue  # its members/ and checkpoints are not models of their own
            with contextlib.suppress(OSError):
                deeper += sorted(
                    child
                    for child in folder.iterdir()
                    if not child.name.startswith(".") and child.is_dir()
                )
            if len(models) >= FIND_LIMIT:
                return models
        level = deeper
    return models


def describe_model(path: Path) -> str:
    """A few words on what the model at ``path`` is: its task and labels, and for a seed
    ensemble its number of members (it is scored by their mean, not as one model)."""
    config = None
    with contextlib.suppress(TunesmithError, OSError, ValueError):
        config = read_json_object(path / CONFIG_FILE)
    config = config or {}
    labels = config.get("id2label")
    count = len(labels) if isinstance(labels, dict) else 0
    task = config.get(TASK_KEY)
    if task == "ner":
        words = ["tagger"]
    elif count:
        words = [f"{count} labels" + (", multi-label" if task == "multilabel" else "")]
    else:
        words = ["model"]
    members = []
    with contextlib.suppress(TunesmithError, OSError, ValueError):
        members = read_members(path)
    if members:
        words.append(f"seed ensemble of {len(members) + 1} models")
    return ", ".join(words)


def load_allowed(text: str) -> Any:
    """The loaded model at ``text`` (see :func:`resolve_model_dir`), from the LRU cache; for a
    seed ensemble's directory, its first member (:func:`load_allowed_ensemble` gives them all).
    """
    return load_allowed_ensemble(text)[0]


def load_allowed_ensemble(text: str) -> list[Any]:
    """Every member of the model at ``text``, first one first (one for a single model), from
    the LRU cache: what ``tunesmith predict`` averages (``predict_texts(..., members=)``)."""
    directory = resolve_model_dir(text)
    key = (str(directory), _stamp(directory))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        try:
            loaded = load_ensemble(directory)
        except TunesmithError as exc:
            # Said with the name the user typed: the resolved path is where the server keeps its
            # models ("." read as "/home/alice/.cache/tunesmith/demo-models has no config.json").
            exc.args = (str(exc).replace(str(directory), text.strip()),)
            raise
        for old in [k for k in _cache if k[0] == key[0]]:
            del _cache[old]
        _cache[key] = loaded
        while len(_cache) > MAX_CACHED_MODELS:
            _cache.popitem(last=False)
        return loaded


def _stamp(directory: Path) -> tuple[int, ...]:
    """When the files a loaded model reads last changed: a model retrained in place (the demo's
    "Train" button), recalibrated (`tunesmith calibrate`) or given a new lexical share (a refit)
    is a new cache entry, not a stale one; so is an ensemble whose members did."""
    folders = [directory]
    with contextlib.suppress(UserInputError):  # a broken manifest: the load itself says so
        folders += read_members(directory)
    names = (CONFIG_FILE, CALIBRATION_FILE, LEXICAL_FILE, LEXICAL_ARRAYS, MEMBERS_FILE)
    return change_stamp(folder / name for folder in folders for name in names)


def cached_paths() -> list[str]:
    """The resolved directories in the cache, least recently used first (for tests)."""
    with _lock:
        return [path for path, _ in _cache]
