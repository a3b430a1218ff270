"""A lexical model beside the transformer: TF-IDF word and character n-grams into a logistic
regression, whose probabilities take a fixed share of a single-label classifier's (``--lexical W``).

Why: a small encoder reads words through sub-word pieces and a 384-wide vector; a bag of
n-grams remembers the exact tokens that decide many short texts (cashtags, "cuts to Sell",
templated headlines). On a held-out slice of the finance tweets' train.csv a 0.3 share raised
accuracy by 0.7-1.3 points per seed; on CLINC150 val it changed nothing (docs/finance.md,
docs/support.md).

The model is stored in the classifier's directory as ``lexical.json`` (settings, labels, the
two vocabularies and the mix's temperature) and ``lexical.npz`` (idf weights and the
regression's coefficients), with no pickles, so loading a model directory never runs stored
code; ``config.json`` records the share, which marks the directory for plain transformers
(:func:`store_lexical`). Explanations mix it in as predictions do
(:mod:`tunesmith.explain.lexical`); the ONNX export covers the transformer alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import ModelNotFoundError, UserInputError
from tunesmith.io import atomic_open, atomic_write_json

LEXICAL_FILE = "lexical.json"
LEXICAL_ARRAYS = "lexical.npz"
#: Word uni- and bigrams, and character 2- to 5-grams inside word boundaries (seen twice or more).
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)
CHAR_MIN_DF = 2
#: Inverse regularisation strength of the regression; 3, 10 and 30 scored within 0.3 points of
#: each other on a held-out slice of the finance tweets' train.csv.
C = 10.0
FORMAT = 1
#: Texts, and characters, turned into n-gram features at a time when scoring (bounded memory for
#: any file: long documents fill a chunk with fewer texts).
CHUNK = 4096
CHUNK_CHARS = 1_000_000


def _word_vectorizer(vocabulary: dict[str, int] | None = None, min_df: int = 1) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=WORD_NGRAMS, sublinear_tf=True, min_df=min_df, vocabulary=vocabulary
    )


def _char_vectorizer(vocabulary: dict[str, int] | None = None, min_df: int = 1) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=CHAR_NGRAMS,
        sublinear_tf=True,
        min_df=min_df,
        vocabulary=vocabulary,
    )


def _fitted(make: Any, texts: Sequence[str], min_dfs: Sequence[int]) -> tuple[Any, Any]:
    """(vectorizer, features) fitted with the first ``min_df`` that leaves any term; (None, None)
    when none does (texts of one-character words have no word n-grams)."""
    for min_df in min_dfs:
        vectorizer = make(min_df=min_df)
        try:
            return vectorizer, vectorizer.fit_transform(texts)
        except ValueError:  # sklearn's "empty vocabulary" / "no terms remain"
            continue
    return None, None


def _stack(parts: Sequence[Any]) -> Any:
    from scipy.sparse import hstack

    return hstack(list(parts)).tocsr()


@dataclass
class LexicalModel:
    """The fitted n-gram regression: ``probabilities(texts)`` has one column per label."""

    labels: list[str]
    weight: float
    #: The fitted vectorizers; either may be ``None`` when the texts gave it no term.
    word: Any
    char: Any
    #: ``[rows, features]``: one row per class the regression saw (one row for two classes).
    coef: np.ndarray
    intercept: np.ndarray
    #: Label index of each class the regression saw, in its order.
    classes: list[int]
    #: The mixed probabilities' own temperature (on their logarithms), fitted on held-out data:
    #: the transformer's temperature calibrates it alone, and a linear pool of two calibrated
    #: models is not calibrated (ECE 0.006 alone, 0.05-0.06 mixed, on the default model). It
    #: keeps each row's order of labels, so it never changes a prediction.
    temperature: float = 1.0

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        label_names: Sequence[str],
        weight: float,
        *,
        class_weights: Sequence[float] | None = None,
    ) -> LexicalModel:
        """Fit on single-label ``texts``/``labels`` (names from ``label_names``);
        ``class_weights`` (one per label name, as ``--class-weights auto`` gives the
        transformer's loss) weight each text's loss by its label. Raises
        :class:`UserInputError` when the texts hold no term at all (nothing to fit)."""
        from sklearn.linear_model import LogisticRegression

        index = {name: i for i, name in enumerate(label_names)}
        y = np.asarray([index[label] for label in labels])
        texts = list(texts)
        word, word_x = _fitted(_word_vectorizer, texts, (1,))
        # Character n-grams seen once are mostly noise; a tiny data set may have no other.
        char, char_x = _fitted(_char_vectorizer, texts, (CHAR_MIN_DF, 1))
        if word is None and char is None:
            raise UserInputError("the training texts hold no word or character n-gram to fit")
        if len(set(y.tolist())) < 2:
            raise UserInputError(
                "the lexical model needs at least two labels in the training texts"
            )
        features = _stack([x for x in (word_x, char_x) if x is not None])
        balance = None if class_weights is None else dict(enumerate(map(float, class_weights)))
        regression = LogisticRegression(C=C, max_iter=2000, class_weight=balance)
        regression.fit(features, y)
        return cls(
            labels=list(label_names),
            weight=float(weight),
            word=word,
            char=char,
            coef=regression.coef_.astype(np.float32),
            intercept=regression.intercept_.astype(np.float32),
            classes=[int(c) for c in regression.classes_],
        )

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), len(labels)]`` probabilities; labels never seen in training get 0."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float64)
        # In chunks: the n-gram features of a whole --data file at once grew memory by 640 MB
        # for 95,000 tweets, and a million characters of text take about 220 MB.
        return self.probabilities_of_scores(
            np.concatenate([self._scores(chunk) for chunk in _chunks(texts)])
        )

    def probabilities_of_scores(self, scores: np.ndarray) -> np.ndarray:
        """The probabilities of the regression's ``scores`` (:meth:`scores_of_features`)."""
        from scipy.special import expit, softmax

        out = np.zeros((len(scores), len(self.labels)), dtype=np.float64)
        if len(self.classes) == 2:  # a binary regression keeps one row, for the second class
            second = expit(scores[:, 0])
            out[:, self.classes[0]] = 1.0 - second
            out[:, self.classes[1]] = second
            return out
        out[:, self.classes] = softmax(scores, axis=1)
        return out

    def deletion_probabilities(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> list[np.ndarray]:
        """Per text, the probabilities of it with each of its ``spans`` (character ``(start,
        end)``) replaced by one space, as :meth:`probabilities` of those texts, from each
        text's n-grams counted once (:mod:`tunesmith.engine.lexical_deletions`)."""
        from tunesmith.engine.lexical_deletions import deletion_probabilities

        return deletion_probabilities(self, texts, spans)

    def _probabilities(self, texts: Sequence[str], known: np.ndarray | None) -> np.ndarray:
        return self.probabilities(texts) if known is None else known

    @property
    def vectorizers(self) -> list[Any]:
        """The fitted vectorizers whose features the regression reads, in their column order."""
        return [v for v in (self.word, self.char) if v is not None]

    def _scores(self, texts: list[str]) -> np.ndarray:
        """The regression's scores of ``texts``."""
        return self.scores_of_features(_stack([v.transform(texts) for v in self.vectorizers]))

    def scores_of_features(self, features: Any) -> np.ndarray:
        """The regression's scores of TF-IDF ``features`` (sparse, one row per text, the
        :attr:`vectorizers`' columns side by side)."""
        # Only the columns of the n-grams these texts hold: a product with the whole coefficient
        # matrix copied it first (151 x 120,000 for CLINC150's intents: 69 ms for one question,
        # against 0.14 ms this way).
        used = np.unique(features.indices)
        weights = self.coef[:, used].astype(np.float64).T
        return np.asarray(features[:, used] @ weights) + self.intercept

    def mix(
        self,
        probs: np.ndarray,
        texts: Sequence[str],
        *,
        calibrated: bool = True,
        lexical_probs: np.ndarray | None = None,
    ) -> np.ndarray:
        """``probs`` (the transformer's, one row per text) with this model's share mixed in, and
        then the mix's own :attr:`temperature` (unless ``calibrated`` is false).
        ``lexical_probs``: this model's :meth:`probabilities` of ``texts``, when already known."""
        mixed = mix(probs, self._probabilities(texts, lexical_probs), self.weight)
        return with_temperature(mixed, self.temperature) if calibrated else mixed

    def fit_temperature(
        self,
        probs: np.ndarray,
        texts: Sequence[str],
        y: Any,
        *,
        lexical_probs: np.ndarray | None = None,
    ) -> float:
        """Fit :attr:`temperature` on held-out ``texts`` with truth ``y`` (label indices), given
        the transformer's calibrated ``probs`` for them; returns it."""
        from tunesmith.engine.calibration import fit_temperature

        mixed = self.mix(probs, texts, calibrated=False, lexical_probs=lexical_probs)
        self.temperature = fit_temperature(np.log(np.clip(mixed, _FLOOR, None)), np.asarray(y))
        return self.temperature

    def save(self, directory: str | Path) -> None:
        """Write ``lexical.json`` and ``lexical.npz`` into ``directory`` (each atomically)."""
        directory = Path(directory)
        with atomic_open(directory / LEXICAL_ARRAYS, binary=True) as handle:
            np.savez(
                handle,
                word_idf=_idf(self.word),
                char_idf=_idf(self.char),
                coef=self.coef,
                intercept=self.intercept,
            )
        atomic_write_json(
            directory / LEXICAL_FILE,
            {
                "format": FORMAT,
                "what": "TF-IDF word and character n-grams into a logistic regression",
                "weight": self.weight,
                "labels": self.labels,
                "classes": self.classes,
                "word_ngrams": list(WORD_NGRAMS),
                "char_ngrams": list(CHAR_NGRAMS),
                "C": C,
                "temperature": self.temperature,
                "word_vocabulary": _in_order(self.word),
                "char_vocabulary": _in_order(self.char),
            },
        )

    @classmethod
    def load(cls, directory: str | Path) -> LexicalModel | None:
        """The lexical model stored in ``directory``, or ``None`` when it has none."""
        directory = Path(directory)
        path = directory / LEXICAL_FILE
        if not path.is_file():
            if (directory / LEXICAL_ARRAYS).is_file():  # half a model: not silently none
                raise ModelNotFoundError(
                    f"{directory / LEXICAL_ARRAYS}: the lexical part of this model has no "
                    f"{LEXICAL_FILE} beside it; train the model again"
                )
            return None
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
            with np.load(directory / LEXICAL_ARRAYS) as arrays:
                word_idf, char_idf = arrays["word_idf"], arrays["char_idf"]
                coef, intercept = arrays["coef"], arrays["intercept"]
            word = _restored(_word_vectorizer, spec["word_vocabulary"], word_idf)
            char = _restored(_char_vectorizer, spec["char_vocabulary"], char_idf)
            model = cls(
                labels=[str(label) for label in spec["labels"]],
                weight=float(spec["weight"]),
                word=word,
                char=char,
                coef=np.asarray(coef, dtype=np.float32),
                intercept=np.asarray(intercept, dtype=np.float32),
                classes=[int(c) for c in spec["classes"]],
                # Files written before the mix had its own temperature: none.
                temperature=float(spec.get("temperature", 1.0)),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelNotFoundError(
                f"{path}: the lexical part of this model cannot be read ({error}); "
                "train the model again"
            ) from None
        problem = _inconsistency(model, len(word_idf) + len(char_idf))
        if problem:
            raise ModelNotFoundError(f"{path}: {problem}; train the model again")
        return model


def _inconsistency(model: LexicalModel, n_features: int) -> str | None:
    """What does not fit together in a loaded lexical model (``None``: all of it does), so that
    a damaged file fails at load time and not as an index error in the first prediction."""
    coef, intercept, classes = model.coef, model.intercept, model.classes
    if coef.ndim != 2 or coef.shape[1] != n_features:
        return "its coefficients do not match its vocabularies"
    rows = 1 if len(classes) == 2 else len(classes)
    if coef.shape[0] != rows or intercept.shape != (rows,) or len(classes) < 2:
        return "its coefficients do not match its classes"
    if len(set(classes)) != len(classes) or not all(0 <= c < len(model.labels) for c in classes):
        return "its classes are not label indices"
    if not 0 <= model.weight < 1:
        return f"its share {model.weight:g} is not from 0 below 1"
    if not (model.temperature > 0 and np.isfinite(model.temperature)):
        return f"its temperature {model.temperature:g} is not a positive number"
    return None


def _chunks(texts: list[str]) -> list[list[str]]:
    """``texts`` in order, in chunks of at most :data:`CHUNK` texts and :data:`CHUNK_CHARS`
    characters (a longer text is a chunk of its own)."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for text in texts:
        if current and (len(current) >= CHUNK or size + len(text) > CHUNK_CHARS):
            chunks.append(current)
            current, size = [], 0
        current.append(text)
        size += len(text)
    if current:
        chunks.append(current)
    return chunks


def _in_order(vectorizer: Any) -> list[str]:
    """The vectorizer's terms by column (empty for none)."""
    if vectorizer is None:
        return []
    terms = [""] * len(vectorizer.vocabulary_)
    for term, i in vectorizer.vocabulary_.items():
        terms[i] = term
    return terms


def _idf(vectorizer: Any) -> np.ndarray:
    if vectorizer is None:
        return np.zeros(0, dtype=np.float32)
    return vectorizer.idf_.astype(np.float32)


def _restored(make: Any, terms: list[str], idf: np.ndarray) -> Any:
    """A fitted vectorizer from its stored terms and idf weights (``None`` for no terms): a
    fixed vocabulary needs no fit, and the idf weights are what fitting would learn."""
    if not terms:
        return None
    vectorizer = make(vocabulary={term: i for i, term in enumerate(terms)})
    vectorizer.idf_ = np.asarray(idf, dtype=np.float64)
    return vectorizer


#: Smallest probability whose logarithm the mix's temperature reads (a label the regression never
#: saw gets 0 from it, and the transformer may round to 0 too).
_FLOOR = 1e-12


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / temperature)``: rows keep their order of labels."""
    from scipy.special import softmax

    if temperature == 1.0:
        return probs
    return softmax(np.log(np.clip(probs, _FLOOR, None)) / temperature, axis=1)


def mix(probs: np.ndarray, lexical: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * probs + weight * lexical``: a linear pool, so rows still sum to 1."""
    return (1.0 - weight) * np.asarray(probs, dtype=np.float64) + weight * lexical


def store_lexical(directory: str | Path, lexical: LexicalModel | None) -> None:
    """Give the model directory ``directory`` the lexical part ``lexical`` (none: remove it),
    and record its share in ``config.json`` so that the directory is marked: plain
    ``transformers`` then refuses it instead of predicting without the share, as it refuses
    mean pooling and nearest-example scores (:func:`~tunesmith.engine.modeling.mark_directory`)."""
    from tunesmith.engine.modeling import mark_directory
    from tunesmith.model_dir import CONFIG_FILE, LEXICAL_KEY

    directory = Path(directory)
    if lexical is not None:
        lexical.save(directory)
    else:
        for name in (LEXICAL_FILE, LEXICAL_ARRAYS):
            (directory / name).unlink(missing_ok=True)
    if (directory / CONFIG_FILE).is_file():  # else not a classifier directory: nothing to mark
        mark_directory(directory, {LEXICAL_KEY: lexical.weight if lexical is not None else None})


def mix_into(loaded: Any, probs: Any, texts: Sequence[str], *, calibrated: bool = True) -> Any:
    """``probs`` of a loaded model (``LoadedModel``) with its lexical share mixed in, when it has
    a lexical part; else ``probs`` unchanged. ``calibrated=False`` (``predict --no-calibrate``)
    leaves out the mix's own fitted temperature, as the transformer's is left out."""
    lexical = getattr(loaded, "extra", {}).get("lexical")
    if lexical is None:
        return probs
    return lexical.mix(probs, texts, calibrated=calibrated)
