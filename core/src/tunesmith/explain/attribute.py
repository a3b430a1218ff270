"""Explain a sequence classifier's predictions: word attributions plus faithfulness scores.

``explain_texts`` takes a model and tokenizer (so it works before and without the engine's
loader); ``explain_loaded`` takes what ``tunesmith.engine.loading.load_model`` returns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tunesmith.errors import PluginError, UserInputError
from tunesmith.explain.encoding import check_texts, encode_texts, max_input_length
from tunesmith.explain.faithfulness import faithfulness
from tunesmith.explain.lexical import combine, ensemble_faithfulness, lexical_word_scores
from tunesmith.explain.methods import DEFAULT_METHOD, get_method
from tunesmith.explain.model_io import is_multilabel, label_names
from tunesmith.explain.ner import explain_entities
from tunesmith.explain.scoring import classifier_probabilities, classifier_score_fn
from tunesmith.explain.types import EntityExplanation, Explanation, WordScore

__all__ = [
    "TOKEN_TASKS",
    "Member",
    "check_texts",
    "explain_loaded",
    "explain_texts",
    "resolve_targets",
]

#: Task names under which a loaded model is a token classifier (NER).
TOKEN_TASKS = {"ner", "token-classification", "token_classification", "tagging"}


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass
class Member:
    """One more member of a seed ensemble to explain with the first model: its model and
    tokenizer, calibration ``temperature`` and lexical part (``None`` when it has none)."""

    model: Any
    tokenizer: Any
    temperature: Any = None
    lexical: Any = None


def _check_member_tokens(member: Member, encoded: Sequence[Any], limit: int) -> None:
    """A user error unless ``member`` reads the texts as the same token ids: the members'
    attributions are averaged position by position."""
    texts = [enc.text for enc in encoded]
    theirs = encode_texts(member.tokenizer, texts, max_length=limit, warn=False)
    for index, (mine, other) in enumerate(zip(encoded, theirs, strict=True)):
        if list(mine.input_ids) != list(other.input_ids):
            raise UserInputError(
                f"the ensemble's members tokenise text {index + 1} differently; an ensemble is "
                "explained word by word only when its members share one tokenizer"
            )


def _check_attributions(method: str, found: Any, encoded: Sequence[Any]) -> None:
    """A :class:`PluginError` naming ``method`` unless it returned one result per text, each
    with a score per token id: a plugin's method that did not failed later with a bare
    ``zip()`` traceback that named neither the method nor the plugin."""
    try:
        count = len(found)
    except TypeError:
        count = None
    if count != len(encoded):
        got = type(found).__name__ if count is None else f"{count} results"
        raise PluginError(
            f"attribution method {method!r} returned {got} for {len(encoded)} text(s); "
            "it must return one TokenAttribution per text"
        )
    for index, (enc, result) in enumerate(zip(encoded, found, strict=True)):
        scores = getattr(result, "scores", None)
        try:
            length = len(scores)  # type: ignore[arg-type]
        except TypeError:
            length = None
        if length != len(enc.input_ids):
            got = "no scores" if length is None else f"{length} scores"
            raise PluginError(
                f"attribution method {method!r} returned {got} for text {index + 1}, which has "
                f"{len(enc.input_ids)} tokens; it must give one score per token id"
            )


def resolve_targets(
    target: str | Sequence[str | None] | None, names: Sequence[str], n_texts: int
) -> list[int | None]:
    """Target label names to indices (``None`` means the predicted label)."""
    if target is None or isinstance(target, str):
        wanted: list[str | None] = [target] * n_texts
    else:
        wanted = list(target)
        if len(wanted) != n_texts:
            raise UserInputError(f"got {len(wanted)} targets for {n_texts} texts")
    lookup = {name: i for i, name in enumerate(names)}
    resolved: list[int | None] = []
    for name in wanted:
        if name is None or name == "":
            resolved.append(None)
            continue
        if name not in lookup:
            raise UserInputError(
                f"unknown target label {name!r}; the model's labels are: {', '.join(names)}"
            )
        resolved.append(lookup[name])
    return resolved


def explain_texts(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str] | str,
    *,
    labels: Sequence[str] | None = None,
    target: str | Sequence[str | None] | None = None,
    method: str | None = None,
    temperature: Any = None,
    lexical: Any = None,
    members: Sequence[Member] = (),
    n_steps: int = 50,
    max_tokens: int | None = None,
    max_length: int | None = None,
    with_faithfulness: bool = True,
    multilabel: bool | None = None,
    progress: Callable[[float], None] | None = None,
    warn: Callable[[str], None] | None = _warn,
) -> list[Explanation]:
    """Explain a sequence classifier's prediction (or ``target``) for each text.

    ``labels`` defaults to the model's ``id2label``; ``temperature`` (a float, or one per label
    for multi-label models) makes the explained probability the calibrated one; ``method``
    defaults to :data:`~tunesmith.explain.methods.DEFAULT_METHOD`; ``multilabel``
    (sigmoid instead of softmax) defaults to the model config's ``problem_type``. ``lexical``
    (a single-label model's n-gram regression, ``--lexical``) is mixed into the prediction, the
    word scores and the faithfulness scores as ``predict`` mixes it
    (:mod:`tunesmith.explain.lexical`). ``members``: a seed ensemble's other members, explained
    as ``predict`` scores the ensemble: the mean of the members' (mixed, calibrated)
    probabilities is the prediction and the explained score, and a word's score is the mean of
    its scores in each member (exactly what the method gives for that mean, since every
    built-in method is linear in the explained score). Texts longer
    than the model's limit are truncated, with a warning through ``warn``. ``max_tokens``
    bounds the padded tokens per forward pass (memory); ``progress`` gets texts done.
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        return []
    check_texts(texts)
    if n_steps < 1:
        raise UserInputError("the number of integrated-gradient steps must be at least 1")
    names = label_names(model, labels)
    if not names:
        raise UserInputError("the model has no label names (id2label); cannot explain it")
    wanted = resolve_targets(target, names, len(texts))
    method = method or DEFAULT_METHOD
    attribution = get_method(method)  # an unknown method is refused before any model runs
    if multilabel is None:
        multilabel = is_multilabel(model)
    scorers = _scorers(Member(model, tokenizer, temperature, lexical), members, multilabel)
    limit = max_length or max_input_length(model, tokenizer)
    encoded = _encode(scorers, texts, limit, warn)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scored = _predict(scorers, texts, encoded, pad_id=pad_id, multilabel=multilabel)
    targets = [p if w is None else w for p, w in zip(scored.predicted, wanted, strict=True)]
    full = [float(scored.probs[i, targets[i]]) for i in range(len(texts))]
    attributed = _attribute(
        scorers,
        attribution,
        method,
        texts,
        encoded,
        targets,
        scored,
        multilabel=multilabel,
        n_steps=n_steps,
        max_tokens=max_tokens,
        progress=progress,
    )
    faith = (
        _faithfulness(scorers, encoded, attributed, targets, full, pad_id, multilabel, max_tokens)
        if with_faithfulness
        else [(None, None, 0)] * len(texts)
    )
    extra: dict[str, Any] = {}
    if scorers[0].lexical is not None:
        extra["lexical_share"] = scorers[0].lexical.weight
    if len(scorers) > 1:
        extra["members"] = len(scorers)
    return [
        Explanation(
            text=enc.text,
            label=names[scored.predicted[i]],
            probability=float(scored.probs[i, scored.predicted[i]]),
            target=names[targets[i]],
            target_probability=full[i],
            tokens=[
                WordScore(word, score, start, end)
                for word, score, (start, end) in zip(
                    enc.words, attributed.word_scores[i], enc.spans, strict=True
                )
            ],
            method=method,
            **_delta_and_steps([attr[i] for attr in attributed.per_member], n_steps),
            comprehensiveness=faith[i][0],
            sufficiency=faith[i][1],
            k=faith[i][2],
            truncated=enc.truncated,
            extra=dict(extra),
        )
        for i, enc in enumerate(encoded)
    ]


def _scorers(first: Member, members: Sequence[Member], multilabel: bool) -> list[Member]:
    """The models whose mean is explained, in eval mode: ``first`` and a seed ensemble's other
    ``members``, without a lexical part for a multi-label model."""
    scorers = [first, *members]
    if multilabel:  # the engine fits a lexical part for single-label classifiers only
        scorers = [Member(s.model, s.tokenizer, s.temperature, None) for s in scorers]
    for scorer in scorers:
        scorer.model.eval()
    return scorers


def _encode(
    scorers: Sequence[Member], texts: list[str], limit: int, warn: Callable[[str], None] | None
) -> list[Any]:
    """``texts`` as the first model's tokens (up to ``limit``), which every member must read
    alike; a warning through ``warn`` for each text cut at ``limit``."""
    encoded = encode_texts(scorers[0].tokenizer, texts, max_length=limit, warn=False)
    for member in scorers[1:]:
        _check_member_tokens(member, encoded, limit)
    if warn is not None:
        for index, enc in enumerate(encoded):
            if enc.truncated:
                where = "the text" if len(texts) == 1 else f"text {index + 1}"
                warn(
                    f"warning: {where} is longer than the model's limit of {limit} tokens; "
                    "only its beginning is explained"
                )
    return encoded


@dataclass
class _Scored:
    """The prediction pass: per member the transformer's probabilities (``alone``) and its
    lexical model's (``lexical``, ``None`` without one); ``probs``: the mean of the members'
    mixes, what ``predict`` shows; ``predicted``: its top label per text."""

    alone: list[Any]
    lexical: list[Any]
    probs: Any
    predicted: list[int]


def _predict(
    scorers: Sequence[Member],
    texts: list[str],
    encoded: Sequence[Any],
    *,
    pad_id: int,
    multilabel: bool,
) -> _Scored:
    """Each member's probabilities of ``texts``, mixed with its lexical part, and their mean."""
    alone, lexical, mixed = [], [], []
    for scorer in scorers:
        probs = classifier_probabilities(
            scorer.model,
            [e.input_ids for e in encoded],
            pad_id=pad_id,
            multilabel=multilabel,
            temperature=scorer.temperature,
        )
        alone.append(probs)
        if scorer.lexical is None:
            lexical.append(None)
            mixed.append(probs)
        else:
            lexical.append(scorer.lexical.probabilities(texts))
            mixed.append(scorer.lexical.mix(probs, texts, lexical_probs=lexical[-1]))
    mean = mixed[0] if len(mixed) == 1 else sum(mixed[1:], mixed[0]) / len(mixed)
    return _Scored(alone, lexical, mean, [int(row.argmax()) for row in mean])


@dataclass
class _Attributed:
    """The attribution pass: ``per_member`` the method's results (one per text) of each member,
    ``word_scores`` the members' mean word scores per text, ``score_fn`` the first model's
    explained score (for its faithfulness)."""

    per_member: list[Any]
    word_scores: list[list[float]]
    score_fn: Any


def _attribute(
    scorers: Sequence[Member],
    attribution: Any,
    method: str,
    texts: list[str],
    encoded: Sequence[Any],
    targets: list[int],
    scored: _Scored,
    *,
    multilabel: bool,
    n_steps: int,
    max_tokens: int | None,
    progress: Callable[[float], None] | None,
) -> _Attributed:
    """Each member's word scores for ``targets`` by ``attribution`` (the method named
    ``method``) with its lexical part's, and their mean."""
    # Each member's progress is a share of the texts: the caller's count still ends at len(texts).
    share = (lambda done: progress(done / len(scorers))) if progress is not None else None
    per_member_scores, per_member, score_fns = [], [], []
    for m, scorer in enumerate(scorers):
        score_fn = classifier_score_fn(
            targets, multilabel=multilabel, temperature=scorer.temperature
        )
        score_fns.append(score_fn)
        token_attr = attribution.attribute(
            scorer.model,
            scorer.tokenizer,
            texts,
            encoded=encoded,
            score_fn=score_fn,
            pad_id=scorer.tokenizer.pad_token_id,
            n_steps=n_steps,
            max_tokens=max_tokens,
            progress=share,
            # The explained score at the input itself, already known from the prediction pass.
            input_values=[float(scored.alone[m][i, t]) for i, t in enumerate(targets)],
        )
        _check_attributions(method, token_attr, encoded)
        scores = [enc.merge(a.scores) for enc, a in zip(encoded, token_attr, strict=True)]
        if scorer.lexical is not None:
            scores = combine(
                scores,
                lexical_word_scores(scorer.lexical, encoded, targets, scored.lexical[m]),
                scorer.lexical.weight,
            )
        per_member_scores.append(scores)
        per_member.append(token_attr)
    word_scores = per_member_scores[0]
    if len(scorers) > 1:
        word_scores = [
            [sum(values) / len(scorers) for values in zip(*words, strict=True)]
            for words in zip(*per_member_scores, strict=True)
        ]
    return _Attributed(per_member, word_scores, score_fns[0])


def _faithfulness(
    scorers: Sequence[Member],
    encoded: Sequence[Any],
    attributed: _Attributed,
    targets: list[int],
    full: list[float],
    pad_id: int,
    multilabel: bool,
    max_tokens: int | None,
) -> list[tuple[Any, Any, int]]:
    """(comprehensiveness, sufficiency, k) per text of the word scores, read on the explained
    score ``full`` of each text's target."""
    if len(scorers) > 1 or scorers[0].lexical is not None:
        # Read on what predict shows: the mean of the members, each with its lexical share.
        return ensemble_faithfulness(
            scorers,
            encoded,
            attributed.word_scores,
            targets,
            full,
            pad_id=pad_id,
            multilabel=multilabel,
            max_tokens=max_tokens,
        )
    return faithfulness(
        scorers[0].model,
        encoded,
        attributed.word_scores,
        full,
        attributed.score_fn,
        pad_id=pad_id,
        max_tokens=max_tokens,
    )


def _delta_and_steps(results: Sequence[Any], n_steps: int) -> dict[str, Any]:
    """``delta`` and ``n_steps`` of one text's explanation from each member's ``results``."""
    deltas = [result.delta for result in results]
    # The members' mean attribution misses the mean of their score changes by the mean of
    # their own misses.
    delta = None if any(d is None for d in deltas) else sum(deltas) / len(deltas)
    # Integrated gradients report the rows they spent (a fixed-step method may ignore
    # ``n_steps``; an adaptive one spends more on some members); methods without a delta
    # have no steps.
    rows = max(getattr(result, "rows", n_steps) for result in results)
    return {
        "delta": None if delta is None else float(delta),
        "n_steps": rows if delta is not None else None,
    }


def explain_loaded(
    loaded: Any, texts: Sequence[str] | str, *, members: Sequence[Any] = (), **options: Any
) -> list[Explanation] | list[list[EntityExplanation]]:
    """Explain with a ``LoadedModel``: classifiers per text, taggers per predicted entity.

    ``members``: a seed ensemble's other members (``LoadedModel``s, as
    :func:`tunesmith.engine.ensemble.load_ensemble` gives them after ``loaded``); a classifier
    is then explained as ``predict`` scores the ensemble, the mean of the members. A tagger's
    entities are the first member's, as ``predict`` decodes them."""
    task = str(getattr(loaded, "task", "") or "").lower()
    if getattr(loaded, "max_length", None):
        # Explain exactly what ``tunesmith predict`` sees: the same truncation.
        options.setdefault("max_length", loaded.max_length)
    if task in TOKEN_TASKS:
        options.pop("target", None)
        options.pop("method", None)
        options.pop("with_faithfulness", None)
        return explain_entities(
            loaded.model,
            loaded.tokenizer,
            [texts] if isinstance(texts, str) else texts,
            labels=getattr(loaded, "labels", None),
            **options,
        )
    if task in {"classification", "multilabel"}:
        options.setdefault("multilabel", task == "multilabel")
    return explain_texts(
        loaded.model,
        loaded.tokenizer,
        texts,
        labels=getattr(loaded, "labels", None),
        temperature=getattr(loaded, "temperature", None),
        # What ``predict`` mixes in (``mix_into``): the explanation is of the same model.
        lexical=_lexical_of(loaded),
        members=[
            Member(m.model, m.tokenizer, getattr(m, "temperature", None), _lexical_of(m))
            for m in members
        ],
        **options,
    )


def _lexical_of(loaded: Any) -> Any:
    """The lexical part ``predict`` mixes into ``loaded``'s probabilities (``mix_into``)."""
    return (getattr(loaded, "extra", None) or {}).get("lexical")
