"""The model card (``README.md`` in the model directory): what was trained, on what, how well."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith import __version__
from tunesmith.engine.config import RunConfig
from tunesmith.engine.modeling import plain_transformers_gaps
from tunesmith.model_dir import LEXICAL_KEY, NEAREST_KEY, POOLING_KEY


def _given(value: Any, default: Any) -> Any:
    """``value``, or ``default`` when the run did not resolve it (``None``)."""
    return default if value is None else value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _metrics_table(metrics: dict[str, Any]) -> list[str]:
    report = metrics.get("report") or {}
    if not report:
        return [metrics.get("note") or "No held-out data: no metrics were measured."]
    lines = []
    if report.get("task") == "ner":
        lines += ["| entity type | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for name, row in sorted(report.get("per_type", {}).items()):
            lines.append(
                f"| {name} | {_fmt(row['precision'])} | {_fmt(row['recall'])} | "
                f"{_fmt(row['f1'])} | {row['support']} |"
            )
        micro = report.get("micro", {})
        lines.append(
            f"| **micro** | {_fmt(micro.get('precision'))} | {_fmt(micro.get('recall'))} | "
            f"{_fmt(micro.get('f1'))} | {micro.get('support', '-')} |"
        )
        return lines
    keys = [
        ("accuracy", "accuracy"),
        ("micro_f1", "micro F1"),
        ("macro_f1", "macro F1"),
        ("weighted_f1", "weighted F1"),
        ("ece", "expected calibration error (15 bins)"),
        ("nll", "negative log-likelihood"),
    ]
    lines += ["| metric | value |", "|---|---|"]
    for key, label in keys:
        if key in report:
            lines.append(f"| {label} | {_fmt(report[key])} |")
    lexical = metrics.get("lexical") or {}
    if "mixed_accuracy" in lexical:  # the rows above are the mix's
        lines.append(
            f"| accuracy of the transformer / the lexical model alone | "
            f"{_fmt(lexical.get('transformer_accuracy'))} / "
            f"{_fmt(lexical.get('lexical_accuracy'))} |"
        )
    calibration = metrics.get("calibration") or {}
    if calibration:
        temp = calibration.get("temperature", calibration.get("temperatures"))
        if isinstance(temp, list):
            temp = f"{len(temp)} per-label temperatures"
        lines.append(f"| temperature | {_fmt(temp)} |")
        alone = " (the transformer alone)" if lexical.get("weight") else ""
        lines.append(
            f"| ECE before / after calibration{alone} | {_fmt(calibration.get('ece_before'))} / "
            f"{_fmt(calibration.get('ece_after'))} |"
        )
    return lines


def render_model_card(
    run: RunConfig, metrics: dict[str, Any], cleaning: dict[str, Any] | None = None
) -> str:
    """Markdown for the model card, from the run's settings and what it resolved
    (``run.resolved``), ``metrics.json`` and the cleaning report's dict."""
    lines = [
        *_header_lines(run),
        *_training_lines(run),
        *_recipe_lines(run),
        *_evaluation_lines(run, metrics, cleaning),
        *_use_lines(run),
        *outside_tunesmith_lines(run, metrics),
    ]
    return "\n".join(lines)


def _header_lines(run: RunConfig) -> list[str]:
    """The Hub's front matter, the title and the one-line summary."""
    base_model = _given(run.resolved.base_model_name, run.model)
    task = _given(run.resolved.task, run.task)
    return [
        "---",
        "library_name: transformers",
        f"base_model: {base_model}",
        "tags: [tunesmith]",
        "---",
        "",
        f"# {Path(run.out or 'model').name}",
        "",
        f"A {task} model fine-tuned with tunesmith {__version__}.",
        "",
    ]


def _training_lines(run: RunConfig) -> list[str]:
    """The Training section's lines every card has: model, data, labels, main settings."""
    resolved = run.resolved
    labels = resolved.labels or []
    data_files = [f"`{Path(run.data).name}` (training)"]
    if run.eval_data:
        data_files.append(f"`{Path(run.eval_data).name}` (evaluation and calibration)")
    licence = run.data_license or "not stated (pass `--data-license` to record it)"
    shown_labels = ", ".join(f"`{x}`" for x in labels[:30])
    if len(labels) > 30:
        shown_labels += f", ... ({len(labels)} in all)"
    return [
        "## Training",
        "",
        f"- **Base model:** {_given(resolved.base_model_name, run.model)}",
        f"- **Strategy:** `{run.strategy}`"
        + (f" ({resolved.strategy_note})" if resolved.strategy_note else ""),
        f"- **Pooling:** {_given(resolved.pooling, '-')}",
        f"- **Head initialisation:** {_given(resolved.head_init, '-')}",
        f"- **Data:** {', '.join(data_files)}; {_given(resolved.n_train, '?')} training examples,"
        f" {_given(resolved.n_eval, 0)} held out ({_given(resolved.eval_source, 'none')})",
        f"- **Data licence:** {licence}",
        f"- **Labels ({len(labels)}):** {shown_labels}",
        f"- **Epochs / learning rate / batch size:** {_fmt(resolved.epochs)} / "
        f"{_fmt(resolved.lr)} / {run.batch_size}",
        f"- **Max length:** {resolved.max_length} tokens "
        f"({_given(resolved.max_length_source, '')})",
        f"- **Class weights:** {run.class_weights}; **seed:** {run.seed}",
        f"- **Training time:** {_fmt(resolved.train_seconds)} s",
    ]


def _recipe_lines(run: RunConfig) -> list[str]:
    """A line for each optional part of the recipe the run used (R-Drop, the lexical model,
    epoch averaging, nearest examples, WiSE-FT, ...), then the few-shot note and the run's
    notes."""
    resolved = run.resolved
    lines = []
    if run.label_smoothing or run.layer_decay != 1.0:
        lines.append(
            f"- **Label smoothing / layer-wise learning-rate decay:** {run.label_smoothing:g} / "
            f"{run.layer_decay:g}"
        )
    if run.rdrop:
        lines.append(f"- **R-Drop weight:** {run.rdrop:g} (two dropout passes per batch)")
    if lexical_share(run):
        lines.append(
            f"- **Lexical model:** a TF-IDF n-gram logistic regression takes a {run.lexical:g} "
            "share of the probabilities (lexical.json; `explain` mixes it in too, ONNX exports "
            "leave it out)"
        )
    if resolved.average:
        average = resolved.average
        lines.append(
            f"- **Epoch averaging:** the last {average.get('epochs')} epochs' weights, "
            + ("kept" if average.get("kept") else "not kept")
            + f" ({average.get('source')})"
        )
    if run.augment:
        lines.append(
            f"- **Augmentation:** {', '.join(run.augment)} "
            f"({_given(resolved.n_augmented, 0)} extra training examples)"
        )
    if resolved.n_label_examples:
        lines.append(
            f"- **Label names as examples:** {resolved.n_label_examples} "
            "(each label's name, as words, is one more training text)"
        )
    lines += _nearest_lines(resolved.nearest or {})
    lines += _self_training_lines(resolved.self_training)
    wise = resolved.wise_ft or {}
    if wise.get("weight", 1) < 1:
        lines.append(
            f"- **Weight-space ensemble (WiSE-FT):** {wise['weight']:g} of the fine-tuned "
            f"weights, the rest from the starting point ({wise.get('source', '')})"
        )
    if resolved.few_shot:
        lines += [
            "",
            "**Few-shot defaults** were used because the data is small: "
            + _given(resolved.few_shot_note, ""),
        ]
    lines += [f"- {note}" for note in resolved.notes]
    return lines


def _nearest_lines(nearest: dict[str, Any]) -> list[str]:
    """The card's line on nearest-example scores, if the saved model mixes them in."""
    if nearest.get("weight", 1) >= 1:
        return []
    joined = (
        f"; the {nearest['held_out_added']:,} held-out texts joined the stored examples "
        "after the metrics below were measured on them"
        if nearest.get("held_out_added")
        else ""
    )
    return [
        f"- **Nearest-example scores:** the probabilities are {nearest['weight']:g} the head's "
        f"and {1 - nearest['weight']:g} from the most similar training text of each label "
        f"(temperature {nearest.get('temperature', 0):g}; {nearest.get('source', '')})" + joined
    ]


def _evaluation_lines(
    run: RunConfig, metrics: dict[str, Any], cleaning: dict[str, Any] | None
) -> list[str]:
    """The Evaluation section (the metrics table and its notes), then the cleaning report."""
    measured_on = _given(run.resolved.eval_source, "no data")
    lines = ["", "## Evaluation", "", f"Measured on {measured_on}.", ""]
    lines += _metrics_table(metrics)
    lexical_note = (metrics.get("lexical") or {}).get("note")
    if lexical_note:
        lines += ["", f"Note: {lexical_note}."]
    summary = (cleaning or {}).get("summary_lines") or []
    if summary:
        lines += ["", "## Data cleaning report", "", "```", *summary, "```"]
    return lines


def _use_lines(run: RunConfig) -> list[str]:
    """The Use section: the ``predict`` command, and what loading through tunesmith applies."""
    out = str(run.out or "MODEL_DIR")
    return [
        "",
        "## Use",
        "",
        "```",
        f'tunesmith predict --model {out} --text "..." --json',
        "```",
        "",
        "Through tunesmith (`tunesmith.engine.loading.load_model`) the pooling, the nearest-example"
        " scores and the calibration temperature in this directory are applied.",
        "",
    ]


#: The heading of the card's section on using the model without tunesmith (tests look for it).
OUTSIDE_HEADING = "## Use outside tunesmith"


def outside_tunesmith_lines(run: RunConfig, metrics: dict[str, Any]) -> list[str]:
    """The card's section on using the model without tunesmith: a ``pipeline`` snippet for a
    plain Hugging Face directory, an ONNX export and onnxruntime snippet for one that plain
    transformers refuses (mean pooling, nearest-example scores)."""
    resolved = run.resolved
    task = _given(resolved.task, run.task)
    out = str(run.out or "MODEL_DIR")
    nearest = resolved.nearest or {}
    gaps = plain_transformers_gaps(
        {
            POOLING_KEY: resolved.pooling if task != "ner" else None,
            NEAREST_KEY: {"weight": nearest.get("weight", 1.0)},
            LEXICAL_KEY: lexical_share(run),
        }
    )
    calibrated = bool(metrics.get("calibration")) and task != "ner"
    # What predict truncates at: a plain call would read longer texts whole (another answer) or
    # fail past the position embeddings.
    limit = resolved.predict_max_length or resolved.max_length or 512
    if not gaps:
        return [OUTSIDE_HEADING, "", *_pipeline_lines(task, out, limit, calibrated=calibrated)]
    return [
        OUTSIDE_HEADING,
        "",
        *_onnx_lines(gaps, out, limit, calibrated=calibrated, share=lexical_share(run)),
    ]


def _pipeline_lines(task: str, out: str, limit: int, *, calibrated: bool) -> list[str]:
    """For a plain Hugging Face directory: the ``transformers`` pipeline that loads it, what it
    leaves out (truncation, the temperature) and the ONNX export command."""
    lines = [
        "This is a plain Hugging Face directory: `transformers` computes the probabilities "
        "`tunesmith predict --no-calibrate` gives.",
        "",
        "```python",
        "from transformers import pipeline",
        "",
    ]
    if task == "ner":
        lines += [
            f'tag = pipeline("token-classification", model="{out}", aggregation_strategy="first")',
            'entities = tag(["Maria works for Northwind in Madrid"])',
            "```",
            "",
            f"tunesmith reads at most {limit} tokens of a text and tags the words after "
            "them `O`; the token-classification pipeline cannot truncate, so give it texts "
            "within that.",
            "",
        ]
    else:
        lines += [
            f'classify = pipeline("text-classification", model="{out}", top_k=None)',
            'scores = classify(["first text to label", "a second text"], truncation=True, '
            f"max_length={limit})",
            "```",
            "",
        ]
    if calibrated:
        lines += [
            "Those probabilities are uncalibrated; `calibration.json` holds the temperature"
            " tunesmith divides the logits by. The ONNX export below includes it.",
            "",
        ]
    return lines + [
        f"An ONNX file for other runtimes: `tunesmith export --model {out} --format onnx`.",
        "",
    ]


def _onnx_lines(
    gaps: list[str], out: str, limit: int, *, calibrated: bool, share: float
) -> list[str]:
    """For a directory plain transformers refuses (``gaps`` say why): the ONNX export and an
    onnxruntime snippet that computes what ``predict`` does, less the lexical ``share``."""
    what = " and ".join(
        {"mean_pooling": "reads mean-pooled tokens", "nearest_examples": "mixes in "
         "nearest-training-example scores", "lexical_ngrams": "mixes in a lexical n-gram "
         "model's probabilities"}[g] for g in gaps
    )  # fmt: skip
    without_lexical = (
        f", but without the lexical model's {share:g} share (`lexical.json`), which neither "
        "`transformers` nor an ONNX export computes."
        if share
        else "."
    )
    return [
        f"This model's head {what}, which the standard `transformers` classes cannot compute: "
        "`AutoModelForSequenceClassification` and `pipeline` refuse this directory (its "
        "`model_type` names the reason) rather than answer wrongly. Export it to ONNX "
        "(`pip install 'tunesmith[export]'`): the file computes what `tunesmith predict` does, "
        + ("calibration included" if calibrated else "pooling and scores included")
        + without_lexical,
        "",
        "```bash",
        f"tunesmith export --model {out} --format onnx --out {out}/model.onnx",
        "```",
        "",
        "Then, with `onnxruntime` and `transformers` (for the tokenizer) only:",
        "",
        "```python",
        "import json",
        "",
        "import onnxruntime",
        "from transformers import PreTrainedTokenizerFast",
        "",
        f'tokenizer = PreTrainedTokenizerFast.from_pretrained("{out}")',
        f'session = onnxruntime.InferenceSession("{out}/model.onnx")',
        'texts = ["first text to label", "a second text"]',
        f"batch = tokenizer(texts, padding=True, truncation=True, max_length={limit}, "
        'return_tensors="np")',
        'feeds = {name: batch[name] for name in ("input_ids", "attention_mask")}',
        'probabilities = session.run(["probabilities"], feeds)[0]',
        'labels = json.loads(session.get_modelmeta().custom_metadata_map["labels"])',
        "```",
        "",
    ]


def lexical_share(run: RunConfig) -> float:
    """The share of the lexical model in the run's probabilities: ``--lexical`` for a
    single-label classifier, 0 for the tasks it does not apply to (multi-label, NER)."""
    task = _given(run.resolved.task, run.task)
    return run.lexical if task == "classification" else 0.0


def _self_training_lines(record: dict[str, Any] | None) -> list[str]:
    """The model card's line on ``--unlabelled`` self-training, if the run used it."""
    if not record:
        return []
    rounds = record.get("rounds") or []
    counts = ", ".join(f"{r.get('pseudo_labelled', 0):,}" for r in rounds)
    outcome = (
        "kept"
        if record.get("kept")
        else "undone (it did not help on the held-out data)"
        if record.get("held_out_accuracy")
        else "nothing kept"
    )
    return [
        f"- **Self-training:** {record.get('unlabelled_texts', 0):,} unlabelled texts from "
        f"{record.get('file', '')}; {len(rounds)} round(s) pseudo-labelled {counts} of them at "
        f"probability >= {record.get('threshold', 0):g} and refitted the head; {outcome}"
    ]
