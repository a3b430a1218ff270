"""A loaded model that follows its folder: ``add-events``, ``add-items`` and ``train --force``
rename a new version over the folder, and a long-lived process (a web app through
:func:`tunesmith_recommend.load`, the demo) loads it off the request path and swaps it in
(:class:`tunesmith.reloading.Reloading`), so no request pays the load (up to ~10 s at 100,000
items on a loaded machine) and none is answered from a mix of two versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.io import change_stamp
from tunesmith.reloading import Reloading


def model_stamp(path: Path) -> tuple[int, ...] | None:
    """What changes when a model folder is rewritten (:func:`tunesmith.io.change_stamp` of
    the folder, a new copy renamed over it, and its ``meta.json``, which every rewrite writes:
    an inode number alone may come back after two rewrites). None while either is missing
    (between a rewrite's two renames: nothing to load yet)."""
    stamp = change_stamp([path, path / "meta.json"])
    return None if stamp[0] == 0 or stamp[3] == 0 else stamp


def read_model(path: Path, device: str) -> Any:
    """The model folder read whole (a :class:`~tunesmith_recommend.model.Recommender`)."""
    from tunesmith_recommend.model import Recommender

    return Recommender(path, device=device)


def model_versions(path: Path, device: str, mode: str = "background") -> Reloading[Any]:
    """The model at ``path`` loaded now, then again as ``mode`` says
    (:data:`tunesmith.reloading.RELOAD_MODES`) whenever the folder is rewritten."""
    stamp = model_stamp(path)  # before it is read: a rewrite meanwhile is seen at the next check
    return versions_of(read_model(path, device), stamp, mode)


def versions_of(recommender: Any, stamp: tuple[int, ...] | None, mode: str) -> Reloading[Any]:
    """``recommender``, loaded from its folder stamped ``stamp`` (taken before it was read),
    followed as ``mode`` says."""
    path, device = Path(recommender.path), recommender.device
    return Reloading(
        recommender,
        stamp if stamp is not None else model_stamp(path),
        lambda: read_model(path, device),
        lambda: model_stamp(path),
        mode=mode,
        what=f"the recommend model {path}",
    )
