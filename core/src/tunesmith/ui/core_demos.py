"""The core's own demo: train a model on sample data (or open one), then classify and explain.

Nothing heavy happens when the tab is built: the model is trained or loaded on first use. Typed
model directories are opened only inside the allowed roots (see ``ui/model_access.py``).
"""

from __future__ import annotations

from typing import Any

from tunesmith.data.limits import text_problem
from tunesmith.engine.config import RunConfig
from tunesmith.engine.predict import predict_texts
from tunesmith.engine.train import train
from tunesmith.explain.attribute import explain_loaded
from tunesmith.hooktypes import Demo
from tunesmith.plugins import collect_list
from tunesmith.ui.highlight import explanation_to_highlights, highlight_component
from tunesmith.ui.model_access import demo_models_dir, load_allowed

__all__ = ["build_playground", "classify", "core_demos", "demo_models_dir", "train_on_sample"]


def sample_sets() -> dict[str, Any]:
    """Classification sample data sets from every plugin, by name."""
    found: dict[str, Any] = {}
    for sample in collect_list("tunesmith_sample_data"):
        if sample.task == "classification":
            found[sample.name] = sample  # the plugin registered last wins a name
    return found


def train_on_sample(name: str, base_model: str = "default") -> str:
    """Train a quick head-only model on a sample set (once) and return its directory."""
    sample = sample_sets()[name]
    out = demo_models_dir() / name
    if (out / "config.json").exists():
        return str(out)
    run = RunConfig(
        data=str(sample.paths["train"]),
        eval_data=str(sample.paths["eval"]) if "eval" in sample.paths else None,
        out=str(out),
        model=base_model,
        strategy="head",
        force=True,
    )
    return str(train(run))


def classify(model_dir: str, text: str) -> tuple[dict[str, float], Any, str]:
    """Label probabilities, highlighted words and a one-line note for one text."""
    if not text.strip():
        raise ValueError("Type a text to classify.")

    problem = text_problem(text)  # the same rule as --text: a lone surrogate, an endless text
    if problem is not None:
        raise ValueError(problem)
    loaded = load_allowed(model_dir)  # inside the allowed roots only, from a bounded cache
    prediction = predict_texts(loaded, [text])[0]
    # The label shown: with a lexical share (--lexical) it may not be the transformer's own.
    target = prediction["label"] if loaded.task == "classification" else None
    explanation = explain_loaded(loaded, [text], target=target)[0]
    note = (
        f"Predicted **{prediction['label']}** ({prediction['score']:.0%}). Highlighted words "
        f"pushed towards it (positive) or away from it (negative)."
    )
    return prediction["probabilities"], explanation_to_highlights(explanation), note


def build_playground() -> Any:
    """The 'Classify & explain' tab."""
    import gradio as gr

    sets = sorted(sample_sets())
    with gr.Blocks() as blocks:
        gr.Markdown(
            "### Classify & explain\nTrain a quick model on built-in sample data (head-only "
            "fine-tuning of the default model, under a minute on a laptop CPU), or enter the "
            "directory of a model you trained with `tunesmith train`. Then type a text."
        )
        with gr.Row():
            sample = gr.Dropdown(sets, value=sets[0] if sets else None, label="Sample data")
            train_button = gr.Button("Train on sample data")
        model_dir = gr.Textbox(label="Model directory", placeholder="path/to/model")
        text = gr.Textbox(label="Text", placeholder="My card has not arrived yet", lines=2)
        go = gr.Button("Classify", variant="primary")
        note = gr.Markdown()
        probabilities = gr.Label(label="Probabilities", num_top_classes=5)

        words = highlight_component(label="Why")

        def on_train(name: str) -> str:
            if not name:
                raise gr.Error("No sample data set is installed.")
            try:
                return train_on_sample(name)
            except Exception as exc:
                raise gr.Error(str(exc)) from exc

        def on_classify(directory: str, value: str) -> tuple[Any, Any, str]:
            try:
                return classify(directory, value)
            except Exception as exc:
                raise gr.Error(str(exc)) from exc

        train_button.click(on_train, inputs=sample, outputs=model_dir)
        go.click(on_classify, inputs=[model_dir, text], outputs=[probabilities, words, note])
    return blocks


def core_demos() -> list[Demo]:
    """The core's demos, registered through ``tunesmith_demos`` like any plugin's."""
    return [
        Demo(
            name="playground",
            title="Classify & explain",
            build=build_playground,
            description="Train on sample data or open a model; classify and explain a text.",
        )
    ]
