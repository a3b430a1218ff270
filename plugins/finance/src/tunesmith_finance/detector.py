"""Surge detectors on per-bucket counts: pure functions, shared by ``alerts``, ``replay`` and the
benchmark.

:class:`SurgeDetector` (the default) compares the negative share of a rolling window (the last
``window`` buckets) with a baseline rate: an exponentially weighted moving average of earlier
buckets' counts (half-life ``half_life`` seconds, by default 24 buckets), volume-weighted, shrunk
towards a prior rate worth ``prior_weight`` documents. The prior's documents do not fade with
time: only the key's own history does, so a young key's baseline leans on the prior until the
key has documents of its own, however long its buckets. A window alerts when it has at least
``min_volume`` documents, the key had at least ``min_history`` documents before it (by default
twice the prior's weight: a young key is not measured against the whole database's share), its
share is at least ``min_lift`` above the baseline, and the one-sided exact binomial test
P(X ≥ negatives | n, baseline) is below ``p_value``. After an alert the key is quiet for
``cooldown`` seconds (no alert whose window ends sooner; by default the window's length, at least
6 hours, so that two alerts of a key share no bucket), and so is it around the window ends
``quiet`` names (alerts stored by earlier runs). Buckets inside the window are not yet in the baseline, so a surge does not
raise the bar it is measured against until it has left the window.

:class:`ThresholdDetector` is the plain rule it is compared with: window share ≥ ``threshold``
with the same minimum volume and cool-down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


def min_history_for(prior: float | None) -> float | None:
    """:attr:`SurgeDetector.min_history` for a baseline that starts at ``prior``: 0 for an
    analyst's ``--prior`` (it stands for each key's past, so a key's first window is tested
    against it), None (twice the prior's weight) when ``prior`` is None and the baseline starts
    at the whole database's share, which stands for no key's past."""
    return None if prior is None else 0.0


@dataclass(frozen=True)
class Detection:
    """A surge found in one key's series: the window and the figures that made it an alert."""

    key: str
    window_start: float
    window_end: float
    n: int
    negatives: int
    share: float
    baseline: float
    z: float
    p_value: float
    score_sum: float = 0.0

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.n if self.n else 0.0


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p), exact (log-space terms; n up to tens of thousands)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    lg = math.lgamma
    base = lg(n + 1)
    total = 0.0
    for i in range(k, n + 1):
        term = math.exp(base - lg(i + 1) - lg(n - i + 1) + i * log_p + (n - i) * log_q)
        total += term
        if term < 1e-17 * max(total, 1e-300) and i > n * p:
            break
    return min(1.0, total)


def _series(counts: Iterable[tuple[int, int, int, float]]) -> dict[int, tuple[int, int, float]]:
    return {b: (n, k, s) for b, n, k, s in counts}


def _near(window_end: float, quiet: list[float], cooldown: float) -> bool:
    """Whether a window ends within ``cooldown`` of an alert stored earlier (either side: a
    later run may find the same surge a bucket earlier)."""
    return any(abs(window_end - end) < cooldown for end in quiet)


#: The default half-life in buckets: 24 h with hourly buckets, and with daily ones 24 days, not
#: one (a 24 h half-life halved a daily baseline every bucket, so two days made it).
HALF_LIFE_BUCKETS = 24
#: The least default cool-down: 6 h, as it was with hourly buckets and a 3-hour window.
MIN_COOLDOWN = 6 * 3600.0
#: A key's windows are tested once it has had this many times the prior's documents
#: (:attr:`SurgeDetector.min_history`).
MIN_HISTORY_PRIORS = 2


@dataclass
class SurgeDetector:
    """EWMA baseline + one-sided binomial test; see the module docstring.

    ``half_life`` None: :data:`HALF_LIFE_BUCKETS` buckets; ``cooldown`` None: the window's
    length, at least :data:`MIN_COOLDOWN`. Both are seconds once the detector is built."""

    bucket: float = 3600.0
    window: int = 3
    half_life: float | None = None
    min_volume: int = 8
    min_lift: float = 0.15
    p_value: float = 0.001
    cooldown: float | None = None
    prior: float = 0.2
    prior_weight: float = 10.0
    #: Documents a key must have had before a window for the window to be tested (None: twice
    #: ``prior_weight``, so that its own past outweighs the prior two to one). 0 (every window
    #: tested) when the prior is the analyst's (``--prior``): it stands for each key's past, and
    #: a young database's first bucket alerts against it. None when the prior is the whole
    #: database's share (the commands without ``--prior``): a young key's first windows were
    #: compared with that, not with its own past, and on a desk's 1,400 tickers those whose few
    #: documents were negative all along raised hundreds of alerts on a database's first days.
    min_history: float | None = 0.0
    name: str = "ewma-binomial"

    def __post_init__(self) -> None:
        if self.half_life is None:
            self.half_life = HALF_LIFE_BUCKETS * self.bucket
        if self.min_history is None:
            self.min_history = MIN_HISTORY_PRIORS * self.prior_weight
        if self.cooldown is None:
            # Shorter than the window, one surge alerted in every window that held it: with
            # daily buckets and 6 h, the same documents two or three days running.
            self.cooldown = max(MIN_COOLDOWN, self.window * self.bucket)

    def detect(
        self,
        key: str,
        counts: Iterable[tuple[int, int, int, float]],
        quiet: Iterable[float] = (),
    ) -> list[Detection]:
        """Alerts in one key's ``(bucket index, count, negatives, score sum)`` rows; none within
        the cool-down of a window end in ``quiet`` (the key's alerts stored by earlier runs)."""
        stored = list(quiet)
        series = _series(counts)
        if not series:
            return []
        first, last = min(series), max(series)
        decay = 0.5 ** (self.bucket / self.half_life)
        # The key's own history fades; the prior's documents do not. Faded with the history,
        # the prior vanished within days of daily buckets, and a young key's first quiet bucket
        # (0 negatives of 13) became its baseline, floored at 1 %.
        prior_n, prior_k = self.prior_weight, self.prior * self.prior_weight
        base_n = base_k = 0.0
        # Documents the key had before the window, unfaded: its age, not its recent volume.
        seen = 0
        found: list[Detection] = []
        quiet_until = -math.inf
        for end in range(first, last + 1):
            start = end - self.window + 1
            # The bucket leaving the window joins the baseline now (a lagging baseline).
            leaving = series.get(start - 1)
            base_n *= decay
            base_k *= decay
            if leaving:
                base_n += leaving[0]
                base_k += leaving[1]
                seen += leaving[0]
            n = k = 0
            total = 0.0
            for b in range(start, end + 1):
                if b in series:
                    n += series[b][0]
                    k += series[b][1]
                    total += series[b][2]
            window_start = start * self.bucket
            window_end = (end + 1) * self.bucket
            if n < self.min_volume or window_end < quiet_until or seen < self.min_history:
                continue
            rate = min(max((base_k + prior_k) / (base_n + prior_n), 0.01), 0.99)
            share = k / n
            if share - rate < self.min_lift:
                continue
            p = binomial_sf(k, n, rate)
            if p >= self.p_value:
                continue
            if _near(window_end, stored, self.cooldown):
                # Already alerted: it must not start a cool-down of its own, which would
                # silence the next surge after the stored alert's cool-down has ended.
                continue
            z = (k - n * rate) / math.sqrt(n * rate * (1 - rate))
            found.append(Detection(key, window_start, window_end, n, k, share, rate, z, p, total))
            quiet_until = window_end + self.cooldown
        return found


@dataclass
class ThresholdDetector:
    """A fixed rule: alert when the window's negative share reaches ``threshold``."""

    bucket: float = 3600.0
    window: int = 3
    threshold: float = 0.5
    min_volume: int = 8
    cooldown: float = 6 * 3600.0
    name: str = "fixed-threshold"

    def detect(
        self,
        key: str,
        counts: Iterable[tuple[int, int, int, float]],
        quiet: Iterable[float] = (),
    ) -> list[Detection]:
        """Alerts in one key's rows; none within the cool-down of a window end in ``quiet``."""
        stored = list(quiet)
        series = _series(counts)
        if not series:
            return []
        found: list[Detection] = []
        quiet_until = -math.inf
        for end in range(min(series), max(series) + 1):
            start = end - self.window + 1
            rows = [series[b] for b in range(start, end + 1) if b in series]
            n = sum(r[0] for r in rows)
            k = sum(r[1] for r in rows)
            window_start = start * self.bucket
            window_end = (end + 1) * self.bucket
            if n < self.min_volume or window_end < quiet_until or k / n < self.threshold:
                continue
            if _near(window_end, stored, self.cooldown):
                continue
            total = sum(r[2] for r in rows)
            found.append(
                Detection(
                    key, window_start, window_end, n, k, k / n, self.threshold, 0.0, 1.0, total
                )
            )
            quiet_until = window_end + self.cooldown
        return found
