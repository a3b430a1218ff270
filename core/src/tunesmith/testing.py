"""Helpers for tests, ours and plugin authors': tiny models built in-process, and a contract test.

Nothing here downloads. A tiny BERT (2 layers, hidden size 32) with a word-level vocabulary
trains in a second on a CPU, which is all a test needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tunesmith import hookspecs
from tunesmith.hooktypes import Demo, SampleData

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

#: Words every tiny vocabulary has, so that sample texts rarely hit [UNK].
BASE_WORDS = [
    "the",
    "a",
    "an",
    "i",
    "my",
    "me",
    "you",
    "your",
    "we",
    "it",
    "is",
    "are",
    "was",
    "be",
    "to",
    "of",
    "in",
    "on",
    "for",
    "with",
    "and",
    "or",
    "not",
    "no",
    "yes",
    "can",
    "do",
    "does",
    "how",
    "what",
    "when",
    "where",
    "why",
    "please",
    "help",
    "card",
    "account",
    "money",
    "transfer",
    "refund",
    "payment",
    "balance",
    "password",
    "login",
    "app",
    "order",
    "delivery",
    "late",
    "broken",
    "good",
    "bad",
    "great",
    "terrible",
    "stock",
    "price",
    "shares",
    "market",
    "up",
    "down",
    "rise",
    "fall",
    "profit",
    "loss",
    "bank",
    "loan",
    "buy",
    "sell",
    "movie",
    "film",
    "love",
    "hate",
    "like",
    "watch",
    "new",
    "old",
    "open",
    "close",
    "thanks",
    "hello",
]


def _words(texts: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for text in texts:
        for word in re.findall(r"\w+|[^\w\s]", text.lower()):
            seen.setdefault(word, None)
    return list(seen)


def make_tiny_tokenizer(directory: str | Path, texts: Iterable[str] = ()) -> Any:
    """Build a word-level BERT tokenizer for ``texts`` (plus common words) and save it."""
    from transformers import BertTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL_TOKENS + [w for w in _words([*BASE_WORDS, *texts]) if w not in SPECIAL_TOKENS]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # transformers 5 ignores ``vocab_file`` for the fast tokenizer; pass the mapping itself.
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(directory)
    return tokenizer


def tiny_bert_config(vocab_size: int, **overrides: Any) -> Any:
    """A BertConfig small enough to train in a test: 2 layers, hidden 32, 2 heads."""
    from transformers import BertConfig

    settings: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
    }
    settings.update(overrides)
    return BertConfig(**settings)


def make_tiny_base_model(directory: str | Path, texts: Iterable[str] = (), seed: int = 0) -> Path:
    """Save a tiny randomly initialised BERT encoder and its tokenizer: a stand-in for ``default``.

    Pass the directory wherever a base model is expected (``tunesmith train --model DIR``).
    """
    import torch
    from transformers import BertModel

    directory = Path(directory)
    tokenizer = make_tiny_tokenizer(directory, texts)
    torch.manual_seed(seed)
    model = BertModel(tiny_bert_config(len(tokenizer)))
    model.save_pretrained(directory)
    return directory


def make_tiny_classifier(
    directory: str | Path,
    labels: Sequence[str],
    texts: Iterable[str] = (),
    *,
    multilabel: bool = False,
    seed: int = 0,
) -> Path:
    """Save a tiny, untrained sequence classifier with label names, ready for predict/explain."""
    import torch
    from transformers import BertForSequenceClassification

    directory = Path(directory)
    tokenizer = make_tiny_tokenizer(directory, texts)
    torch.manual_seed(seed)
    config = tiny_bert_config(
        len(tokenizer),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification" if multilabel else "single_label_classification",
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    return directory


def make_tiny_trained_classifier(
    directory: str | Path,
    labels: Sequence[str],
    texts: Sequence[str],
    targets: Sequence[int],
    *,
    steps: int = 40,
    lr: float = 3e-3,
) -> Path:
    """Save a tiny classifier fitted for a few full-batch steps on ``texts``/``targets``.

    Dropout is off while fitting, so the result is the same on every run.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    directory = make_tiny_classifier(directory, labels, texts)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory)
    batch = tokenizer(list(texts), padding=True, return_tensors="pt")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.eval()
    torch.manual_seed(0)
    for _ in range(steps):
        loss = model(**batch, labels=torch.tensor(list(targets))).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(directory)
    return directory


def overrule_with_lexical(
    model_dir: str | Path,
    labels: Sequence[str],
    texts: Sequence[str],
    text: str,
    *,
    weight: float = 0.9,
) -> str:
    """Give the classifier in ``model_dir`` a lexical part (``--lexical``, share ``weight``)
    that labels ``text`` otherwise than its transformer does: fitted on ``texts`` (with
    ``text``) three times over, ``text`` with the label after the transformer's and every other
    text with the transformer's. Returns the label the mix gives ``text``, so that a test can
    tell an output of the mix from one of the transformer alone."""
    import numpy as np

    from tunesmith.engine.lexical import LexicalModel
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits

    alone = int(np.argmax(predict_logits(load_model(model_dir), [text])[0]))
    other = labels[(alone + 1) % len(labels)]
    targets = [other if t == text else labels[alone] for t in texts]
    LexicalModel.fit(list(texts) * 3, targets * 3, labels, weight=weight).save(model_dir)
    return other


def write_csv(
    path: str | Path, rows: Iterable[Sequence[Any]], header: Sequence[str] = ("text", "label")
) -> Path:
    """Write ``rows`` under ``header`` as an RFC 4180 CSV file (for tests and examples)."""
    import csv

    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(header))
        writer.writerows(rows)
    return path


def make_tiny_tagger(directory: str | Path, tags: Sequence[str], texts: Iterable[str] = ()) -> Path:
    """Save a tiny, untrained token classifier (NER) with tag names."""
    import torch
    from transformers import BertForTokenClassification

    directory = Path(directory)
    tokenizer = make_tiny_tokenizer(directory, texts)
    torch.manual_seed(0)
    config = tiny_bert_config(
        len(tokenizer),
        num_labels=len(tags),
        id2label=dict(enumerate(tags)),
        label2id={tag: i for i, tag in enumerate(tags)},
    )
    BertForTokenClassification(config).save_pretrained(directory)
    return directory


def check_plugin_contract(plugin: object) -> list[str]:
    """Check what a plugin's hooks return, the way the suite will use it.

    Returns a list of problems (empty when the plugin keeps the contract). A plugin author's test::

        def test_my_plugin_keeps_the_contract():
            assert check_plugin_contract(my_plugin) == []
    """
    import typer

    from tunesmith.plugins import unmarked_hooks

    # A hook function without @hookimpl is never called by the suite (pluggy skips it).
    hook_names = [n for n in vars(hookspecs) if n.startswith("tunesmith_")]
    problems = [
        f"{name} is not marked with @hookimpl, so tunesmith never calls it"
        for name in unmarked_hooks(plugin, hook_names)
    ]

    def call(name: str, **kwargs: Any) -> Any:
        return getattr(plugin, name)(**kwargs)

    if hasattr(plugin, "tunesmith_cli"):
        app = typer.Typer()
        before = len(app.registered_commands) + len(app.registered_groups)
        call("tunesmith_cli", app=app)
        if len(app.registered_commands) + len(app.registered_groups) == before:
            problems.append("tunesmith_cli added no command or group")
    if hasattr(plugin, "tunesmith_demos"):
        demos = call("tunesmith_demos")
        if not isinstance(demos, list) or not all(isinstance(d, Demo) for d in demos):
            problems.append("tunesmith_demos must return a list of tunesmith.hooktypes.Demo")
        else:
            for demo in demos:
                if not re.fullmatch(r"[a-z][a-z0-9_-]*", demo.name):
                    problems.append(f"demo name {demo.name!r} must be lower-case, like 'support'")
                if not callable(demo.build):
                    problems.append(f"demo {demo.name!r}: build is not callable")
                    continue
                try:  # the suite builds every tab at start-up: one that raises shows an error tab
                    demo.build()
                except Exception as exc:
                    problems.append(
                        f"demo {demo.name!r}: build() raised {type(exc).__name__}: {exc}"
                    )
    if hasattr(plugin, "tunesmith_sample_data"):
        sets = call("tunesmith_sample_data")
        for sample in sets:
            if not isinstance(sample, SampleData):
                problems.append("tunesmith_sample_data must return SampleData objects")
                continue
            for split, path in sample.paths.items():
                if not Path(path).exists():
                    problems.append(f"sample data {sample.name!r} {split}: {path} does not exist")
    for hook, kind in (
        ("tunesmith_data_readers", dict),
        ("tunesmith_attribution_methods", dict),
        ("tunesmith_event_sinks", dict),
        ("tunesmith_augmenters", list),
    ):
        if not hasattr(plugin, hook):
            continue
        result = call(hook)
        if not isinstance(result, kind):
            problems.append(f"{hook} must return a {kind.__name__}")
        elif hook == "tunesmith_augmenters":
            for augmenter in result:
                name = getattr(augmenter, "name", None)
                if not isinstance(name, str) or not name:
                    problems.append(f"augmenter {augmenter!r} has no name (--augment NAME uses it)")
        elif hook == "tunesmith_event_sinks":
            for scheme, factory in result.items():
                if not callable(factory):
                    problems.append(f"event sink {scheme!r}: the factory is not callable")
    problems += _unknown_hooks(plugin)
    return problems


def _unknown_hooks(plugin: object) -> list[str]:
    """Hook implementations whose name no hook has (a misspelling pluggy would reject at
    registration, or a plain function that would never be called)."""
    known = {name for name in dir(hookspecs) if name.startswith("tunesmith_")}
    problems = []
    for name in dir(plugin):
        value = getattr(plugin, name, None)
        marked = callable(value) and hasattr(value, "tunesmith_impl")
        if (marked or name.startswith("tunesmith_")) and callable(value) and name not in known:
            problems.append(
                f"{name} is not a tunesmith hook (misspelled? see docs/plugin_hooks.md)"
            )
    return problems


def demo_handler(blocks: Any, name: str) -> Any:
    """The Python function that events of a demo's ``gr.Blocks`` call under ``name`` (its
    ``__name__``: ``on_check`` for ``button.click(on_check, ...)``), to call in a test without
    serving the page. A ``LookupError`` lists the names there are.

    Gradio keeps its events in ``blocks.fns``, whose shape has changed between releases: plugin
    tests go through here, so only this function follows it."""
    fns = getattr(blocks, "fns", {})
    events = fns.values() if isinstance(fns, dict) else fns
    found = {event.fn for event in events if getattr(event, "name", None) == name}
    if len(found) != 1:
        names = sorted({str(getattr(event, "name", "")) for event in events} - {""})
        what = "no event handler" if not found else f"{len(found)} different handlers"
        raise LookupError(f"{what} named {name!r} in this demo; there are: {', '.join(names)}")
    return found.pop()


def fake_cuda(monkeypatch: Any, count: int = 1, *, bf16: bool = True) -> None:
    """Make torch report ``count`` CUDA devices (``bf16``: that they support bf16) for the rest
    of a test, so that ``--device cuda`` passes :func:`tunesmith.devices.resolve_device` on a
    machine without a GPU. Nothing runs on a GPU: spy on the loader or trainer the device is
    passed to (it may load on the CPU) to see which device a command asked for."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


#: Libraries that make ``tunesmith --help`` slow when a plugin imports them at start-up.
HEAVY_MODULES = (
    "torch", "transformers", "captum", "faiss", "gradio", "peft", "pandas", "sklearn", "scipy",
    "matplotlib", "pyarrow", "datasets", "fastapi", "uvicorn", "openpyxl",
)  # fmt: skip

# Runs in a fresh interpreter: the test process has long imported torch, so only a new one can
# tell which step of the plugin's start-up imports a heavy library.
_STARTUP_PROBE = """
import contextlib, importlib, inspect, io, json, sys
import typer
from tunesmith import hookspecs

module_name, heavy = sys.argv[1], json.loads(sys.argv[2])
problems = []

def step(what, action):
    before = {m for m in heavy if m in sys.modules}
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return action()
    except SystemExit:
        return None
    except Exception as exc:
        problems.append(f"{what} raised {type(exc).__name__}: {exc}")
        return None
    finally:
        new = sorted(m for m in heavy if m in sys.modules and m not in before)
        if new:
            problems.append(f"{what} imports {', '.join(new)}")

plugin = step(f"import {module_name}", lambda: importlib.import_module(module_name))
if plugin is not None and hasattr(plugin, "tunesmith_cli"):
    app = typer.Typer()
    app.callback()(lambda: None)  # a group even when the plugin adds one plain command
    step("tunesmith_cli(app)", lambda: plugin.tunesmith_cli(app=app))

    def paths(command, prefix):
        yield prefix
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from paths(sub, [*prefix, name])

    for path in list(paths(typer.main.get_command(app), []))[1:]:
        step("tunesmith " + " ".join([*path, "--help"]),
             lambda: app([*path, "--help"], standalone_mode=False))
for name in sorted(n for n in vars(hookspecs) if n.startswith("tunesmith_")):
    spec = getattr(hookspecs, name)
    # `tunesmith plugins` calls every hook that takes no arguments (a demo's build() is not)
    if plugin is not None and hasattr(plugin, name) and not inspect.signature(spec).parameters:
        step(f"{name}()", getattr(plugin, name))
print(json.dumps(problems))
"""


def check_startup_imports(
    plugin: object, *, heavy: Sequence[str] = HEAVY_MODULES, timeout: float = 120.0
) -> list[str]:
    """What a plugin makes ``tunesmith --help`` and ``tunesmith plugins`` import that they must
    not: returns one problem per step (importing the plugin module, ``tunesmith_cli``, each of
    its commands' ``--help``, each hook without arguments) that imports one of ``heavy``, or
    raises; empty is good. A plugin author's test::

        def test_my_plugin_starts_light():
            assert check_startup_imports(my_plugin) == []

    ``plugin`` is an importable module (it is imported again in a new Python process that sees
    this one's ``sys.path``); a ``demo.build()`` is not called, as the UI may import anything.
    """
    import json
    import os
    import subprocess
    import sys

    name = getattr(plugin, "__name__", None)
    if not isinstance(name, str) or sys.modules.get(name) is not plugin:
        raise ValueError(f"{plugin!r} is not an imported module, so no new process can import it")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if isinstance(p, str) and p)
    try:
        out = subprocess.run(
            [sys.executable, "-c", _STARTUP_PROBE, name, json.dumps(list(heavy))],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return [f"starting {name} took over {timeout:g} s"]
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return [f"the start-up probe of {name} failed: {out.stderr.strip()[-500:]}"]
    return json.loads(lines[-1])


#: Architectures :func:`make_tiny_encoder` builds, by their ``model_type``.
ARCHITECTURES = (
    "bert",
    "distilbert",
    "electra",
    "albert",
    "mpnet",
    "roberta",
    "xlm-roberta",
    "deberta-v2",
)


def _tiny_tokenizer_of(architecture: str, texts: Sequence[str]) -> Any:
    """A tokenizer of the kind ``architecture`` ships, trained offline on ``texts``: word-level
    WordPiece (BERT, DistilBERT, ELECTRA, MPNet), byte-level BPE (RoBERTa) or a Unigram
    sentencepiece vocabulary (XLM-R, ALBERT, DeBERTa-v2)."""
    import json

    import transformers as tf

    corpus = [*texts, " ".join(BASE_WORDS)]
    if architecture in ("bert", "distilbert", "electra", "mpnet"):
        specials = (
            ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"]
            if architecture == "mpnet"
            else SPECIAL_TOKENS
        )
        vocab = specials + [w for w in _words(corpus) if w not in specials]
        cls = {
            "bert": tf.BertTokenizer,
            "distilbert": tf.DistilBertTokenizer,
            "electra": tf.ElectraTokenizer,
            "mpnet": tf.MPNetTokenizer,
        }[architecture]
        return cls(vocab={w: i for i, w in enumerate(vocab)})
    if architecture == "roberta":
        from tokenizers import ByteLevelBPETokenizer

        bpe = ByteLevelBPETokenizer()
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        bpe.train_from_iterator(
            corpus, vocab_size=600, special_tokens=specials, show_progress=False
        )
        state = json.loads(bpe.to_str())["model"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
        return tf.RobertaTokenizer(vocab=state["vocab"], merges=merges)
    from tokenizers import SentencePieceUnigramTokenizer

    specials, cls = {
        "xlm-roberta": (["<s>", "<pad>", "</s>", "<unk>", "<mask>"], tf.XLMRobertaTokenizer),
        "albert": (["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"], tf.AlbertTokenizer),
        "deberta-v2": (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], tf.DebertaV2Tokenizer),
    }[architecture]
    unigram = SentencePieceUnigramTokenizer()
    unk = "<unk>" if "<unk>" in specials else "[UNK]"
    unigram.train_from_iterator(
        corpus, vocab_size=400, special_tokens=specials, unk_token=unk, show_progress=False
    )
    vocab = [tuple(v) for v in json.loads(unigram.to_str())["model"]["vocab"]]
    return cls(vocab=vocab)


def tiny_config(architecture: str, vocab_size: int, pad_id: int, positions: int = 128) -> Any:
    """A config of ``architecture`` as small as :func:`tiny_bert_config`, able to read
    ``positions`` tokens; RoBERTa-style models get ``positions + 2`` position embeddings, as
    their checkpoints have (514 for 512 tokens). ELECTRA and ALBERT embed in 16 dimensions
    below a hidden size of 32, as their small checkpoints do; DeBERTa-v2 uses relative
    attention only, as DeBERTa-v3 does."""
    import transformers as tf

    common: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": positions,
        "pad_token_id": pad_id,
    }
    offset = {**common, "max_position_embeddings": positions + pad_id + 1}
    if architecture == "bert":
        return tf.BertConfig(**common)
    if architecture == "distilbert":
        return tf.DistilBertConfig(
            vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
            max_position_embeddings=positions, pad_token_id=pad_id,
        )  # fmt: skip
    if architecture == "electra":
        return tf.ElectraConfig(embedding_size=16, **common)
    if architecture == "albert":
        return tf.AlbertConfig(embedding_size=16, **common)
    if architecture == "mpnet":
        return tf.MPNetConfig(**offset)
    if architecture in ("roberta", "xlm-roberta"):
        cls = tf.RobertaConfig if architecture == "roberta" else tf.XLMRobertaConfig
        return cls(type_vocab_size=1, bos_token_id=0, eos_token_id=2, **offset)
    if architecture == "deberta-v2":
        return tf.DebertaV2Config(
            relative_attention=True, position_buckets=16, max_relative_positions=-1,
            pos_att_type=["p2c", "c2p"], position_biased_input=False, type_vocab_size=0,
            norm_rel_ebd="layer_norm", share_att_key=True, **common,
        )  # fmt: skip
    raise ValueError(f"unknown architecture {architecture!r}; one of {', '.join(ARCHITECTURES)}")


def make_tiny_encoder(
    directory: str | Path,
    architecture: str,
    texts: Iterable[str] = (),
    *,
    labels: Sequence[str] = (),
    positions: int = 128,
    sentence_transformers: dict[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """Save a tiny random ``architecture`` model (one of :data:`ARCHITECTURES`) with its own
    kind of tokenizer, whose limit is left unset as in many downloaded folders.

    With ``labels`` it is a sequence classifier (ready for predict, explain, export), else a
    bare encoder (a base model for ``train``). ``sentence_transformers`` adds the
    sentence-transformers files: ``{"pooling": "mean"|"cls"|"max", "normalize": bool}``.
    """
    import json

    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _tiny_tokenizer_of(architecture, list(texts))
    tokenizer.save_pretrained(directory)
    config = tiny_config(architecture, len(tokenizer), tokenizer.pad_token_id, positions)
    torch.manual_seed(seed)
    if labels:
        config.update(
            {
                "num_labels": len(labels),
                "id2label": dict(enumerate(labels)),
                "label2id": {label: i for i, label in enumerate(labels)},
            }
        )
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        model = AutoModel.from_config(config)
    model.save_pretrained(directory)
    if sentence_transformers is not None:
        pooling = sentence_transformers.get("pooling", "mean")
        keys = {"cls": "cls_token", "mean": "mean_tokens", "max": "max_tokens"}
        settings = {f"pooling_mode_{v}": k == pooling for k, v in keys.items()}
        (directory / "1_Pooling").mkdir(exist_ok=True)
        (directory / "1_Pooling" / "config.json").write_text(
            json.dumps({"word_embedding_dimension": 32, **settings}), encoding="utf-8"
        )
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]  # fmt: skip
        if sentence_transformers.get("normalize", True):
            (directory / "2_Normalize").mkdir(exist_ok=True)
            modules.append(
                {"idx": 2, "name": "2", "path": "2_Normalize",
                 "type": "sentence_transformers.models.Normalize"}
            )  # fmt: skip
        (directory / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
        (directory / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": positions, "do_lower_case": False}), encoding="utf-8"
        )
    return directory
