"""Text encoder: one vector per text, pooled and normalised the way the model was trained.

:meth:`Encoder.load` reads three layouts:

* a sentence-transformers directory (``modules.json``): the Transformer module's weights, the
  pooling of ``1_Pooling/config.json`` (old boolean keys or the newer ``pooling_mode``) and
  L2 normalisation only when a ``Normalize`` module is listed. ``default`` (all-MiniLM-L6-v2)
  is one: mean pooling, then L2 normalisation. What :func:`tunesmith.retrieval.pairs.
  train_pair_encoder` writes is another;
* a classifier directory from ``tunesmith train``: its encoder (the base model under the head),
  pooled as the classifier pools (``tunesmith_pooling`` in ``config.json``: ``mean`` or the
  ``[CLS]`` token), then L2-normalised so that inner products are cosines;
* any other Hugging Face encoder directory: mean pooling, L2-normalised, for the same reason.

Texts are tokenised once, sorted by token length, and run in batches padded only to their own
longest text, under ``torch.inference_mode``, several batches at once on a multi-core CPU
(:mod:`tunesmith.streams`); vectors come back in input order. Batches are
also capped by a token budget (``batch_size`` x 128 tokens) so that a batch of long texts does
not hold a much larger attention product than a batch of short ones. ``quantize="int8"`` runs the
linear layers in int8 with the activation ranges recorded in the directory's
``int8_ranges.json`` (per-batch ranges where there are none), as ``tunesmith predict`` does.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.devices import as_float32, model_device, resolve_device
from tunesmith.engine.int8_ranges import RANGE_BATCH, RANGE_TEXTS, measure_activation_ranges
from tunesmith.engine.loading import load_model
from tunesmith.engine.max_length import MAX_INPUT_TOKENS, model_max_length
from tunesmith.engine.modeling import cap_tokenizer_length, pooling_of, sentence_pooling_mode
from tunesmith.engine.quantize import quantize_int8, read_int8_ranges
from tunesmith.engine.threads import configure_threads
from tunesmith.errors import DataError, ModelNotFoundError, UserInputError
from tunesmith.hf_quiet import quiet_transformers
from tunesmith.io import read_json_object
from tunesmith.model_dir import ADAPTER_CONFIG_FILE, CONFIG_FILE, TASK_KEY
from tunesmith.models import allow_network as set_network
from tunesmith.models import resolve_model
from tunesmith.streams import run_streams, stream_count

#: Pooling modes understood, in sentence-transformers' names.
POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len_tokens", "lasttoken")
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
#: Tokens per batch at most, per text of ``batch_size``: a cap that only bites on long texts.
TOKENS_PER_TEXT = 128
#: Below this many texts no progress bar is drawn, even on a terminal.
PROGRESS_MIN_TEXTS = 1000


@dataclass(frozen=True)
class Layout:
    """How token states become one vector: the pooling modes (concatenated) and normalisation."""

    pooling: tuple[str, ...] = ("mean",)
    normalize: bool = True
    max_length: int | None = None
    lowercase: bool = False
    transformer_dir: str = ""


def _pooling_from_config(config: dict[str, Any], path: Path) -> tuple[str, ...]:
    mode = config.get("pooling_mode")
    if mode is None:
        modes = tuple(m for key, m in _LEGACY_POOLING_KEYS.items() if config.get(key))
        modes = modes or ("mean",)
    else:
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    unknown = [m for m in modes if m not in POOLING_MODES]
    if unknown:
        raise ModelNotFoundError(
            f"{path}: pooling {unknown[0]!r} is not supported (supported: {', '.join(POOLING_MODES)})"
        )
    return modes


def read_sentence_transformers_layout(directory: Path) -> Layout:
    """The layout a sentence-transformers directory declares in ``modules.json``."""
    modules = read_json_object_or_list(directory / "modules.json")
    transformer_dir = ""
    pooling: tuple[str, ...] = ("mean",)
    normalize = False
    for entry in modules:
        kind = str(entry.get("type", "")).rsplit(".", 1)[-1]
        sub = str(entry.get("path", "") or "")
        if kind == "Transformer":
            transformer_dir = sub
        elif kind == "Pooling":
            config = read_json_object(directory / sub / CONFIG_FILE) or {}
            pooling = _pooling_from_config(config, directory / sub / CONFIG_FILE)
        elif kind == "Normalize":
            normalize = True
        else:
            raise ModelNotFoundError(
                f"{directory}: sentence-transformers module {kind!r} is not supported "
                "(supported: Transformer, Pooling, Normalize)"
            )
    settings = read_json_object(directory / transformer_dir / "sentence_bert_config.json") or {}
    max_length = settings.get("max_seq_length")
    return Layout(
        pooling=pooling,
        normalize=normalize,
        max_length=int(max_length) if isinstance(max_length, int) and max_length > 0 else None,
        lowercase=bool(settings.get("do_lower_case", False)),
        transformer_dir=transformer_dir,
    )


def read_json_object_or_list(path: Path) -> list[dict[str, Any]]:
    """``modules.json``: a JSON list of objects; a DataError naming the file otherwise."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"not readable JSON ({exc})", path=path) from None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise DataError("expected a JSON list of module objects", path=path)
    return data


def is_classifier_dir(directory: Path) -> bool:
    """True for a ``tunesmith train`` (or plain HF) classifier/tagger directory."""
    if (directory / ADAPTER_CONFIG_FILE).exists():
        return True
    config = read_json_object(directory / CONFIG_FILE) or {}
    if config.get(TASK_KEY):
        return True
    heads = ("ForSequenceClassification", "ForTokenClassification")
    return any(str(a).endswith(heads) for a in config.get("architectures") or [])


def pool(hidden: Any, attention_mask: Any, modes: Sequence[str]) -> Any:
    """Token states ``[batch, seq, dim]`` to one vector per text, as sentence-transformers pools
    (right padding; several modes are concatenated in the order given)."""
    import torch

    vectors = []
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    counts = None
    for mode in modes:
        if mode == "cls":
            vectors.append(hidden[:, 0])
        elif mode == "max":
            vectors.append(hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            summed = (hidden * mask).sum(dim=1)
            if counts is None:
                counts = torch.clamp(mask.sum(dim=1), min=1e-9)
            vectors.append(summed / (counts if mode == "mean" else torch.sqrt(counts)))
        elif mode == "lasttoken":
            last = (attention_mask.sum(dim=1) - 1).clamp(min=0)
            vectors.append(hidden[torch.arange(hidden.shape[0]), last])
        else:  # pragma: no cover - rejected when the layout is read
            raise ValueError(f"unknown pooling mode {mode!r}")
    return vectors[0] if len(vectors) == 1 else torch.cat(vectors, dim=-1)


def _default_max_length(tokenizer: Any, config: Any) -> int:
    return min(model_max_length(tokenizer, config), MAX_INPUT_TOKENS)


def token_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches, longest texts first, each at most ``batch_size`` texts and
    ``batch_size * TOKENS_PER_TEXT`` padded tokens (one text always fits)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    budget = max(1, batch_size) * TOKENS_PER_TEXT
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        # Sorted longest first, so the batch's width is the length of its first text.
        width = width or lengths[i]
        if current and (len(current) >= batch_size or (len(current) + 1) * width > budget):
            batches.append(current)
            current, width = [], lengths[i]
        current.append(i)
    if current:
        batches.append(current)
    return batches


class Encoder:
    """Embeds texts with one model; ``encode`` returns float32 ``[n, dim]`` in input order."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        layout: Layout,
        max_length: int,
        quantized: bool = False,
        path: Path | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.layout = layout
        self.max_length = max_length
        self.quantized = quantized
        self.path = path
        hidden = int(model.config.hidden_size)
        self.dim = hidden * len(layout.pooling)

    def __repr__(self) -> str:
        pooling = "+".join(self.layout.pooling)
        norm = ", normalised" if self.layout.normalize else ""
        q = ", int8" if self.quantized else ""
        return f"Encoder({self.name!r}, dim={self.dim}, {pooling} pooling{norm}{q})"

    @property
    def pooling(self) -> tuple[str, ...]:
        """The pooling modes, concatenated in this order."""
        return self.layout.pooling

    @property
    def normalize(self) -> bool:
        """True when vectors are L2-normalised (inner product = cosine)."""
        return self.layout.normalize

    @classmethod
    def load(
        cls,
        model: str | Path = "default",
        *,
        quantize: str | None = None,
        max_length: int | None = None,
        allow_network: bool = False,
        device: str = "cpu",
    ) -> Encoder:
        """Load ``model``: ``"default"``, a sentence-transformers/HF encoder directory, a
        ``tunesmith train`` classifier directory, or (with ``allow_network``) a hub id.

        ``quantize="int8"`` quantises the linear layers; ``max_length`` caps tokens per text
        (default: the model's own limit, 256 for all-MiniLM-L6-v2). ``device``: ``cpu``,
        ``auto``, ``cuda``, ``cuda:N`` or ``mps`` (:func:`tunesmith.devices.resolve_device`;
        int8 runs on the CPU only); vectors come back as numpy arrays either way.
        """
        if quantize not in (None, "int8"):
            raise UserInputError(f"unknown quantisation {quantize!r}; the choice is 'int8'")
        if max_length is not None and max_length < 2:
            raise UserInputError(f"max_length must be at least 2, got {max_length}")

        if allow_network:
            set_network(True)
        resolved = resolve_model(str(model))

        configure_threads()  # before torch is imported: see engine/threads.py
        device = resolve_device(device, quantize=quantize)
        if not resolved.is_local:
            encoder = cls._load_plain(resolved.location, resolved.display_name, quantize)
        else:
            directory = Path(resolved.location)
            name = resolved.display_name if resolved.requested == "default" else str(directory)
            if (directory / "modules.json").exists():
                encoder = cls._load_sentence_transformers(directory, name, quantize)
            elif is_classifier_dir(directory):
                encoder = cls._load_classifier(directory, name, quantize, device)
            else:
                encoder = cls._load_plain(str(directory), name, quantize)
        if max_length is not None:
            # Never above the model's limit (as training caps it): longer inputs overflow its
            # position embeddings.
            limit = model_max_length(encoder.tokenizer, encoder.model.config)
            encoder.max_length = min(max_length, limit)
        encoder.model.to(device)
        return encoder

    @classmethod
    def _load_sentence_transformers(
        cls, directory: Path, name: str, quantize: str | None
    ) -> Encoder:
        layout = read_sentence_transformers_layout(directory)
        weights = directory / layout.transformer_dir
        model, tokenizer = _auto_model(weights)
        limit = _default_max_length(tokenizer, model.config)
        if layout.max_length is not None:
            # max_seq_length may exceed what the positions can place (a folder's own mistake).
            limit = min(layout.max_length, model_max_length(tokenizer, model.config))
        model, quantized = _maybe_quantize(model, weights, quantize)
        return cls(
            model,
            tokenizer,
            name=name,
            layout=layout,
            max_length=limit,
            quantized=quantized,
            path=directory,
        )

    @classmethod
    def _load_plain(cls, location: str, name: str, quantize: str | None) -> Encoder:
        model, tokenizer = _auto_model(location)
        mode = sentence_pooling_mode(location) or "mean"
        layout = Layout(pooling=(mode,), normalize=True)
        limit = _default_max_length(tokenizer, model.config)
        local = Path(location) if Path(location).is_dir() else None
        model, quantized = _maybe_quantize(model, local, quantize)
        return cls(
            model,
            tokenizer,
            name=name,
            layout=layout,
            max_length=limit,
            quantized=quantized,
            path=local,
        )

    @classmethod
    def _load_classifier(
        cls, directory: Path, name: str, quantize: str | None, device: str = "cpu"
    ) -> Encoder:
        loaded = load_model(directory, quantize=quantize, device=device)
        return cls.from_classifier(loaded, name, directory)

    @classmethod
    def from_classifier(
        cls, loaded: Any, name: str | None = None, path: str | Path | None = None
    ) -> Encoder:
        """The encoder under an already loaded classifier (``tunesmith.engine.loading.
        LoadedModel``), sharing its weights: its pooling, normalised. What
        ``Encoder.load(classifier_dir)`` returns, without loading the weights a second time.

        Named, when neither ``name`` nor ``path`` is given, by the classifier's directory, as
        ``Encoder.load`` names it: the name an index records, so that ``VectorIndex.load``
        refuses an index built with another classifier."""
        if name is None and path is None and getattr(loaded, "path", None) is not None:
            # "None" for every classifier let an index built with one load with any other.
            path = Path(loaded.path).resolve()
            name = str(path)
        classifier = loaded.model
        # The head is dropped: the encoder under it is what the classifier's pooling reads.
        encoder = getattr(classifier, classifier.base_model_prefix, None)
        if encoder is None:
            raise ModelNotFoundError(f"{path or name}: no encoder found under the classifier head")
        pooling = "mean" if loaded.task == "ner" else pooling_of(classifier)
        layout = Layout(pooling=(pooling if pooling in POOLING_MODES else "cls",), normalize=True)
        return cls(
            encoder,
            loaded.tokenizer,
            name=name or str(path),
            layout=layout,
            max_length=loaded.max_length,
            quantized=loaded.quantized,
            path=Path(path) if path is not None else None,
        )

    def encode(
        self,
        texts: Sequence[str] | str,
        *,
        batch_size: int = 64,
        progress: bool | None = None,
        streams: int | None = None,
    ) -> np.ndarray:
        """Vectors for ``texts``, float32 ``[len(texts), dim]`` in input order.

        ``progress=None`` draws a bar on a terminal for long work (1,000 texts or more);
        ``True``/``False`` force it on or off. A single string is encoded as a list of one.
        ``streams``: batches run at once, one torch thread each (default
        :func:`tunesmith.streams.stream_count`; 1 runs them one by one on all threads).
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise UserInputError(f"text {i} is {type(text).__name__}, not a string")
        ids = self.token_ids(texts)
        return self._run(
            ids, max(1, int(batch_size)), _show_progress(progress, len(texts)), streams
        )

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids the model reads for each text, as :meth:`encode` feeds them: lower-cased
        first when the model's ``sentence_bert_config.json`` says ``do_lower_case``, truncated to
        :attr:`max_length`, unpadded. Pair fine-tuning tokenises through it too, so that a model
        trains on the same ids it is later used with."""
        texts = [t.lower() for t in texts] if self.layout.lowercase else list(texts)
        try:
            return self.tokenizer(
                texts,
                truncation=True,
                max_length=self.max_length,
                padding=False,
                return_attention_mask=False,
                return_token_type_ids=False,
            )["input_ids"]
        except TypeError:
            # The fast tokenizer refuses a lone surrogate with a TypeError naming no text.
            _raise_unencodable(texts)
            raise

    def _run(
        self, ids: list[list[int]], batch_size: int, show: bool, streams: int | None
    ) -> np.ndarray:
        import torch

        lengths = [len(row) for row in ids]
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        pad = self.tokenizer.pad_token_id
        pad = 0 if pad is None else int(pad)
        bar = _progress_bar(len(ids)) if show else None
        model = self.model
        device = model_device(model)

        def work(chunk: list[int]) -> None:
            width = lengths[chunk[0]]
            input_ids = np.full((len(chunk), width), pad, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, index in enumerate(chunk):
                n = lengths[index]
                input_ids[row, :n] = ids[index]
                mask[row, :n] = 1
            attention = torch.from_numpy(mask).to(device)
            # Sorted batches are often all one length: without padding the model needs no
            # mask, and attention skips building and applying one (measured: 7 % faster on a
            # batch of 32 x 16 tokens).
            uniform = lengths[chunk[-1]] == width
            hidden = model(
                input_ids=torch.from_numpy(input_ids).to(device),
                attention_mask=None if uniform else attention,
            ).last_hidden_state
            vectors = pool(hidden, attention, self.layout.pooling).float()
            if self.layout.normalize:
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
            out[chunk] = vectors.cpu().numpy()  # rows of one batch only: streams never overlap

        was_training = model.training
        model.eval()
        try:
            run_streams(
                work,
                token_batches(lengths, batch_size),
                stream_count(model, streams),
                done=(lambda chunk: bar.update(len(chunk))) if bar is not None else None,
            )
        finally:
            if bar is not None:
                bar.close()
            if was_training:
                model.train()
        return out

    def embed_batch(self, batch: dict[str, Any]) -> Any:
        """Pooled (and normalised, as the model is) vectors of a tokenised batch, with gradients
        when the model trains: what pair fine-tuning optimises. On the model's device."""
        device = model_device(self.model)
        mask = batch["attention_mask"].to(device)
        hidden = self.model(
            input_ids=batch["input_ids"].to(device), attention_mask=mask
        ).last_hidden_state
        vectors = pool(hidden, mask, self.layout.pooling)
        if self.layout.normalize:
            import torch

            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return vectors


def record_int8_ranges(encoder: Encoder, texts: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
    """The contents of ``int8_ranges.json`` for the fp32 ``encoder``, recorded on up to
    ``RANGE_TEXTS`` of ``texts`` (drawn with ``seed``) in length-sorted batches of
    ``RANGE_BATCH``, as :func:`tunesmith.engine.int8_ranges.record_int8_ranges` does for a
    classifier. Write it beside the weights and ``Encoder.load(..., quantize="int8")`` uses it."""
    import random

    if encoder.quantized:
        raise UserInputError("int8 ranges are recorded on the fp32 model; load it without quantize")
    sample = list(dict.fromkeys(texts))
    if not sample:
        raise UserInputError("no texts to record the int8 ranges from")
    if len(sample) > RANGE_TEXTS:
        sample = random.Random(seed).sample(sample, RANGE_TEXTS)
    ranges = measure_activation_ranges(
        # One stream: the range hooks accumulate per batch and are not made for threads.
        encoder.model,
        lambda: encoder.encode(sample, batch_size=RANGE_BATCH, progress=False, streams=1),
    )
    return {
        "statistic": f"mean over batches of up to {RANGE_BATCH} texts of each input's min and max",
        "texts": len(sample),
        "ranges": ranges,
    }


def _raise_unencodable(texts: Sequence[str]) -> None:
    """A UserInputError naming the first text that is not valid Unicode, if there is one."""
    from tunesmith.data.limits import lone_surrogate

    for i, text in enumerate(texts):
        if found := lone_surrogate(text):
            raise UserInputError(
                f"text {i} holds U+{found[1]:04X} at character {found[0]}, a "
                "lone surrogate that is not a character; pass valid Unicode text"
            )


def _show_progress(progress: bool | None, n: int) -> bool:
    if progress is not None:
        return bool(progress)
    return n >= PROGRESS_MIN_TEXTS and sys.stderr.isatty()


def _progress_bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="encoding", unit="text", file=sys.stderr, leave=False)


def _auto_model(location: str | Path) -> tuple[Any, Any]:
    """The bare encoder (``AutoModel``, eval mode) and its tokenizer."""
    from transformers import AutoModel, AutoTokenizer

    with quiet_transformers():
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(location), trust_remote_code=False)
            model = AutoModel.from_pretrained(str(location), trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(
                f"{location} could not be loaded as an encoder: {exc}"
            ) from exc
    as_float32(model)  # saved in half precision: the CPU and the int8 kernels want float32
    model.eval()
    return model, cap_tokenizer_length(tokenizer, model.config)


def _maybe_quantize(model: Any, directory: Path | None, quantize: str | None) -> tuple[Any, bool]:
    if quantize != "int8":
        return model, False

    ranges = read_int8_ranges(directory) if directory is not None else {}
    return quantize_int8(model, ranges=ranges), True
