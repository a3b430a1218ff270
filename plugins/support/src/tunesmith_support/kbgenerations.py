"""A knowledge base's generations: what `index`, `train` and `calibrate` change is written under
new names beside what is served, and ``kb.json`` is switched to it in one atomic rename.

``kb.json`` names everything an answer reads that a command rewrites: the encoder
(``model``), the index folder (``index``), the BM25 index built with it (``lexical``,
:mod:`tunesmith_support.kblexical`), the intent classifier (``classifier``, when
`train --classifier` made one) and, for an instant, the calibration (``calibration``) and the
languages `index --language` set (``language``). So a
``kill -9`` at any point leaves the KB wholly as it was or wholly as the command made it, and a
server reloading meanwhile reads one or the other, never a mix (the new index with the old
calibration, as before).

The calibration is kept at ``calibration.json``, where users and tools look for it: a command
writes ``calibration-gN.json``, switches ``kb.json`` to it, copies it over ``calibration.json``
and switches ``kb.json`` back to that (:func:`settle_staged`); a kill in between leaves
``kb.json`` naming a file that holds the calibration it commits to. ``language.json`` (which
users edit too) is switched the same way, from ``language-gN.json``: written after the index's
switch, a kill between the two left the new index with the old languages.

A calibration records what it was fitted on (``fitted_on``: the encoder and classifier
``kb.json`` named). One that does not match, or (written before ``fitted_on``) is older than
the KB's tuned encoder or classifier, is the trace of a `train` killed by an earlier version:
:func:`check_matches` says so in one line naming what to run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.io import atomic_write_json, atomic_write_text

META = "kb.json"
CALIBRATION = "calibration.json"
LANGUAGE = "language.json"
CLASSIFIER_DIR = "classifier"
#: A generation-named folder or file: ``index-g000003``, ``g000003`` (under ``encoders/``),
#: ``classifier-g000003``, ``bm25-g000003``, ``calibration-g000003.json``,
#: ``language-g000003.json``.
GENERATION = re.compile(
    r"^(?:index-|classifier-|bm25-|calibration-|language-)?g(\d{6})(?:\.json)?$"
)
#: A calibration written before ``fitted_on`` counts as fitted on an encoder or classifier
#: written at most this much later (a KB copied without its times gets them within seconds).
SLACK_SECONDS = 60.0


def next_generation(kb_dir: str | Path) -> str:
    """A generation name (``g000004``) no folder or file of the KB uses yet."""
    kb_dir = Path(kb_dir)
    used = [0]
    for folder in (kb_dir, kb_dir / "encoders"):
        if folder.is_dir():
            used += [int(m.group(1)) for p in folder.iterdir() if (m := GENERATION.match(p.name))]
    return f"g{max(used) + 1:06d}"


def own_name(kb_dir: Path, meta: dict[str, Any], key: str, default: str) -> Path:
    """``kb_dir / meta[key]`` (else ``default``), refused unless a plain name inside the KB:
    a KB someone sent chose its ``kb.json``."""
    name = str(meta.get(key) or default)
    if name in (".", "..") or Path(name).name != name or "\\" in name:
        raise UserInputError(
            f"{kb_dir / META}: '{key}' must name a file or folder of the knowledge base, "
            f"got {name!r}"
        )
    return kb_dir / name


def calibration_path(kb_dir: str | Path, meta: dict[str, Any]) -> Path:
    """The calibration file ``kb.json`` commits to (``calibration.json`` but for an instant)."""
    return own_name(Path(kb_dir), meta, "calibration", CALIBRATION)


def language_path(kb_dir: str | Path, meta: dict[str, Any]) -> Path:
    """The languages file ``kb.json`` commits to (``language.json`` but for an instant); it
    may not exist (an English KB)."""
    return own_name(Path(kb_dir), meta, "language", LANGUAGE)


def stage_file(kb_dir: str | Path, meta: dict[str, Any], key: str, data: dict[str, Any]) -> Path:
    """Write ``data`` as a new generation's file for ``key`` (``calibration``, ``language``)
    and name it in ``meta``; nothing served changes until ``meta`` is committed."""
    kb_dir = Path(kb_dir)
    staged = kb_dir / f"{key}-{next_generation(kb_dir)}.json"
    atomic_write_json(staged, data)
    meta[key] = staged.name
    return staged


def classifier_path(kb_dir: str | Path, meta: dict[str, Any]) -> Path:
    """The intent classifier folder ``kb.json`` names (``classifier/`` for a KB trained before
    classifiers were generations); it may not exist (no classifier trained)."""
    return own_name(Path(kb_dir), meta, "classifier", CLASSIFIER_DIR)


def fitted_on(kb_dir: str | Path, meta: dict[str, Any]) -> dict[str, Any]:
    """What a calibration fitted now depends on: the encoder and the classifier (if any). The
    index is not part of it: `index` adds and removes entries under the same calibration."""
    classifier = classifier_path(kb_dir, meta)
    return {
        "model": str(meta.get("model") or "default"),
        "classifier": classifier.name if classifier.is_dir() else None,
    }


def commit(kb_dir: str | Path, meta: dict[str, Any]) -> None:
    """Switch the KB to ``meta`` (the commit point: one atomic rename of ``kb.json``), then move
    a new calibration and languages to their usual files (:func:`settle_staged`)."""
    atomic_write_json(Path(kb_dir) / META, meta)
    settle_staged(kb_dir, meta)


#: The files ``kb.json`` names for an instant only, by key, and where they are kept.
SETTLED = {"calibration": CALIBRATION, "language": LANGUAGE}


def settle_staged(kb_dir: str | Path, meta: dict[str, Any]) -> None:
    """Copy each staged file ``kb.json`` names (a calibration, languages) over its usual file
    and name that instead. Each step is atomic and leaves ``kb.json`` naming files that hold
    what it committed to."""
    kb_dir = Path(kb_dir)
    staged = [
        (key, usual, path)
        for key, usual in SETTLED.items()
        if (path := own_name(kb_dir, meta, key, usual)).name != usual
    ]
    for _key, usual, path in staged:
        atomic_write_text(kb_dir / usual, path.read_text(encoding="utf-8"))
    if not staged:
        return
    for key, _usual, _path in staged:
        meta.pop(key, None)
    atomic_write_json(kb_dir / META, meta)
    for _key, _usual, path in staged:
        path.unlink(missing_ok=True)


def check_matches(
    kb_dir: str | Path, meta: dict[str, Any], calibration: dict[str, Any] | None
) -> None:
    """Refuse, in one line, a calibration fitted on another encoder or classifier than the KB
    now has (a `train` killed by a version that switched them one at a time)."""
    if calibration is None:
        return
    kb_dir = Path(kb_dir)
    now = fitted_on(kb_dir, meta)
    recorded = calibration.get("fitted_on")
    if isinstance(recorded, dict):
        # Only the KB's own tuned encoder and a classifier replaced by another: a calibration
        # borrowed from another KB (the demo's upload without labelled questions) was fitted
        # elsewhere on purpose, and one fitted before any classifier reads none.
        own = {
            "model": now["model"].startswith("kb:"),
            "classifier": bool(now["classifier"] and recorded.get("classifier")),
        }
        stale = [k for k in ("model", "classifier") if own[k] and recorded.get(k) != now[k]]
    else:
        stale = _newer_than_calibration(kb_dir, meta)
    if stale:
        what = " and ".join("encoder" if k == "model" else "intent classifier" for k in stale)
        raise UserInputError(
            f"{kb_dir}: the calibration was fitted on another {what} than the knowledge base "
            "has (a `support train` was stopped before it finished); run `tunesmith support "
            f"train --kb {kb_dir} --data FILE` again, or `tunesmith support calibrate --kb "
            f"{kb_dir} --data FILE`"
        )


def _newer_than_calibration(kb_dir: Path, meta: dict[str, Any]) -> list[str]:
    """For a calibration written before ``fitted_on``: the KB's own tuned encoder and
    classifier written after it (its times, with :data:`SLACK_SECONDS` to spare)."""
    try:
        written = calibration_path(kb_dir, meta).stat().st_mtime
    except OSError:
        return []
    model = str(meta.get("model") or "")
    parts = {"classifier": classifier_path(kb_dir, meta) / "config.json"}
    if model.startswith("kb:"):
        parts["model"] = kb_dir / model[3:] / "config.json"
    elif model == "encoder":  # a KB trained before encoders/
        parts["model"] = kb_dir / "encoder" / "config.json"
    stale = []
    for key, path in parts.items():
        try:
            if path.stat().st_mtime > written + SLACK_SECONDS:
                stale.append(key)
        except OSError:
            continue
    return sorted(stale, key=["model", "classifier"].index)
