"""Offline data augmentation for the training split: extra examples made without any network.

Two built-ins: ``token_edits`` (EDA-style swaps, deletions and insertions of the text's own
words) and ``embedding_neighbours`` (a few words replaced by their nearest neighbours in the base
model's input-embedding matrix). Augmenters return only the NEW examples; ``augment_dataset``
picks them by name through the ``tunesmith_augmenters`` hook and caches the result.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunesmith.data.cleaning import normalise
from tunesmith.data.records import TextDataset
from tunesmith.errors import DataError, UserInputError
from tunesmith.hf_quiet import quiet_transformers
from tunesmith.io import atomic_write_text
from tunesmith.models import base_model_errors, resolve_model
from tunesmith.plugins import collect_by_name

CACHE_VERSION = 1

#: Words never replaced by a neighbour: changing them rarely keeps the meaning.
_STOP_WORDS_TEXT = """a an the and or but if then else of to in on at by for with from as into onto about over
    under i me my mine you your yours he him his she her hers it its we us our ours they them
    their theirs this that these those is am are was were be been being have has had do does did
    not no nor can could will would shall should may might must there here what which who whom
    whose when where why how all any both each few more most other some such only own same so
    than too very just also up down out off again once"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def _edits_for(n_words: int, alpha: float) -> int:
    return max(1, round(alpha * n_words))


class TokenEdits:
    """EDA-style edits: swap two words, delete a word, or insert a copy of one of the text's own
    words elsewhere. One new text per input text of at least three words."""

    name = "token_edits"

    def __init__(self, alpha: float = 0.1, min_words: int = 3) -> None:
        self.alpha = alpha
        self.min_words = min_words

    def _edit(self, words: list[str], rng: random.Random) -> list[str]:
        words = list(words)
        for _ in range(_edits_for(len(words), self.alpha)):
            op = rng.choice(("swap", "delete", "insert"))
            if op == "swap" and len(words) >= 2:
                i, j = rng.sample(range(len(words)), 2)
                words[i], words[j] = words[j], words[i]
            elif op == "delete" and len(words) > self.min_words - 1:
                del words[rng.randrange(len(words))]
            else:
                words.insert(rng.randrange(len(words) + 1), rng.choice(words))
        return words

    def augment(
        self, texts: Sequence[str], labels: Sequence[Any], rng: random.Random
    ) -> tuple[list[str], list[Any]]:
        """One edited copy of each text long enough to edit, with its labels."""
        new_texts: list[str] = []
        new_labels: list[Any] = []
        for text, label in zip(texts, labels, strict=True):
            words = text.split()
            if len(words) < self.min_words:
                continue
            edited = " ".join(self._edit(words, rng))
            if edited != " ".join(words):
                new_texts.append(edited)
                new_labels.append(label)
        return new_texts, new_labels


class EmbeddingNeighbours:
    """Replace a few words with near neighbours in the base model's input-embedding matrix.

    Only whole-word, alphabetic vocabulary entries take part (no ``##`` pieces, no specials, no
    stop-words). The model is loaded on the first ``augment`` call, not at construction, and
    each word's neighbours are computed once.
    """

    name = "embedding_neighbours"

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        fraction: float = 0.15,
        top_k: int = 3,
        min_similarity: float = 0.4,
    ) -> None:
        self.model = str(model) if model is not None else "default"
        self.fraction = fraction
        self.top_k = top_k
        self.min_similarity = min_similarity
        self._words: list[str] | None = None
        self._index: dict[str, int] = {}
        self._matrix: Any = None
        self._lowercase = True
        self._cache: dict[str, list[str]] = {}

    def for_model(self, model: str | Path) -> EmbeddingNeighbours:
        """The same augmenter over another base model's embeddings (one per process)."""
        return shared_neighbours(
            model, fraction=self.fraction, top_k=self.top_k, min_similarity=self.min_similarity
        )

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        location = resolve_model(self.model).location
        # Never a model folder's own code (its config's auto_map): refused, not asked.
        with quiet_transformers(), base_model_errors(location):
            tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False)
            model = AutoModel.from_pretrained(location, trust_remote_code=False)
        embeddings = model.get_input_embeddings().weight.detach().float()
        vocab = tokenizer.get_vocab()
        # WordPiece marks continuations (##); SentencePiece and byte-level BPE mark word starts.
        marker = next(
            (m for m in ("\u2581", "\u0120") if sum(t.startswith(m) for t in vocab) > 100), ""
        )
        specials = set(tokenizer.all_special_tokens)
        words: list[str] = []
        ids: list[int] = []
        for token, token_id in vocab.items():
            if token in specials or token.startswith("##") or token_id >= embeddings.shape[0]:
                continue
            if marker:
                if not token.startswith(marker):
                    continue
                token = token[len(marker) :]
            # Two-letter entries are mostly abbreviations ("pl" for "please"): not good swaps.
            if len(token) < 3 or not token.isalpha() or token.lower() in STOP_WORDS:
                continue
            words.append(token)
            ids.append(token_id)
        if not words:
            raise UserInputError(f"model {self.model!r} has no whole-word vocabulary to use")
        lower = getattr(tokenizer, "do_lower_case", None)
        if lower is None:
            lower = not any(word[0].isupper() for word in words)
        self._lowercase = bool(lower)
        self._words = words
        self._index = {}
        for i, word in enumerate(words):
            self._index.setdefault(word.lower() if self._lowercase else word, i)
        self._matrix = torch.nn.functional.normalize(embeddings[ids], dim=1)

    def neighbours(self, word: str) -> list[str]:
        """Up to ``top_k`` nearest whole words to ``word`` by cosine similarity (cached)."""
        key = word.lower() if self._lowercase else word
        if key in self._cache:
            return self._cache[key]
        if self._words is None:
            self._load()
        assert self._words is not None
        i = self._index.get(key)
        if i is None:
            self._cache[key] = []
            return []
        import torch

        sims = self._matrix @ self._matrix[i]
        k = min(self.top_k + 8, len(self._words))
        values, order = torch.topk(sims, k)
        found: list[str] = []
        for value, j in zip(values.tolist(), order.tolist(), strict=True):
            candidate = self._words[j]
            if j == i or candidate.lower() == key.lower() or value < self.min_similarity:
                continue
            found.append(candidate)
            if len(found) == self.top_k:
                break
        self._cache[key] = found
        return found

    def augment(
        self, texts: Sequence[str], labels: Sequence[Any], rng: random.Random
    ) -> tuple[list[str], list[Any]]:
        """One new text per input text that has a replaceable word."""
        new_texts: list[str] = []
        new_labels: list[Any] = []
        for text, label in zip(texts, labels, strict=True):
            words = text.split()
            # Only the alphabetic core of a word is replaced; punctuation around it stays.
            spots = []
            for pos, word in enumerate(words):
                match = re.fullmatch(r"(\W*)([^\W\d_]+)(\W*)", word)
                if match and len(match.group(2)) > 1 and match.group(2).lower() not in STOP_WORDS:
                    spots.append((pos, match))
            rng.shuffle(spots)
            budget = max(1, round(self.fraction * len(words)))
            changed = 0
            for pos, match in spots:
                if changed >= budget:
                    break
                options = self.neighbours(match.group(2))
                if not options:
                    continue
                choice = rng.choice(options)
                if match.group(2)[0].isupper():
                    choice = choice[0].upper() + choice[1:]
                words[pos] = match.group(1) + choice + match.group(3)
                changed += 1
            if changed:
                new_texts.append(" ".join(words))
                new_labels.append(label)
        return new_texts, new_labels


_SHARED: dict[tuple[Any, ...], EmbeddingNeighbours] = {}


def shared_neighbours(model: str | Path | None = None, **settings: Any) -> EmbeddingNeighbours:
    """One ``EmbeddingNeighbours`` per model and settings in this process, so the embedding
    matrix is loaded and each word's neighbours computed once, however often the hook is called."""
    key = (str(model) if model is not None else "default", *sorted(settings.items()))
    if key not in _SHARED:
        _SHARED[key] = EmbeddingNeighbours(model, **settings)
    return _SHARED[key]


def builtin_augmenters() -> list[Any]:
    """The built-in augmenters (cheap: no model is loaded until the first ``augment``)."""
    return [TokenEdits(), shared_neighbours()]


def available_augmenters() -> dict[str, Any]:
    """Augmenters from every plugin by name; a later-registered plugin wins for a name."""
    return collect_by_name("tunesmith_augmenters")


def _cache_key(
    dataset: TextDataset, names: Sequence[str], seed: int, copies: int, model: Any
) -> str:
    digest = hashlib.sha256()
    header = {"v": CACHE_VERSION, "names": list(names), "seed": seed, "copies": copies}
    header["model"] = str(model) if model is not None else None
    digest.update(json.dumps(header, sort_keys=True).encode())
    for text, labels in zip(dataset.texts, dataset.labels, strict=True):
        digest.update(json.dumps([text, labels], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _generate(
    dataset: TextDataset, augmenters: Sequence[Any], seed: int, copies: int
) -> tuple[list[str], list[list[str]]]:
    seen = {normalise(text) for text in dataset.texts}
    new_texts: list[str] = []
    new_labels: list[list[str]] = []
    for augmenter in augmenters:
        for copy in range(copies):
            # A string seed is hashed with SHA-512 by random.seed: stable across runs and hosts.
            rng = random.Random(f"{seed}:{augmenter.name}:{copy}")
            texts, labels = augmenter.augment(list(dataset.texts), list(dataset.labels), rng)
            if len(texts) != len(labels):
                raise UserInputError(
                    f"augmenter {augmenter.name!r} returned {len(texts)} texts but "
                    f"{len(labels)} labels"
                )
            for text, label in zip(texts, labels, strict=True):
                norm = normalise(str(text))
                if not norm or norm in seen:
                    continue
                seen.add(norm)
                new_texts.append(norm)
                new_labels.append([label] if isinstance(label, str) else list(label))
    return new_texts, new_labels


def check_augmenter_names(names: Sequence[str]) -> dict[str, Any]:
    """The augmenters by name; raises :class:`UserInputError` for a name no plugin registered
    (training calls it before reading the data, so the mistake costs a second)."""
    known = available_augmenters()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UserInputError(
            f"unknown augmenter {unknown[0]!r}; known augmenters: {', '.join(sorted(known))}"
        )
    return known


def augment_dataset(
    dataset: TextDataset,
    names: Sequence[str],
    *,
    seed: int,
    cache_dir: str | Path | None = None,
    copies: int = 1,
    model: str | Path | None = None,
) -> TextDataset:
    """The (training) data set plus examples from the named augmenters, ``copies`` rounds each.

    New examples have row 0, repeat no existing text, and are cached as JSON lines in
    ``cache_dir`` keyed by the data, names, seed, copies and model, so a second run with the same
    inputs reads them back instead of recomputing. ``model`` is the base model whose embeddings
    ``embedding_neighbours`` uses (the default model when None).
    """
    names = list(dict.fromkeys(names))
    if not names or copies < 1:
        return dataset
    known = check_augmenter_names(names)
    cache_file = None
    if cache_dir is not None:
        key = _cache_key(dataset, names, seed, copies, model)
        cache_file = Path(cache_dir) / f"augment-{key[:20]}.jsonl"
        if cache_file.exists():
            return dataset.extended(*_read_cache(cache_file))
    augmenters = []
    for name in names:
        augmenter = known[name]
        if model is not None and hasattr(augmenter, "for_model"):
            augmenter = augmenter.for_model(model)
        augmenters.append(augmenter)
    texts, labels = _generate(dataset, augmenters, seed, copies)
    if cache_file is not None:
        lines = [
            json.dumps({"text": text, "labels": labs}, ensure_ascii=False) + "\n"
            for text, labs in zip(texts, labels, strict=True)
        ]
        atomic_write_text(cache_file, "".join(lines))
    return dataset.extended(texts, labels)


def _read_cache(path: Path) -> tuple[list[str], list[list[str]]]:
    texts: list[str] = []
    labels: list[list[str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            texts.append(record["text"])
            labels.append(list(record["labels"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DataError(
                "damaged augmentation cache; delete it to rebuild", path=path, row=number
            ) from None
    return texts, labels
