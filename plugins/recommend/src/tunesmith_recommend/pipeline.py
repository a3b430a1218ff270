"""Fit everything on a leave-last-out split: baselines, the two-tower, the ranker; evaluate them.

``fit`` is what ``tunesmith recommend train`` and ``eval`` and the benchmark share, so the
numbers they print come from one code path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import DataError
from tunesmith.retrieval import Encoder
from tunesmith_recommend import baselines as bl
from tunesmith_recommend.baselines import item_counts
from tunesmith_recommend.data import Catalogue, Events
from tunesmith_recommend.evaluate import (
    SCORE_ENTRIES,
    paired_ratio_interval,
    per_request_metrics,
    rank_requests,
    standard_slices,
    summarise_all,
)
from tunesmith_recommend.ranker import (
    MAX_REQUESTS,
    Signals,
    cosines,
    fit_ranker,
    item_ages,
    ranker_requests,
)
from tunesmith_recommend.ranker_added import TrainingEvents
from tunesmith_recommend.split import Requests, Split, leave_last_out
from tunesmith_recommend.two_tower import (
    fine_tune_item_encoder,
    train_content_prior,
    train_user_tower,
)
from tunesmith_recommend.updates import ServingScale, serving_signals


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


#: A fine-tuned item tower whose items have at least this mean cosine with each other, where
#: the pretrained ones had less, has collapsed (the sample's pretrained vectors: 0.28; its
#: collapsed fine-tuned ones: 0.97).
COLLAPSED_COSINE = 0.9


def mean_cosine(vectors: np.ndarray, limit: int = 2000, seed: int = 0) -> float:
    """Mean cosine between distinct items (of at most ``limit`` drawn at random)."""
    if len(vectors) > limit:
        vectors = vectors[np.random.default_rng(seed).choice(len(vectors), limit, replace=False)]
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    n = len(unit)
    if n < 2:
        return 0.0
    total = unit.sum(axis=0)
    # sum over i != j of u_i . u_j = |sum u|^2 - sum |u_i|^2
    return float((total @ total - (unit * unit).sum()) / (n * (n - 1)))


#: The user tower's examples by default: one per training event after a user's first, so its
#: training time grew with the events (a bookshop's million ratings); MovieTweetings' 8,000 and
#: the sample's 400 are far below it.
TOWER_MAX_EXAMPLES = 200_000


@dataclass
class Settings:
    """Training choices (defaults are what the benchmark uses)."""

    model: str = "default"
    fine_tune: bool = True
    encoder_epochs: float = 1.0
    max_pairs: int | None = 20000
    tower_epochs: int = 5
    #: (history, next item) examples the user tower trains on, a seeded sample (None: all)
    tower_max_examples: int | None = TOWER_MAX_EXAMPLES
    min_events: int = 3
    baselines: bool = True
    seed: int = 42
    #: co-occurrence counts at most this many of one user's items, their latest (None: all)
    cooc_max_history: int | None = bl.COOC_MAX_HISTORY
    #: validation requests the ranker is fitted on at most, a seeded sample (see
    #: :func:`~tunesmith_recommend.ranker.ranker_requests`: fewer on a large catalogue)
    ranker_max_requests: int = MAX_REQUESTS
    #: ALS chooses its factors on a seeded sample of this many validation requests (None: all;
    #: eval --max-test-requests: ALS ranks every one of them over the catalogue twice)
    baseline_max_requests: int | None = None
    #: where the item encoder encodes and its pair training runs (``--device``: ``auto``,
    #: ``cpu``, ``cuda``, ``cuda:N``, ``mps``); the user tower and content prior stay on the CPU
    device: str = "cpu"


@dataclass
class Fitted:
    """The fitted models and the data they were fitted on."""

    catalogue: Catalogue
    events: Events
    split: Split
    signals: Any
    ranker: Any
    val_ndcg: float
    encoder_dir: str  # a model directory or "default": the item tower
    pretrained_vectors: np.ndarray
    half_life: float
    baselines: dict[str, Any] = field(default_factory=dict)
    item_tower: str = "pretrained"  # or "fine-tuned": chosen on validation
    base_model: str = "default"  # the pretrained encoder
    tower_scores: dict[str, float] = field(default_factory=dict)  # validation NDCG@10 of each
    #: Mean cosine between items per tower when the fine-tuned one collapsed and was left out.
    collapsed_tower: dict[str, float] | None = None
    #: co-occurrence counted at most this many of one user's items (serving counts it again)
    cooc_max_history: int | None = bl.COOC_MAX_HISTORY
    #: the settings the model was trained with (meta.json records them)
    settings: Settings | None = None
    #: validation requests the ranker's weights were fitted on (a seeded sample of split.val)
    ranker_requests: int = 0

    def ranker_scores(self, batch: Requests) -> np.ndarray:
        """The final ranker's score for every catalogue item.

        The user vectors, history means and co-occurrence sums are the batch's; the features
        are made and summed a slice of items at a time (``SCORE_ENTRIES`` scores), so neither
        the batch's dense float64 features nor their weighted copies (2.5 GB per 256 requests
        at 200,000 items) are held. The products are float64 (``cosines``): a request's scores
        are the same, to about 1e-15, alone (``for-user``) or in any batch.
        """
        items = self.signals.item_features()
        item_part = self.ranker.item_part(items)
        added = self.ranker.added_items(items["cold"])
        inputs = self.signals.user_inputs(batch.histories)
        inputs.cooc = inputs.cooc.tocsc()  # sliced by items below
        n = len(item_part)
        scores = np.empty((len(batch), n))
        step = max(1, SCORE_ENTRIES // max(len(batch), 1))
        for start in range(0, n, step):
            cols = slice(start, start + step)
            part = self.signals.features_of(inputs, cols)
            scores[:, cols] = self.ranker.combine(
                part, item_part[cols], cold=items["cold"][cols], added=added[cols]
            )
        return scores

    def two_tower_scores(self, batch: Requests) -> np.ndarray:
        """The two-tower score alone (in float64, as the final ranker's: ``cosines``)."""
        users = self.signals.tower.encode(self.signals.item_vectors, batch.histories)
        return cosines(users, self.signals.item_vectors)

    def serving_scale(self) -> ServingScale:
        """How the saved model's counts are made from its events (``meta.json`` keeps it, so
        ``add-events`` recounts them as ``train`` did)."""
        return ServingScale(
            half_life=self.half_life,
            counts_total=float(self.signals.counts.sum()),
            recent_total=float(self.signals.recent.sum()),
            cooc_max_history=self.cooc_max_history,
        )

    def serving_signals(self) -> Signals:
        """The signals a saved model serves from: popularity, recent popularity, freshness and
        co-occurrence counted on every event, where ``signals`` (what the evaluation scores)
        count the training split only.

        Served from the training split, each user's last two events (a fifth of MovieTweetings'
        positive events) were missing: 335 of its 2,397 items with events were served as items
        "without events yet", and a film just watched brought no co-occurrence neighbours.

        The learned parts stay as fitted (item and user towers, content prior, the ranker's
        weights and scales). The ranker's weights are per unit of ``log1p`` of the counts it
        was fitted on, so the counts on every event are rescaled to the training split's total
        (and the recency-weighted counts to its recency-weighted total): an item keeps the
        feature value its share of events had in training, whatever the number of events, and
        the ranker's popularity-against-"no events yet" balance is unchanged. Co-occurrence is
        a cosine and freshness a time, neither grows with the number of events, so they are
        recounted as they are. Rescaling at save time, rather than redefining the features as
        shares, leaves the evaluation's features, weights and figures exactly as they were.
        ``add-events`` recounts them the same way (:func:`updates.serving_signals`).
        """
        return serving_signals(self.signals, self.events, self.split.n_items, self.serving_scale())


def _say_long_histories(
    split: Split, events: Events, max_history: int, say: Callable[[str], None]
) -> None:
    """One line naming the users whose co-occurrence is capped (a shared "guest" account)."""
    found = bl.long_histories(split, max_history)
    if not found:
        return
    heaviest = sorted(found.items(), key=lambda pair: (-pair[1], pair[0]))
    named = ", ".join(f"'{events.user_ids[user]}' ({n:,})" for user, n in heaviest[:3])
    more = f" and {len(found) - 3:,} more" if len(found) > 3 else ""
    say(
        f"note: {len(found):,} user(s) with more than {max_history:,} distinct items in training: "
        f"{named}{more}; co-occurrence counts each one's latest {max_history:,} "
        "(--cooc-max-history)"
    )


def encode_items(model: str, texts: list[str], device: str = "cpu") -> np.ndarray:
    """Item vectors from an encoder (a name or a directory), encoded on ``device``."""
    return Encoder.load(model, device=device).encode(texts)


def fit(
    catalogue: Catalogue,
    events: Events,
    work_dir: str | Path,
    settings: Settings | None = None,
    say: Callable[[str], None] = _say,
) -> Fitted:
    """Split, fit the baselines, fine-tune the item tower, train the user tower, fit the ranker."""
    settings = settings or Settings()
    split = leave_last_out(events, len(catalogue), min_events=settings.min_events)
    if len(split.val) == 0:
        raise DataError(
            f"no user has {settings.min_events} or more events, so nothing can be validated",
            path=events.path,
        )
    say(
        f"split: {len(split.fit_items)} training events, {len(split.val)} validation and "
        f"{len(split.test)} test requests, {len(catalogue)} items"
    )
    if settings.cooc_max_history is not None:
        _say_long_histories(split, events, settings.cooc_max_history, say)
    say("encoding items with the pretrained encoder")
    pretrained = encode_items(settings.model, catalogue.texts, device=settings.device)
    found: dict[str, Any] = {}
    if settings.baselines:
        knn = bl.ItemKNN(settings.cooc_max_history)
        als = bl.ALS(max_requests=settings.baseline_max_requests, seed=settings.seed)
        for model in (bl.Popularity(), bl.RecentPopularity(), knn, als):
            say(f"fitting baseline {model.name}")
            found[model.name] = model.fit(split)
        found["pretrained_embedding"] = bl.EmbeddingSimilarity(pretrained).fit(split)
    recent = found.get("recent_popularity") or bl.RecentPopularity().fit(split)
    towers: list[tuple[str, str, np.ndarray]] = [("pretrained", settings.model, pretrained)]
    collapsed: dict[str, float] | None = None
    if settings.fine_tune:
        say("fine-tuning the item encoder on (previous item -> next item) text pairs")
        tuned = fine_tune_item_encoder(
            split.fit_sequences,
            catalogue.texts,
            Path(work_dir) / "encoder",
            model=settings.model,
            epochs=settings.encoder_epochs,
            max_pairs=settings.max_pairs,
            seed=settings.seed,
            device=settings.device,
        )
        if tuned is not None:
            tuned_vectors = encode_items(str(tuned), catalogue.texts, device=settings.device)
            spread = {
                "pretrained": mean_cosine(pretrained),
                "fine-tuned": mean_cosine(tuned_vectors),
            }
            if spread["fine-tuned"] >= COLLAPSED_COSINE > spread["pretrained"]:
                # With next-item pairs that the texts cannot predict, in-batch negatives are
                # minimised by mapping every item to one point: such a tower can rank nothing
                # by its text (new items, "because you liked"), whatever its validation score.
                say(
                    "fine-tuned item tower not used: its items are all alike (mean cosine "
                    f"{spread['fine-tuned']:.2f} between items, pretrained {spread['pretrained']:.2f})"
                )
                collapsed = spread
            else:
                towers.append(("fine-tuned", str(tuned), tuned_vectors))
    counts = bl.item_counts(split)
    cooc = bl.cooccurrence(split, settings.cooc_max_history)
    ages = item_ages(split.n_items, split.fit_items, split.fit_times)
    # Each item tower gets its own user tower, content prior and ranker; the one with the better
    # validation NDCG@10 is kept (fine-tuning on next-item pairs can pull item vectors towards
    # popular items and lose the plain text match that new items depend on).
    best: tuple[float, str, str, Any, Any] | None = None
    tower_scores: dict[str, float] = {}
    n_ranker = ranker_requests(len(split.val), len(catalogue), settings.ranker_max_requests)
    fitted_on = (
        f"{n_ranker:,} validation requests"
        if n_ranker == len(split.val)
        else f"a seeded sample of {n_ranker:,} of the {len(split.val):,} validation requests "
        f"(--ranker-max-requests {settings.ranker_max_requests:,}"
        + (
            f"; at {len(catalogue):,} items no more than {n_ranker:,} fit in memory"
            if n_ranker < settings.ranker_max_requests
            else ""
        )
        + ")"
    )
    for label, encoder_dir, item_vectors in towers:
        say(f"training the user tower on the {label} item vectors")
        tower = train_user_tower(
            item_vectors,
            split.fit_sequences,
            epochs=settings.tower_epochs,
            seed=settings.seed,
            max_examples=settings.tower_max_examples,
        )
        signals = Signals(
            item_vectors=item_vectors,
            tower=tower,
            counts=counts,
            recent=recent.scores,
            prior=train_content_prior(item_vectors, recent.scores),
            cooc=cooc,
            age=ages,
            base_vectors=None if item_vectors is pretrained else pretrained,
        )
        say(f"choosing the ranker's weights on {fitted_on} ({label} item tower)")
        # the towers again without each tenth of the items, for items added later
        training = TrainingEvents(
            split.fit_sequences,
            recent.scores,
            tower_epochs=settings.tower_epochs,
            tower_max_examples=settings.tower_max_examples,
            seed=settings.seed,
        )
        ranker, val_ndcg = fit_ranker(
            signals,
            split.val,
            seed=settings.seed,
            max_requests=settings.ranker_max_requests,
            training=training,
        )
        tower_scores[label] = round(val_ndcg, 6)
        if best is None or val_ndcg > best[0]:
            best = (val_ndcg, label, encoder_dir, signals, ranker)
    assert best is not None
    val_ndcg, chosen, encoder_dir, signals, ranker = best
    say(f"item tower chosen on validation: {chosen} ({tower_scores})")
    return Fitted(
        catalogue=catalogue,
        events=events,
        split=split,
        signals=signals,
        ranker=ranker,
        val_ndcg=val_ndcg,
        encoder_dir=encoder_dir,
        pretrained_vectors=pretrained,
        half_life=float(recent.half_life),
        baselines=found,
        item_tower=chosen,
        tower_scores=tower_scores,
        collapsed_tower=collapsed,
        base_model=settings.model,
        cooc_max_history=settings.cooc_max_history,
        settings=settings,
        ranker_requests=n_ranker,
    )


#: seconds between a model's progress lines while it ranks the test requests
PROGRESS_SECONDS = 30.0


def _progress(name: str, total: int, say: Callable[[str], None]) -> Callable[[int], None]:
    """A ``rank_requests`` progress callback: a line every :data:`PROGRESS_SECONDS` with the
    requests ranked so far and the time left at that pace."""
    import time

    began = last = time.monotonic()

    def report(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_SECONDS or done >= total:
            return
        last = now
        left = (now - began) / max(done, 1) * (total - done)
        say(f"  {name}: {done:,} of {total:,} test requests, about {_duration(left)} left")

    return report


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min``, ``1 h 05 min``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def evaluate(
    fitted: Fitted,
    *,
    n_boot: int = 1000,
    max_requests: int | None = None,
    say: Callable[[str], None] = _say,
) -> dict[str, Any]:
    """Every model on the test requests: summaries with intervals, and the ranks behind them.

    ``max_requests``: score a seeded sample of that many test requests (each is a full
    ranking per model: the bookshop's 93,770 over 200,000 items, 19 billion scores a model);
    ``n_test_all`` in the result says how many there were. ``say`` gets a line per model and,
    during a long one, its progress.
    """
    split = fitted.split
    n_test_all = len(split.test)
    seed = fitted.settings.seed if fitted.settings is not None else 42
    test = split.test.sample(max_requests, seed)
    if test is not split.test:
        split = replace(split, test=test)
    slices = standard_slices(split.test, item_counts(split))
    scorers: dict[str, Any] = {name: m.score for name, m in fitted.baselines.items()}
    scorers["two_tower"] = fitted.two_tower_scores
    scorers["final_ranker"] = fitted.ranker_scores
    rankings: dict[str, Any] = {}
    n_test = len(split.test)
    for number, (name, score) in enumerate(scorers.items(), start=1):
        say(
            f"ranking {n_test:,} test requests over {split.n_items:,} items: {name} "
            f"({number} of {len(scorers)})"
        )
        progress = _progress(name, n_test, say)
        rankings[name] = rank_requests(score, split.test, split.n_items, progress=progress)
    results = summarise_all(rankings, slices, n_boot=n_boot)
    ranks = {name: ranked.ranks for name, ranked in rankings.items()}
    return {"models": results, "ranks": ranks, "slices": slices, "n_test_all": n_test_all}


def headline(result: dict[str, Any], n_items: int, k: int = 10) -> dict[str, Any]:
    """The benchmark's figures: the final ranker against the best baseline, and cold items."""
    models = result["models"]
    baselines = [name for name in models if name not in ("two_tower", "final_ranker")]
    final = models["final_ranker"]["all"]
    out: dict[str, Any] = {
        "ndcg10": round(final["ndcg10"], 4),
        "ndcg10_ci": [round(v, 4) for v in final["ndcg10_ci"]],
        "cold_recall10": round(models["final_ranker"]["cold_items"]["recall10"], 4),
        "two_tower_cold_recall10": round(models["two_tower"]["cold_items"]["recall10"], 4),
        # a random order of n items puts the held-out one in the top k with chance k / n, at most 1
        "random_recall10": round(min(k / n_items, 1.0), 4),
        "n_test": final["n"],
        # the test requests there were; n_test fewer: a seeded sample (eval --max-test-requests)
        "n_test_all": result.get("n_test_all", final["n"]),
        "n_cold": models["final_ranker"]["cold_items"]["n"],
    }
    if baselines:
        best = max(baselines, key=lambda name: models[name]["all"]["ndcg10"])
        ranks = result["ranks"]
        ndcg = {name: per_request_metrics(ranks[name], k)[f"ndcg{k}"] for name in ranks}
        out.update(
            best_baseline=best,
            ndcg10_best_baseline=round(models[best]["all"]["ndcg10"], 4),
            ndcg10_best_baseline_ci=[round(v, 4) for v in models[best]["all"]["ndcg10_ci"]],
            ratio=round(final["ndcg10"] / max(models[best]["all"]["ndcg10"], 1e-12), 3),
            ratio_ci=[round(v, 3) for v in paired_ratio_interval(ndcg["final_ranker"], ndcg[best])],
            best_id_baseline_cold_recall10=round(
                max(
                    models[name]["cold_items"]["recall10"]
                    for name in baselines
                    if name != "pretrained_embedding"
                ),
                4,
            ),
        )
    return out
