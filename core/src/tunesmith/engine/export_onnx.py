"""Export a model directory to ONNX, computing what ``tunesmith predict`` computes.

The exported graph takes ``input_ids`` and ``attention_mask`` (``[batch, sequence]``, int64, as
the directory's tokenizer gives them; padding on the right) and returns

* ``logits``: the model's logits as tunesmith loads it: the head on mean-pooled tokens when the
  model was trained so, with the nearest-example scores mixed in (``log p`` of the mixture);
  ``[batch, labels]``, or ``[batch, sequence, tags]`` for a tagger;
* ``probabilities``: softmax (single-label, NER) or sigmoid (multi-label) of the logits divided
  by the calibration temperature(s) of ``calibration.json``, as ``tunesmith predict`` gives them
  (without a fitted temperature, the uncalibrated probabilities).

The model's metadata (``labels``, ``task``, ``temperature``, ``includes``, ``leaves_out``,
``max_length``) says what is inside and what is not: a tagger's word alignment (the first
sub-token of each word) and entity grouping, the ``--quantize int8`` layers, the lexical model's share, a
seed ensemble's other members (the graph is the first member) and truncation to ``max_length``
stay with the caller.

Every export is checked: onnxruntime runs the file on probe texts of several lengths (padded and
unpadded batches) and its outputs must match the PyTorch model's within ``TOLERANCE``, else the
file is not written. The TorchScript exporter is used (about 1 s for a tiny model against 15-25 s
for the ``torch.export`` one on this machine), with one symbolic added for ``logaddexp``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tunesmith import __version__
from tunesmith.engine.loading import load_model
from tunesmith.engine.modeling import plain_transformers_gaps
from tunesmith.errors import TunesmithError, UserInputError
from tunesmith.io import check_parents, naming_target, publish_mode, remove_stale_temps
from tunesmith.model_dir import NEAREST_KEY

INPUTS = ("input_ids", "attention_mask")
OUTPUTS = ("logits", "probabilities")
OPSET = 17
#: Largest allowed difference between onnxruntime's and PyTorch's outputs on the probe texts.
TOLERANCE = 1e-4
PROBE_TEXTS = (
    "hello",
    "my card was lost and i need a new one",
    "please help me with this",
    "what is the price of the shares today and will the market go up or down",
)


def _require_runtime() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserInputError(
            f"exporting to ONNX needs {' and '.join(missing)}: "
            "pip install 'tunesmith[export]' (or pip install onnx onnxruntime)"
        )


def _logaddexp_symbolic(g: Any, a: Any, b: Any) -> Any:
    """``logaddexp(a, b) = max(a, b) + log(1 + exp(-|a - b|))``: the TorchScript exporter has
    no symbolic of its own for it (the nearest-example mixture uses it)."""
    import torch

    high = g.op("Max", a, b)
    gap = g.op("Neg", g.op("Abs", g.op("Sub", a, b)))
    one = g.op("Constant", value_t=torch.tensor(1.0))
    return g.op("Add", high, g.op("Log", g.op("Add", one, g.op("Exp", gap))))


def _portable_module(loaded: Any) -> Any:
    """A module ``(input_ids, attention_mask) -> (logits, probabilities)`` around the model."""
    import torch

    temperature = loaded.temperature if loaded.task != "ner" else None

    class Portable(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = loaded.model
            scale = 1.0 if temperature is None else temperature
            self.register_buffer("temperature", torch.tensor(scale, dtype=torch.float32))
            self.multilabel = loaded.task == "multilabel"

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask)
            logits = out.logits if hasattr(out, "logits") else out[0]
            scaled = logits / self.temperature
            if self.multilabel:
                return logits, torch.sigmoid(scaled)
            return logits, torch.softmax(scaled, dim=-1)

    return Portable().eval()


def describe(loaded: Any) -> dict[str, Any]:
    """What the exported graph computes and what it leaves to the caller (its metadata)."""
    config = loaded.model.config.to_dict()
    gaps = plain_transformers_gaps(config)
    includes = ["encoder", "head"]
    if "mean_pooling" in gaps:
        includes.append("mean pooling of the last hidden states")
    if "nearest_examples" in gaps:
        weight = config[NEAREST_KEY]["weight"]
        includes.append(f"nearest-example scores (head share {weight:g})")
    # The number itself: truncation=True alone cuts at the tokenizer's model_max_length, which
    # is longer than the --max-length a model was trained with, and long texts then differ.
    limit = loaded.max_length
    leaves_out = [
        f"truncation to {limit} tokens (tokenize with truncation=True, max_length={limit})"
    ]
    if loaded.task == "ner":
        leaves_out += [
            "word alignment (tunesmith reads each word's first sub-token)",
            "entity grouping of the tags",
        ]
    elif loaded.temperature is not None:
        includes.append("calibration temperature in 'probabilities' (not in 'logits')")
    else:
        leaves_out.append("calibration (the model has no fitted temperature)")
    if loaded.extra.get("lexical") is not None:
        weight = loaded.extra["lexical"].weight
        leaves_out.append(f"the lexical n-gram model's share {weight:g} (lexical.json)")
    from tunesmith.engine.ensemble import MEMBERS_FILE, read_members

    others = read_members(loaded.path)
    if others:
        # An ensemble scores with the mean of every member; the graph holds the first alone.
        leaves_out.append(
            f"the seed ensemble's other {len(others)} member(s) ({MEMBERS_FILE}): the graph is "
            "the first member alone; tunesmith's ensemble scoring averages every member's "
            "calibrated probabilities"
        )
    leaves_out.append("int8 quantisation (--quantize int8): the graph is float32")
    return {"includes": includes, "leaves_out": leaves_out}


def _metadata(loaded: Any, description: dict[str, Any]) -> dict[str, str]:
    return {
        "producer": f"tunesmith {__version__}",
        "task": loaded.task,
        "labels": json.dumps(loaded.labels, ensure_ascii=False),
        "temperature": json.dumps(loaded.temperature if loaded.task != "ner" else None),
        "max_length": str(loaded.max_length),
        "inputs": json.dumps(list(INPUTS)),
        "includes": json.dumps(description["includes"]),
        "leaves_out": json.dumps(description["leaves_out"]),
    }


def _probe_batches(loaded: Any) -> list[dict[str, Any]]:
    """Tokenised probe texts: one padded batch (also the export sample) and unpadded singles."""
    texts = list(PROBE_TEXTS) + [str(label) for label in loaded.labels[:4]]
    tokenizer = loaded.tokenizer

    def encode(batch: list[str]) -> dict[str, Any]:
        encoded = tokenizer(
            batch,
            padding=True,
            truncation=True,
            max_length=loaded.max_length,
            return_tensors="np",
        )
        return {name: encoded[name].astype("int64") for name in INPUTS}

    return [encode(texts), encode(texts[1:2]), encode(texts[:1])]


def _forget_traced_shapes(graph: Any) -> None:
    """Drop the intermediate shapes the tracer recorded, in ``graph`` and its subgraphs.

    Some are wrong (a 1-D shape for the nearest scores' ``[batch, labels]``, declared as an
    output of the ``If`` branches the scatter's export holds); onnxruntime then warns on every
    run. It infers the shapes itself.
    """
    del graph.value_info[:]
    for node in graph.node:
        for attribute in node.attribute:
            subgraphs = [attribute.g] if attribute.HasField("g") else []
            for sub in [*subgraphs, *attribute.graphs]:
                for output in sub.output:
                    output.type.tensor_type.ClearField("shape")
                _forget_traced_shapes(sub)


def _check(session: Any, module: Any, batches: list[dict[str, Any]]) -> dict[str, float]:
    """Largest differences between onnxruntime and PyTorch on the probe batches."""
    import numpy as np
    import torch

    worst = {"logits": 0.0, "probabilities": 0.0}
    with torch.inference_mode():
        for batch in batches:
            got = session.run(list(OUTPUTS), batch)
            want = module(*(torch.from_numpy(batch[name]) for name in INPUTS))
            for name, g, w in zip(OUTPUTS, got, want, strict=True):
                mask = batch["attention_mask"].astype(bool) if g.ndim == 3 else ...
                diff = np.abs(g[mask] - w.float().numpy()[mask])
                if name == "logits":  # log-probabilities can be large: relative above 1
                    diff = diff / np.maximum(1.0, np.abs(w.float().numpy()[mask]))
                worst[name] = max(worst[name], float(diff.max(initial=0.0)))
    return worst


def _refuse_model_file(model_dir: Path, out: Path) -> None:
    """Refuse an ``out`` inside the model directory that is not a ``.onnx`` file: with
    ``--force`` it would replace one of the model's own files (``config.json``, the weights)."""
    if out.suffix.lower() == ".onnx" or not model_dir.is_dir():
        return
    if out.resolve().is_relative_to(model_dir.resolve()):
        raise UserInputError(
            f"--out {out} is inside the model directory {model_dir} and is not a .onnx file: "
            "it could replace one of the model's own files; name it *.onnx or write it elsewhere"
        )


def export_onnx(model_dir: str | Path, out: str | Path, *, force: bool = False) -> dict[str, Any]:
    """Write ``model_dir`` as an ONNX model at ``out`` (atomically) and check it against PyTorch.

    Returns a report: the path, inputs, outputs, size, what is included and left out, and the
    largest differences measured. Raises :class:`UserInputError` when ``out`` exists (without
    ``force``), lies in the model directory without a ``.onnx`` name (even with ``force``: it
    could be one of the model's files) or onnx/onnxruntime are missing, :class:`TunesmithError`
    when the check fails.
    """
    out = Path(out).expanduser()
    if out.is_dir():  # first: --force cannot make a folder a file, so it is no advice to give
        raise UserInputError(f"{out} is a directory; --out names the .onnx file to write")
    _refuse_model_file(Path(model_dir).expanduser(), out)
    check_parents(out, "--out")
    if out.exists() and not force:
        raise UserInputError(f"{out} exists already; pass --force to replace it")
    _require_runtime()

    loaded = load_model(model_dir)
    import warnings

    import onnx
    import onnxruntime
    import torch

    module = _portable_module(loaded)
    batches = _probe_batches(loaded)
    sample = tuple(torch.from_numpy(batches[0][name]) for name in INPUTS)
    token_level = loaded.task == "ner"
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    for name in OUTPUTS:
        axes[name] = {0: "batch", 1: "sequence"} if token_level else {0: "batch"}
    torch.onnx.register_custom_op_symbolic("aten::logaddexp", _logaddexp_symbolic, OPSET)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    # The same temporary name as tunesmith.io's writers, so a killed export's file is cleaned.
    with naming_target(out):  # a read-only model folder: named as --out, not as the temp
        fd, name = tempfile.mkstemp(
            dir=out.parent, prefix=f".{out.name}.{os.getpid()}-", suffix=".tmp"
        )
    os.close(fd)
    tmp = Path(name)
    publish_mode(tmp, out)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer notes on shape-dependent Python branches
            torch.onnx.export(
                module,
                sample,
                str(tmp),
                input_names=list(INPUTS),
                output_names=list(OUTPUTS),
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        description = describe(loaded)
        graph = onnx.load(str(tmp))
        _forget_traced_shapes(graph.graph)
        for key, value in _metadata(loaded, description).items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(graph, str(tmp))
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        worst = _check(session, module, batches)
        if max(worst.values()) > TOLERANCE:
            raise TunesmithError(
                f"the ONNX export of {loaded.path} differs from tunesmith's outputs by up to "
                f"{max(worst.values()):.2g} (tolerance {TOLERANCE:g}); nothing was written"
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "path": str(out),
        "format": "onnx",
        "opset": OPSET,
        "task": loaded.task,
        "labels": loaded.labels,
        "inputs": list(INPUTS),
        "outputs": list(OUTPUTS),
        "bytes": out.stat().st_size,
        "temperature": loaded.temperature if loaded.task != "ner" else None,
        **description,
        "max_difference": worst,
        "probe_texts": int(sum(len(b["input_ids"]) for b in batches)),
    }
