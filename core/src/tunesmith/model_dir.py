"""The model-directory format: every file name and ``config.json`` key tunesmith writes or reads.

A trained model directory is a plain transformers directory (``config.json``, the weights, the
tokenizer) plus tunesmith's own files beside it. Writers (training, pair training, calibrate,
save) and readers (loading, predict, explain, export, retrieval) take the names from here, so
the format is spelt once. Nothing here imports anything heavy.

Files::

    config.json                  transformers' config, with the tunesmith_* keys below
    model.safetensors            the weights (a LoRA adapter merged in)
    tokenizer.json, ...          the tokenizer, as transformers saves it
    run_config.json              the RunConfig and what the run resolved (``resolved``)
    metrics.json                 held-out metrics (``report``), calibration figures
    cleaning_report.json         what data cleaning dropped or fixed
    calibration.json             temperature(s) fitted on held-out data
    int8_ranges.json             activation ranges recorded on training texts (--quantize int8)
    nearest_examples.safetensors the stored examples of nearest-example scores
    confusion_matrix.png         plots of the held-out data
    reliability.png
    README.md                    the model card
    model.onnx                   tunesmith export's default file (not written by train)
    runs/                        TensorBoard logs (--tensorboard)
"""

from __future__ import annotations

from pathlib import Path

# --- files --------------------------------------------------------------------------------------

CONFIG_FILE = "config.json"
RUN_CONFIG_FILE = "run_config.json"
METRICS_FILE = "metrics.json"
CLEANING_REPORT_FILE = "cleaning_report.json"
CALIBRATION_FILE = "calibration.json"
INT8_RANGES_FILE = "int8_ranges.json"
NEAREST_FILE = "nearest_examples.safetensors"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
RELIABILITY_FILE = "reliability.png"
MODEL_CARD_FILE = "README.md"
TENSORBOARD_DIR = "runs"
ONNX_FILE = "model.onnx"
#: A bare PEFT adapter directory has this instead of ``config.json``.
ADAPTER_CONFIG_FILE = "adapter_config.json"
#: A sentence-transformers directory (a `train --task pairs` encoder) lists its modules here.
SENTENCE_MODULES_FILE = "modules.json"
#: sentence-transformers keeps its pooling mode here.
SENTENCE_POOLING_CONFIG = Path("1_Pooling") / CONFIG_FILE
#: Weight files transformers may have written, in the order it prefers them.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
#: Weight files of a PEFT adapter (in a checkpoint of a LoRA run).
ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")

# --- keys tunesmith adds to config.json ---------------------------------------------------------

#: ``"mean"`` for tunesmith's mean-pooling head; absent for the model's own head.
POOLING_KEY = "tunesmith_pooling"
#: ``classification``, ``multilabel`` or ``ner``.
TASK_KEY = "tunesmith_task"
#: The base model's name, for a directory that is only an adapter or an encoder.
BASE_MODEL_KEY = "tunesmith_base_model"
#: Marks a directory whose LoRA adapter was merged on save.
ADAPTER_KEY = "tunesmith_adapter"
#: The real ``model_type`` of a directory whose ``config.json`` names a marker type.
BASE_TYPE_KEY = "tunesmith_base_model_type"
#: Nearest-example scores: ``{"weight", "temperature", "examples"}``.
NEAREST_KEY = "tunesmith_nearest"
#: The lexical n-gram model's share of the probabilities (``--lexical``; ``lexical.json``).
LEXICAL_KEY = "tunesmith_lexical"
