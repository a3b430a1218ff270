"""The stored events of a model saved before ``train`` kept them (no ``events.npz``), read again
from the events file ``train`` read (``meta.json``'s ``events_path``) for ``add-events``.

What is read is checked against what the model serves from, so a file that changed since
(a daily export appended to) or other columns are refused rather than served: every user's
history (``histories.json``), the items rated below the threshold (``rated_below.json``) and the
popularity shares (``signals.npz``) must be the model's own. The counts' scale is the stored
counts' (they were rescaled to the training split's totals when saved), and recent
popularity's half-life, which such a model did not record, is the one that gives the stored
recency-weighted counts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import UserInputError
from tunesmith_recommend import baselines as bl
from tunesmith_recommend.data import Catalogue, Events
from tunesmith_recommend.split import Split, every_event, leave_last_out
from tunesmith_recommend.updates import EventColumns, ServingScale

#: the largest difference between two share vectors (each summing to 1) taken as equal: the
#: stored counts went through float64 sums in another order
SHARES_TOLERANCE = 1e-9


def rebuild_events(
    model_dir: Path, current: Any, catalogue: Catalogue, columns: EventColumns
) -> tuple[Path, Events, ServingScale]:
    """The events file ``train`` read, the events read from it with ``columns`` and the scale
    the model's counts were made at; one :class:`UserInputError` saying what to rerun when
    they cannot be the model's."""
    meta = current.meta
    retrain = (
        f"train it again (tunesmith recommend train ... --out {model_dir} --force), which "
        "keeps its events for add-events"
    )
    recorded = meta.get("events_path")
    if not recorded:
        raise UserInputError(
            f"{model_dir} keeps no events to add to (no events.npz) and does not record the "
            f"events file it was trained on; {retrain}"
        )
    path = Path(recorded)
    if not path.exists():
        raise UserInputError(
            f"{model_dir} keeps no events (no events.npz: saved by an older train) and the "
            f"events file it was trained on, {path}, is gone; put it back there, or {retrain}"
        )
    events = columns.read(path, catalogue)
    changed = _first_difference(model_dir, events, catalogue.ids)
    if changed is not None:
        raise UserInputError(
            f"{model_dir} keeps no events (no events.npz: saved by an older train) and "
            f"{path} is not the events it was trained on ({changed}): the file changed "
            f"since, or other columns, --kinds or --rating-col were used; {retrain}"
        )
    everything = every_event(events, len(catalogue))
    signals = current.signals
    counts = bl.item_counts(everything)
    half_life = _half_life(everything, events, signals.recent)
    if not _same_shares(counts, signals.counts) or half_life is None:
        # a model from before serving counted every event (it counted the training split)
        raise UserInputError(
            f"{model_dir} keeps no events (no events.npz) and its popularity was not counted "
            f"from every event of {path} (a model from an older train); {retrain}"
        )
    scale = ServingScale(
        half_life=half_life,
        counts_total=float(signals.counts.sum()),
        recent_total=float(signals.recent.sum()),
        cooc_max_history=meta.get("cooc_max_history"),
    )
    return path, events, scale


def _first_difference(model_dir: Path, events: Events, ids: list[str]) -> str | None:
    """Where ``events`` differ from the histories and rated-below items the model keeps, in
    words; None when they are the same."""
    kept = json.loads((model_dir / "histories.json").read_text(encoding="utf-8"))
    read = {
        user: [ids[i] for i in items.tolist()]
        for user, (items, _) in zip(events.user_ids, events.sequences(), strict=True)
    }
    below_path = model_dir / "rated_below.json"
    kept_below = json.loads(below_path.read_text(encoding="utf-8")) if below_path.exists() else {}
    read_below = {user: [ids[i] for i in items] for user, items in events.rated_below.items()}
    for what, model, found in (
        ("history", kept, read),
        ("items rated below --min-rating", kept_below, read_below),
    ):
        if model == found:
            continue
        extra = sorted(set(found) - set(model))
        if extra:
            return f"user {extra[0]!r} has events in it and none in the model"
        missing = sorted(set(model) - set(found))
        if missing:
            return f"user {missing[0]!r} of the model has no events in it"
        user = min(u for u in model if model[u] != found[u])
        return f"user {user!r}'s {what} is not the model's"
    return None


def _shares(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values / max(float(values.sum()), 1e-300)


def _same_shares(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and float(np.abs(_shares(a) - _shares(b)).max()) <= SHARES_TOLERANCE


def _half_life(everything: Split, events: Events, stored: np.ndarray) -> float | None:
    """The half-life that gives the stored recency-weighted counts from ``everything``: one of
    the candidates train chose from (``RecentPopularity.FRACTIONS`` of the training split's
    span, with the default ``--min-events``), else the nearest found by a search over the
    span (another ``--min-events``); None when none gives them."""
    target = _shares(stored)

    def gap(half_life: float) -> float:
        found = bl.decayed_counts(everything, half_life)
        return float(np.abs(_shares(found) - target).max()) if found.shape == target.shape else 1.0

    split = leave_last_out(events, everything.n_items)
    span = max(split.end_time - float(split.fit_times.min()), bl.DAY)
    for fraction in bl.RecentPopularity.FRACTIONS:
        if gap(span * fraction) <= SHARES_TOLERANCE:
            return span * fraction
    from scipy.optimize import minimize_scalar

    low, high = math.log(span * 1e-3), math.log(span * 10)
    best = minimize_scalar(lambda x: gap(math.exp(x)), bounds=(low, high), method="bounded")
    chosen = math.exp(float(best.x))
    return chosen if gap(chosen) <= 1e-6 else None
