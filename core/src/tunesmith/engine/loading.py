"""Load a saved model directory for prediction, evaluation, explanation and calibration.

Three layouts are understood:

* a plain Hugging Face sequence or token classification directory (``config.json`` + weights);
* tunesmith's mean-pooling head (``"tunesmith_pooling": "mean"`` in ``config.json``, whose
  ``model_type`` names a marker that plain transformers refuses) and adapter directories saved
  by older ``tunesmith train`` versions, both rebuilt by
  :func:`tunesmith.engine.modeling.load_classifier`;
* a bare PEFT adapter directory (``adapter_config.json`` only): the base model named there is
  resolved through :func:`tunesmith.models.resolve_model` and the adapter (with the classifier
  head saved through ``modules_to_save``) applied.

Adapters are merged into their base, so inference runs at base-model speed.

``calibration.json`` beside the weights, when present, supplies the temperature(s); a directory
without it loads with ``temperature=None``. ``trust_remote_code`` is never turned on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.devices import as_float32, resolve_device
from tunesmith.engine.lexical import LEXICAL_FILE, LexicalModel
from tunesmith.engine.max_length import input_limit
from tunesmith.engine.modeling import cap_tokenizer_length, load_classifier, read_config
from tunesmith.engine.quantize import quantize_int8, read_int8_ranges
from tunesmith.engine.threads import configure_threads
from tunesmith.errors import DataError, ModelNotFoundError, UserInputError
from tunesmith.hf_quiet import quiet_transformers
from tunesmith.io import read_json_object
from tunesmith.model_dir import (
    ADAPTER_CONFIG_FILE,
    BASE_MODEL_KEY,
    CALIBRATION_FILE,
    CONFIG_FILE,
    RUN_CONFIG_FILE,
    SENTENCE_MODULES_FILE,
    TASK_KEY,
    TOKENIZER_FILES,
    WEIGHT_FILES,
)
from tunesmith.models import resolve_model

TASKS = ("classification", "multilabel", "ner")


@dataclass
class LoadedModel:
    """A model ready for inference, with everything needed to read its outputs.

    ``temperature`` is a float (single-label), a list with one float per label (multi-label), or
    ``None`` when the model was never calibrated. ``calibration`` is the whole
    ``calibration.json`` document (or ``None``).
    """

    model: Any
    tokenizer: Any
    task: str
    labels: list[str]
    temperature: float | list[float] | None
    calibration: dict[str, Any] | None
    path: Path
    run_config: dict[str, Any] | None
    max_length: int = 512
    quantized: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label2id(self) -> dict[str, int]:
        """Label name to output index."""
        return {label: i for i, label in enumerate(self.labels)}


def _check_model_dir(path: str | Path) -> Path:
    directory = Path(path).expanduser()
    if not directory.exists():
        raise ModelNotFoundError(f"model directory {directory} does not exist")
    if not directory.is_dir():
        raise ModelNotFoundError(f"{directory} is a file; a model is a directory with config.json")
    if (directory / ADAPTER_CONFIG_FILE).exists():
        return directory
    if not (directory / CONFIG_FILE).exists():
        raise ModelNotFoundError(
            f"{directory} has no config.json or adapter_config.json; it is not a model directory"
        )
    if not any((directory / name).exists() for name in WEIGHT_FILES):
        raise ModelNotFoundError(
            f"{directory} has a config.json but no weights (model.safetensors); "
            "it is not a trained model directory"
        )
    return directory


def check_safetensors(file: Path) -> None:
    """Refuse a ``.safetensors`` file that is cut short or has a broken header, in one line.

    The header (8-byte length, then JSON naming each tensor's byte range) says how long the file
    must be; a copy or a write killed midway is shorter. Checked before loading, because the
    library's own error is a ``SafetensorError`` traceback that names no file.
    """
    import json
    import struct

    size = file.stat().st_size
    problem = None
    with file.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            problem = f"it is {size} bytes, too short to be a safetensors file"
        else:
            (length,) = struct.unpack("<Q", head)
            if length > min(size - 8, 100 << 20):
                problem = f"it is {size:,} bytes, shorter than its own header says"
            else:
                try:
                    header = json.loads(handle.read(length))
                    ends = [
                        int(entry["data_offsets"][1])
                        for name, entry in header.items()
                        if name != "__metadata__"
                    ]
                except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                    problem = "its header is not valid safetensors JSON"
                else:
                    needed = 8 + length + max(ends, default=0)
                    if size < needed:
                        problem = f"it is {size:,} bytes but its tensors need {needed:,}"
    if problem is not None:
        raise DataError(
            f"the weights file is damaged or incomplete ({problem}); copy the model again or "
            "retrain it",
            path=file,
        )


def _check_weights(directory: Path) -> None:
    for file in sorted(directory.glob("*.safetensors")):
        check_safetensors(file)


def _check_finite(model: Any, directory: Path) -> None:
    """Refuse weights holding NaN or infinity (a training that diverged, a corrupted copy):
    every output would be NaN, shown as a ``nan`` score, or a traceback in ``--json``."""
    import torch

    for name, param in model.named_parameters():
        if param.is_floating_point() and not bool(torch.isfinite(param).all()):
            raise ModelNotFoundError(
                f"{directory}: the weight {name} holds NaN or infinite values, so every "
                "prediction would be NaN; train the model again"
            )


def _task_from_config(config: Any, run_config: dict[str, Any] | None) -> str:
    saved = getattr(config, TASK_KEY, None)
    if saved in TASKS:
        return str(saved)
    if run_config and run_config.get("task") in TASKS:
        return str(run_config["task"])
    architectures = " ".join(getattr(config, "architectures", None) or [])
    if "TokenClassification" in architectures:
        return "ner"
    if getattr(config, "problem_type", None) == "multi_label_classification":
        return "multilabel"
    return "classification"


def _labels_from_config(config: Any) -> list[str]:
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label[k]) for k in sorted(id2label, key=int)]


def _max_length(tokenizer: Any, config: Any, run_config: dict[str, Any] | None) -> int:
    """The model's input limit, at most 512 and at most the ``--max-length`` it was trained
    with (:func:`~tunesmith.engine.max_length.input_limit`, which training's held-out
    data is read at too)."""
    return input_limit(tokenizer, config, (run_config or {}).get("max_length"))


def _temperature_from(calibration: dict[str, Any] | None, labels: list[str], path: Path) -> Any:
    if not calibration:
        return None
    source = path / CALIBRATION_FILE
    if "temperatures" in calibration:
        temps = calibration["temperatures"]
        if not isinstance(temps, list) or len(temps) != len(labels):
            raise DataError(
                f"'temperatures' must list one number per label ({len(labels)})", path=source
            )
        try:
            values = [float(t) for t in temps]
        except (TypeError, ValueError):
            values = [float("nan")]
        if not all(v > 0 for v in values):
            raise DataError("'temperatures' must be positive numbers", path=source)
        return values
    if "temperature" in calibration:
        try:
            value = float(calibration["temperature"])
        except (TypeError, ValueError):
            value = float("nan")
        if not value > 0:
            raise DataError("'temperature' must be a positive number", path=source)
        return value
    return None


def _auto_class(task: str) -> Any:
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    return AutoModelForTokenClassification if task == "ner" else AutoModelForSequenceClassification


def _merged(model: Any) -> Any:
    """Fold a PEFT adapter into its base: no adapter overhead at inference, and the merged
    ``nn.Linear`` layers can be quantised like any other."""
    # Only a model peft built can be a PeftModel, and building one imported peft: importing it
    # here for the check alone cost every load 0.2 s.
    peft = sys.modules.get("peft")
    if peft is None:
        return model
    return model.merge_and_unload() if isinstance(model, peft.PeftModel) else model


def _load_with_config(directory: Path, run_config: dict[str, Any] | None) -> tuple[Any, Any, str]:
    """A directory with ``config.json`` (plain, pooled, or adapter saved by ``tunesmith train``).

    The trainer's :func:`tunesmith.engine.modeling.load_classifier` knows its own layouts (the
    mean-pooling flag, adapters with their base); the model it returns is merged here.
    """
    # read_config restores the real model type of a directory marked for plain transformers.
    config = read_config(directory)
    architectures = getattr(config, "architectures", None) or []
    heads = ("ForSequenceClassification", "ForTokenClassification")
    if (
        not getattr(config, TASK_KEY, None)
        and architectures
        and not any(a.endswith(heads) for a in architectures)
    ):
        # A bare encoder would load with a random head and print confident nonsense.
        if (directory / SENTENCE_MODULES_FILE).is_file():
            # `train --task pairs` writes these: the user did train it, as an encoder.
            raise ModelNotFoundError(
                f"{directory} is a sentence encoder ({architectures[0]} with sentence-"
                "transformers pooling, such as `tunesmith train --task pairs` saves), not a "
                "classifier: it has no labels to predict, evaluate, calibrate, explain or "
                "export; load it with SentenceTransformer or tunesmith.retrieval.Encoder.load, "
                f"or fine-tune a classifier from it with `tunesmith train --model {directory} "
                "--data FILE`"
            )
        raise ModelNotFoundError(
            f"{directory} is a base model ({architectures[0]}), not a trained classifier; "
            f"fine-tune it first with `tunesmith train --model {directory} --data FILE`"
        )
    task = _task_from_config(config, run_config)
    model = _merged(load_classifier(directory))
    return model, config, task


def _adapter_head_size(directory: Path) -> int | None:
    """Number of outputs of the classifier head stored with a PEFT adapter, if it is there."""
    weights = directory / "adapter_model.safetensors"
    if not weights.exists():
        return None
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
            if key.endswith(("classifier.weight", "score.weight", "out_proj.weight")):
                return int(handle.get_slice(key).get_shape()[0])
    return None


def _load_bare_adapter(directory: Path, run_config: dict[str, Any] | None) -> tuple[Any, Any, str]:
    """A PEFT adapter directory without ``config.json`` (saved by PEFT itself, not by us)."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoConfig

    adapter = PeftConfig.from_pretrained(str(directory))
    base_name = adapter.base_model_name_or_path
    if not base_name:
        raise ModelNotFoundError(f"{directory}/adapter_config.json names no base model")
    base = resolve_model(base_name)
    config = AutoConfig.from_pretrained(base.location, trust_remote_code=False)
    labels = (run_config or {}).get("labels") or (run_config or {}).get("label_names")
    if not labels:
        size = _adapter_head_size(directory)
        if size is None:
            raise ModelNotFoundError(
                f"{directory} is an adapter without label names (no config.json, no labels "
                "in run_config.json)"
            )
        labels = [f"LABEL_{i}" for i in range(size)]
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    task = _task_from_config(config, run_config)
    if str(getattr(adapter, "task_type", "") or "").endswith("TOKEN_CLS"):
        task = "ner"
    if task == "multilabel":
        config.problem_type = "multi_label_classification"
    base_model = _auto_class(task).from_pretrained(
        base.location, config=config, trust_remote_code=False
    )
    model = _merged(PeftModel.from_pretrained(base_model, str(directory)))
    return model, config, task


def _load_tokenizer(directory: Path, run_config: dict[str, Any] | None) -> Any:
    from transformers import AutoTokenizer

    if any((directory / name).exists() for name in TOKENIZER_FILES):
        return AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
    adapter = read_json_object(directory / ADAPTER_CONFIG_FILE) or {}
    config = read_json_object(directory / CONFIG_FILE) or {}
    base_name = (
        config.get(BASE_MODEL_KEY)
        or adapter.get("base_model_name_or_path")
        or (run_config or {}).get("model")
    )
    if not base_name:
        raise ModelNotFoundError(f"{directory} has no tokenizer files")

    return AutoTokenizer.from_pretrained(resolve_model(base_name).location, trust_remote_code=False)


def load_model(
    path: str | Path, *, quantize: str | None = None, device: str = "cpu"
) -> LoadedModel:
    """Load the model directory ``path`` in eval mode, with its labels, task and calibration.

    ``quantize="int8"`` quantises the linear layers to int8 (CPU serving), with the activation
    ranges in ``int8_ranges.json`` when the directory has them. ``device``: ``cpu`` (the
    default), ``auto``, ``cuda``, ``cuda:N`` or ``mps`` (:func:`tunesmith.devices.resolve_device`);
    the weights are float32 wherever they were trained or saved.
    Raises :class:`ModelNotFoundError` when ``path`` is missing or is not a model directory,
    :class:`UserInputError` for a device this machine lacks or int8 off the CPU.
    """
    if quantize not in (None, "int8"):
        raise UserInputError(f"unknown quantisation {quantize!r}; the choice is 'int8'")
    directory = _check_model_dir(path)
    _check_weights(directory)

    configure_threads()  # before transformers imports torch: see threads.py
    device = resolve_device(device, quantize=quantize)
    run_config = read_json_object(directory / RUN_CONFIG_FILE)
    calibration = read_json_object(directory / CALIBRATION_FILE)
    from safetensors import SafetensorError

    with quiet_transformers():
        try:
            if (directory / CONFIG_FILE).exists():
                model, config, task = _load_with_config(directory, run_config)
            else:
                model, config, task = _load_bare_adapter(directory, run_config)
            tokenizer = cap_tokenizer_length(_load_tokenizer(directory, run_config), config)
        except (OSError, ValueError, RecursionError, SafetensorError) as exc:
            # One line: a library's message may span several (the CLI prints one Error line).
            reason = " ".join(str(exc).split())
            raise ModelNotFoundError(
                f"{directory} could not be loaded as a model: {reason}"
            ) from exc
    model = as_float32(model).to(device)
    model.eval()
    _check_finite(model, directory)
    labels = _labels_from_config(config)
    if task == "ner" and calibration:
        calibration = None  # temperatures are fitted for sequence classifiers only
    loaded = LoadedModel(
        model=model,
        tokenizer=tokenizer,
        task=task,
        labels=labels,
        temperature=_temperature_from(calibration, labels, directory),
        calibration=calibration,
        path=directory,
        run_config=run_config,
        max_length=_max_length(tokenizer, config, run_config),
    )
    if task == "classification":
        lexical = LexicalModel.load(directory)
        if lexical is not None:
            if list(lexical.labels) != list(labels):  # its columns would mix into other labels
                raise ModelNotFoundError(
                    f"{directory / LEXICAL_FILE}: its labels {lexical.labels} are not the "
                    f"model's {list(labels)}; train the model again"
                )
            loaded.extra["lexical"] = lexical
    if quantize == "int8":
        loaded.model = quantize_int8(loaded.model, ranges=read_int8_ranges(directory))
        loaded.quantized = True
    return loaded
