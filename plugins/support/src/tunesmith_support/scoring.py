"""Candidate answers for a question, with the scores that calibration turns into a confidence.

Each entry gets a retrieval score: the larger of the question's cosine with the entry's answer
text and its cosine with the entry's indexed question minus ``question_offset`` (an FAQ that
repeats a question under several answers is better matched on answers: a large offset ignores
indexed questions); optionally a lexical BM25 score (bm25s, scaled to [0, 1] per question) and
optionally the probability an intent classifier gives the entry (and, when it was trained with
out-of-scope questions, the probability it gives :data:`OUT_OF_SCOPE`, and with its in-scope
training questions stored, how close the question comes to the nearest of them in the
classifier's own sentence space). The combined score is
``retrieval + w_lexical * lexical + w_intent * intent``; the offset and weights are chosen on
validation questions by `support calibrate` and are zero until then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.engine.ensemble import load_ensemble, mean_probabilities
from tunesmith.io import atomic_open
from tunesmith.retrieval import Encoder
from tunesmith_support.kb import Entry
from tunesmith_support.kbindex import renamed_ids
from tunesmith_support.languages import lexical_tokens, stopwords

#: The BM25 tokenizer's vocabulary in a saved :class:`Lexical` (beside bm25s's own files).
VOCAB_FILE = "vocab.tokenizer.json"
#: The intent classifier's label for questions the KB cannot answer (never an entry id).
OUT_OF_SCOPE = "__out_of_scope__"
#: The classifier's in-scope training questions, embedded by its own encoder (normalised,
#: float32): a question far from all of them is likely out of scope, a signal the classifier's
#: probabilities miss (CLINC150, docs/support.md).
EXAMPLES_FILE = "support_examples.npy"


@dataclass
class Candidate:
    """One entry considered for a question, with its scores."""

    entry: Entry
    score: float
    retrieval: float
    question_score: float
    answer_score: float
    lexical: float = 0.0
    intent: float = 0.0
    #: The question's out-of-scope probability from the intent classifier (same for every
    #: candidate of one question; 0 without a classifier trained on out-of-scope questions).
    out_of_scope: float = 0.0
    #: The question's best cosine with the classifier's in-scope training questions, in the
    #: classifier's own space (same for every candidate; 0 without stored examples).
    knn: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.entry.id,
            "title": self.entry.title,
            "snippet": self.entry.snippet,
            "category": self.entry.category,
            "source": self.entry.source,
            "heading": self.entry.heading,
            "score": round(self.score, 4),
            "retrieval": round(self.retrieval, 4),
            "lexical": round(self.lexical, 4),
            "intent": round(self.intent, 4),
        }


@dataclass
class Weights:
    """How the scores are combined (chosen on validation data)."""

    lexical: float = 0.0
    intent: float = 0.0
    question_offset: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "lexical": self.lexical,
            "intent": self.intent,
            "question_offset": self.question_offset,
        }

    def retrieval(self, question_score: float, answer_score: float) -> float:
        """The retrieval score of an entry from its two cosines."""
        return max(answer_score, question_score - self.question_offset)


class Lexical:
    """BM25 over the entries' question, heading and answer text (bm25s), on folded words
    (:func:`~tunesmith_support.languages.lexical_tokens`: case, accents and Unicode forms do
    not count) without the stop words of the KB's ``languages``."""

    def __init__(self, entries: list[Entry], languages: Sequence[str] = ("en",)) -> None:
        import bm25s

        self.tokenizer = self._tokenizer(languages)
        self.built_for = self.key(entries, languages)
        corpus = [" ".join(filter(None, [e.question, e.heading, e.answer])) for e in entries]
        ids = self.tokenizer.tokenize(corpus, return_as="ids", show_progress=False)
        self.retriever = bm25s.BM25()
        self.retriever.index(ids, show_progress=False)

    @staticmethod
    def _tokenizer(languages: Sequence[str]) -> Any:
        from bm25s.tokenization import Tokenizer

        # bm25s's own splitter kept case-sensitive Unicode forms apart ("Öffnungszeiten" in
        # NFD matched nothing, "GRÖSSE" not "Größe") and read a Japanese sentence as one word.
        return Tokenizer(
            lower=False, splitter=lexical_tokens, stopwords=stopwords(list(languages)), stemmer=None
        )

    def save(self, folder: str | Path) -> None:
        """Write the index and its vocabulary into ``folder`` (bm25s's own files), to be read
        back by :meth:`load` instead of built again (:mod:`tunesmith_support.kblexical`)."""
        import copy

        # Indexed from token ids, its vocabulary maps each id to itself: JSON keys are text.
        saved = copy.copy(self.retriever)
        saved.vocab_dict = {str(k): v for k, v in self.retriever.vocab_dict.items()}
        saved.save(str(folder), show_progress=False)
        self.tokenizer.save_vocab(str(folder), vocab_name=VOCAB_FILE)

    @classmethod
    def load(cls, folder: str | Path, entries: list[Entry], languages: Sequence[str]) -> Lexical:
        """The index :meth:`save` wrote into ``folder``; the caller has checked that it was
        built from ``entries`` in ``languages`` (the stop words are those of ``languages``)."""
        import bm25s

        lexical = object.__new__(cls)
        lexical.tokenizer = cls._tokenizer(languages)
        lexical.tokenizer.load_vocab(str(folder), vocab_name=VOCAB_FILE)
        retriever = bm25s.BM25.load(str(folder), show_progress=False)
        retriever.vocab_dict = {int(k): v for k, v in retriever.vocab_dict.items()}
        lexical.retriever = retriever
        lexical.built_for = cls.key(entries, languages)
        return lexical

    @staticmethod
    def key(entries: list[Entry], languages: Sequence[str]) -> tuple[Any, ...]:
        """What the index is built from: equal keys, the same index (the content hash covers
        every text it reads; the languages give its stop words)."""
        return tuple(languages), tuple((e.id, e.content_hash) for e in entries)

    @classmethod
    def reused(
        cls, built: Lexical | None, entries: list[Entry], languages: Sequence[str] = ("en",)
    ) -> Lexical:
        """``built`` when it was built from these entries in these languages, else a new index:
        a reload after `calibrate` or `train` (the same entries) took 10 s of a 100,000-passage
        KB to build it again."""
        if built is not None and built.built_for == cls.key(entries, languages):
            return built
        return cls(entries, languages)

    def scores(self, queries: list[str]) -> np.ndarray:
        """``[n_queries, n_entries]`` BM25 scores, each row divided by its maximum."""
        tokens = self.tokenizer.tokenize(
            queries, update_vocab=False, return_as="ids", show_progress=False
        )
        rows = []
        for query in tokens:
            row = np.asarray(self.retriever.get_scores(list(query)), dtype=np.float32)
            top = float(row.max()) if row.size else 0.0
            rows.append(row / top if top > 0 else row)
        return np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


class IntentModel:
    """An intent classifier whose labels are entry ids (`support train --classifier`), or a
    seed ensemble of them (``--classifier-members``)."""

    def __init__(
        self, directory: str | Path, *, device: str = "cpu", renamed: dict[str, str] | None = None
    ) -> None:
        """Load the classifier at ``directory`` onto ``device``. ``renamed``: the KB's renamed
        ids (:func:`~tunesmith_support.kbindex.renamed_in` of the ``kb.json`` already read),
        else read from ``KB/kb.json``, this folder's parent."""
        self.directory = Path(directory)
        self.models = load_ensemble(str(directory), device=device)
        self._relabel(renamed_ids(self.directory.parent) if renamed is None else renamed)
        stored = self.directory / EXAMPLES_FILE
        self.examples: np.ndarray | None = np.load(stored) if stored.exists() else None
        self._encoder: Encoder | None = None  # the first member's, made on first use

    def _relabel(self, renamed: dict[str, str]) -> None:
        # Labels are the ids the KB had when it was trained; one a re-index renamed since
        # scores the entry under its new id.
        self.labels = [renamed.get(label, label) for label in self.models[0].labels]

    def relabelled(self, renamed: dict[str, str]) -> IntentModel:
        """This classifier for a KB whose ``kb.json`` renames ``renamed``: the same loaded
        models (a reload whose classifier folder did not change), its own labels."""
        copy = object.__new__(IntentModel)
        copy.__dict__.update(self.__dict__)
        copy._relabel(renamed)
        return copy

    def probabilities(self, queries: list[str]) -> np.ndarray:
        """Calibrated label probabilities ``[n, labels]`` (each member's own temperature; an
        ensemble's mean)."""
        return np.asarray(mean_probabilities(self.models, queries), dtype=np.float32)

    def similarity(self, queries: list[str]) -> np.ndarray | None:
        """Each query's best cosine with the stored in-scope training questions, in the (first)
        classifier's sentence space; ``None`` when none are stored (classifiers trained before)."""
        if self.examples is None or not len(self.examples):
            return None
        if self._encoder is None:
            self._encoder = Encoder.from_classifier(self.models[0], path=self.directory)
        return best_cosine(self._encoder, queries, self.examples)


def best_cosine(encoder: Encoder, texts: list[str], examples: np.ndarray) -> np.ndarray:
    """Each text's best cosine with the rows of ``examples`` (unit vectors from ``encoder``,
    whose own vectors are unit length too)."""
    return (encoder.encode(list(texts), progress=False) @ examples.T).max(axis=1)


def save_examples(classifier_dir: str | Path, questions: list[str], *, device: str = "cpu") -> Path:
    """Embed ``questions`` (the classifier's in-scope training questions) with the classifier's
    own encoder and store them beside it, atomically, for :meth:`IntentModel.similarity`."""
    target = Path(classifier_dir) / EXAMPLES_FILE
    vectors = Encoder.load(str(classifier_dir), device=device).encode(
        list(questions), progress=False
    )
    with atomic_open(target, binary=True) as handle:
        np.save(handle, vectors)
    return target


@dataclass
class Scorer:
    """Scores the entries of one KB for questions."""

    index: Any
    entries: list[Entry]
    lexical: Lexical | None = None
    intent: IntentModel | None = None
    weights: Weights = field(default_factory=Weights)

    def __post_init__(self) -> None:
        self.position = {e.id: i for i, e in enumerate(self.entries)}
        self.intent_columns: dict[str, int] = {}
        if self.intent is not None:
            self.intent_columns = {label: i for i, label in enumerate(self.intent.labels)}

    def candidates(self, queries: list[str], k: int = 5, depth: int = 50) -> list[list[Candidate]]:
        """The ``k`` best entries for each query, best first."""
        return [rank(c, self.weights, k) for c in self.components(queries, depth=depth)]

    def components(
        self, queries: list[str], *, depth: int = 50, everything: bool = False
    ) -> list[list[Candidate]]:
        """Every entry considered for each query, with its separate scores (unranked).

        ``depth`` vectors are retrieved per query; an entry outside them gets the lowest
        retrieved score for the missing field, so lexical and intent scores can still lift it.
        ``everything`` computes the lexical score even when its weight is zero (to choose the
        weights). Intent scores are computed whenever a classifier is loaded: the confidence
        reads them even when their weight in the ranking is zero.
        """
        if not queries:
            return []
        queries = list(queries)
        hits = self.index.search_batch(queries, k=max(1, min(depth, len(self.index))))
        use_lexical = self.lexical is not None and (everything or self.weights.lexical != 0.0)
        use_intent = self.intent is not None
        lexical = self.lexical.scores(queries) if use_lexical else None
        intent = self.intent.probabilities(queries) if use_intent else None
        similarity = self.intent.similarity(queries) if use_intent else None
        oos_column = self.intent_columns.get(OUT_OF_SCOPE)
        out = []
        for qi, row in enumerate(hits):
            floor = min((h.score for h in row), default=0.0)
            q_scores: dict[str, float] = {}
            a_scores: dict[str, float] = {}
            for hit in row:
                entry_id = hit.payload.get("entry_id", hit.id.rsplit("::", 1)[0])
                # A past question an entry answered (`train --index-questions`) counts as one
                # of its questions.
                target = q_scores if hit.payload.get("field") in ("q", "h") else a_scores
                target[entry_id] = max(target.get(entry_id, -1.0), float(hit.score))
            pool = set(q_scores) | set(a_scores)
            if lexical is not None:
                pool |= {self.entries[i].id for i in np.argsort(-lexical[qi])[:10]}
            if intent is not None:
                labels = self.intent.labels
                pool |= {labels[i] for i in np.argsort(-intent[qi])[:10]}
            oos = (
                float(intent[qi, oos_column])
                if intent is not None and oos_column is not None
                else 0.0
            )
            found = []
            for entry_id in pool:
                position = self.position.get(entry_id)
                if position is None:
                    continue
                entry = self.entries[position]
                qs = q_scores.get(entry_id, floor if entry.kind == "faq" else -1.0)
                as_ = a_scores.get(entry_id, floor)
                lex = float(lexical[qi, position]) if lexical is not None else 0.0
                column = self.intent_columns.get(entry_id)
                prob = (
                    float(intent[qi, column]) if intent is not None and column is not None else 0.0
                )
                knn = float(similarity[qi]) if similarity is not None else 0.0
                found.append(Candidate(entry, 0.0, max(qs, as_), qs, as_, lex, prob, oos, knn))
            out.append(found)
        return out


def _floor(found: list[Candidate]) -> float:
    """The lowest retrieval cosine of one query's candidates: what
    :meth:`Scorer.components` gives a field that was not retrieved."""
    scores = [c.answer_score for c in found]
    scores += [c.question_score for c in found if c.entry.kind == "faq"]
    return min(scores, default=0.0)


def fuse(question: list[Candidate], topic: list[Candidate], share: float = 0.5) -> list[Candidate]:
    """Each entry's scores for a follow-up: ``share`` of its scores for the question alone and
    the rest of those for the question joined to the conversation's topic (unranked; see
    :func:`rank`).

    Searched joined alone, the topic outweighs a short follow-up: "how long does it take?"
    after "how much does shipping cost?" matched the shipping-cost entry best again, at 0.99,
    and a topic that names an entry's title matched that entry at 1.00. Averaged, an entry
    must match the follow-up itself as well as the topic, and the scores stay cosines of the
    kind the confidence was fitted on. An entry one query did not retrieve gets that query's
    lowest retrieved score, as in :meth:`Scorer.components`."""
    rest = 1.0 - share
    alone = {c.entry.id: c for c in question}
    joined = {c.entry.id: c for c in topic}
    # A question's out-of-scope probability and nearest-example cosine are the same for all
    # of its candidates: an entry it did not retrieve gets them too.
    constants = [(_floor(f), f[0].out_of_scope, f[0].knn) if f else (0.0, 0.0, 0.0)
                 for f in (question, topic)]  # fmt: skip
    out = []
    for entry_id in sorted(alone.keys() | joined.keys()):
        pair = []
        for found, (floor, oos, knn) in zip((alone, joined), constants, strict=True):
            c = found.get(entry_id)
            if c is None:
                entry = (alone.get(entry_id) or joined[entry_id]).entry
                qs = floor if entry.kind == "faq" else -1.0
                c = Candidate(entry, 0.0, floor, qs, floor, out_of_scope=oos, knn=knn)
            pair.append(c)
        a, b = pair
        out.append(
            Candidate(
                a.entry,
                0.0,
                share * a.retrieval + rest * b.retrieval,
                share * a.question_score + rest * b.question_score,
                share * a.answer_score + rest * b.answer_score,
                share * a.lexical + rest * b.lexical,
                share * a.intent + rest * b.intent,
                share * a.out_of_scope + rest * b.out_of_scope,
                share * a.knn + rest * b.knn,
            )
        )
    return out


def rank(found: list[Candidate], weights: Weights, k: int = 5) -> list[Candidate]:
    """The ``k`` best of ``found`` under ``weights``, best first (scores filled in)."""
    for c in found:
        c.retrieval = weights.retrieval(c.question_score, c.answer_score)
        c.score = c.retrieval + weights.lexical * c.lexical + weights.intent * c.intent
    return sorted(found, key=lambda c: (-c.score, c.entry.id))[:k]
