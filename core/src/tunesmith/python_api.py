"""The core from Python: train a model, then predict, explain, evaluate and calibrate with it.

Each call runs what its command runs (``train``, ``predict``, ``explain``, ``evaluate``,
``calibrate``, the same functions) and returns what the command's ``--json`` prints, as plain
dicts and lists. A mistake is the :class:`~tunesmith.errors.UserInputError` line the command
prints after ``Error:``. Nothing heavy is imported until a function runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.python_data import keyword_errors

PathLike = str | os.PathLike

#: The flags whose keyword here is not their own name (``keyword_errors``).
_KEYWORDS = {"--eval": "eval_data", "--text": "texts"}
#: Errors name the keywords a caller passed, not the commands' flags.
_keywords = keyword_errors(_KEYWORDS)

#: Train keywords the API takes in its own way (``as_json``: the return value is the JSON).
_NOT_OPTIONS = ("as_json", "data", "eval_data", "unlabelled", "out")


def _train_defaults() -> dict[str, Any]:
    """Every ``tunesmith train`` option by parameter name, at its default."""
    import inspect

    from tunesmith.commands.engine.train import train_command

    return {
        name: param.default.default
        for name, param in inspect.signature(train_command).parameters.items()
    }


def _unknown_keyword(name: str, known: Iterable[str]) -> TypeError:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else " (the keywords are train's flags)"
    return TypeError(f"train() got an unexpected keyword argument {name!r}{hint}")


@_keywords
def train(
    data: Any = None,
    out: PathLike | None = None,
    *,
    texts: Iterable[str] | None = None,
    labels: Iterable[Any] | None = None,
    eval_data: Any = None,
    unlabelled: Any = None,
    text_col: str = "text",
    label_col: str = "label",
    model: str = "default",
    task: str = "auto",
    strategy: str = "full",
    epochs: float | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    max_length: int | None = None,
    seed: int = 42,
    device: str = "auto",
    precision: str = "fp32",
    force: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Fine-tune a model and save it in the folder ``out``: ``tunesmith train --json``'s
    document (``model_dir``, ``task``, ``strategy``, ``metrics``, ``resolved``).

    ``data``: a file path (any file ``--data`` reads), a pandas DataFrame, a list of dicts or a
    dict of columns, each with ``text_col`` and ``label_col``; or give ``texts=`` and
    ``labels=`` instead. ``eval_data`` (labelled held-out data) takes the same forms and
    ``unlabelled`` (``--unlabelled``) a path or a list of texts. In-memory data is written as
    JSONL under ``$TUNESMITH_HOME/python_data`` for the run. Every other keyword is a train
    flag in snake case (``class_weights="auto"``, ``no_calibrate=True``, ``lexical=0.3``).
    Progress goes to stderr."""
    import contextlib
    import inspect

    from tunesmith.commands.engine.output import plain_json
    from tunesmith.commands.engine.train import check_train_options, train_report
    from tunesmith.commands.engine.train_config import _run_config
    from tunesmith.python_data import DATA_FORMS, data_file

    defaults = _train_defaults()
    for name in options:
        if name not in defaults or name in _NOT_OPTIONS:
            own = [n for n in inspect.signature(train).parameters if n != "options"]
            raise _unknown_keyword(name, own + [n for n in defaults if n not in _NOT_OPTIONS])
    if task == "pairs":
        raise UserInputError(
            "task='pairs' is not in the Python API; run `tunesmith train --task pairs`"
        )
    if (texts is None) != (labels is None):
        raise UserInputError("give texts= and labels= together")
    if texts is not None:
        if data is not None:
            raise UserInputError("give data, or texts= and labels=, not both")
        data = {text_col: _listed(texts, "texts"), label_col: _listed(labels, "labels")}
    if data is None:
        raise UserInputError(f"data: give {DATA_FORMS}, or texts= and labels=")
    if out is None:
        raise UserInputError("out: give the folder to save the model in")
    given = dict(defaults)
    given.update(options)
    given.update(
        text_col=text_col, label_col=label_col, model=model, task=task, strategy=strategy,
        epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
        device=device, precision=precision, force=force, out=Path(out), as_json=True,
    )  # fmt: skip
    with contextlib.ExitStack() as files:
        columns = (text_col, label_col)
        # The same data gives the same file: `resume=True` compares it with the killed run's.
        given["data"] = files.enter_context(
            data_file(data, what="data", columns=columns, stable=True)
        )
        if eval_data is not None:
            given["eval_data"] = files.enter_context(
                data_file(eval_data, what="eval_data", columns=columns, stable=True)
            )
        if unlabelled is not None:
            given["unlabelled"] = files.enter_context(
                data_file(unlabelled, what="unlabelled", columns=(text_col,), texts_ok=True,
                          stable=True)
            )  # fmt: skip
        check_train_options(given)
        run = _run_config(given).validate()
        from tunesmith.engine.train import train as train_run

        path = train_run(run)
        return plain_json(train_report(run, path))


def _listed(values: Iterable[Any], what: str) -> list[Any]:
    """A list of ``values`` (a list, a pandas Series, a numpy array); one string is refused,
    as it would be split into its characters."""
    if isinstance(values, (str, bytes, Mapping)):
        raise UserInputError(f"{what}: give a list, got {type(values).__name__}")
    try:
        return list(values)
    except TypeError:
        raise UserInputError(f"{what}: give a list, got {type(values).__name__}") from None


def text_list(texts: str | Iterable[str]) -> list[str]:
    """One text or a list of them (a Series, an array), each a non-empty string, as a list: a
    blank one left out would move every later result onto the wrong text. A mistake is one
    :class:`~tunesmith.errors.UserInputError` naming ``texts[i]``. The plugins' Python APIs
    read their texts with it too."""
    from tunesmith.data.limits import cli_text

    listed = [texts] if isinstance(texts, str) else _listed(texts, "texts")
    for number, text in enumerate(listed):
        where = f"texts[{number}]"
        if not isinstance(text, str):
            name = type(text).__name__
            article = "an" if name[:1].lower() in "aeiou" else "a"
            raise UserInputError(f"{where} is {article} {name}, not a string")
        if not text.strip():
            raise UserInputError(f"{where} is empty; there is nothing to read")
        cli_text(text, where)
    return [str(text) for text in listed]


def _positive(value: int | None, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UserInputError(f"{what} must be a whole number of at least 1, got {value!r}")


class Model:
    """A model folder from ``train`` (a seed ensemble with its members), loaded once for many
    calls, as the commands load it. Open one with :func:`load`."""

    def __init__(
        self, path: PathLike, *, quantize: str | None = None, device: str = "auto"
    ) -> None:
        """See :func:`load`."""
        from tunesmith.devices import check_device

        if quantize not in (None, "int8"):
            # the engine's line, which the commands and finance.load_model print too
            raise UserInputError(f"unknown quantisation {quantize!r}; the choice is 'int8'")
        check_device(device, quantize=quantize)
        self.path = Path(path)
        self.quantize = quantize
        self.device = device
        self._models: list[Any] | None = None
        self._float: list[Any] | None = None
        from tunesmith.commands.engine.ensemble_note import say_if_ensemble

        first, *members = self._models_now()
        say_if_ensemble(self.path, first, members)
        self._task: str = first.task  # for repr, which must not load the models again

    def __repr__(self) -> str:
        extra = "" if self.quantize is None else f", quantize={self.quantize!r}"
        extra += "" if self.device == "auto" else f", device={self.device!r}"
        return f"Model({str(self.path)!r}, task={self._task!r}{extra})"

    def _models_now(self) -> list[Any]:
        """The loaded model and its ensemble members (loaded again after :meth:`calibrate`)."""
        if self._models is None:
            from tunesmith.engine.ensemble import load_ensemble

            self._models = load_ensemble(self.path, quantize=self.quantize, device=self.device)
        return self._models

    @property
    def task(self) -> str:
        """``classification``, ``multilabel`` or ``ner``."""
        return self._models_now()[0].task

    @property
    def labels(self) -> list[str]:
        """The labels (a tagger's tags), in the order of the model's outputs."""
        return list(self._models_now()[0].labels)

    @_keywords
    def predict(
        self,
        texts: str | Iterable[str],
        *,
        top_k: int | None = None,
        calibrated: bool = True,
        batch_size: int = 32,
    ) -> list[dict[str, Any]]:
        """Label texts (one string or a list): a record per text, in order, as ``predict
        --json`` prints them (``text``, ``label``, ``score``, ``probabilities``; a multi-label
        model's ``labels`` and ``scores``, a tagger's ``entities``); ``top_k`` adds ``top``,
        the k most probable labels; ``calibrated=False`` leaves out the temperature."""
        from tunesmith.engine.predict import predict_texts

        checked = text_list(texts)
        _positive(top_k, "top_k")
        _positive(batch_size, "batch_size")
        loaded, *members = self._models_now()
        if top_k is not None and loaded.task == "ner":
            raise UserInputError("top_k applies to classifiers; a NER model lists its entities")
        if not checked:
            return []
        results = predict_texts(
            loaded,
            checked,
            calibrated=calibrated,
            top_k=top_k,
            batch_size=batch_size,
            members=members,
        )
        from tunesmith.commands.engine.output import plain_json

        return plain_json([{"text": t, **r} for t, r in zip(checked, results, strict=True)])

    @_keywords
    def explain(
        self,
        texts: str | Iterable[str],
        *,
        target: str | None = None,
        method: str | None = None,
        steps: int | None = None,
        html: PathLike | None = None,
        force: bool = False,
    ) -> list[dict[str, Any]]:
        """Each word's attribution towards the predicted label (or ``target``), with the
        faithfulness scores: a record per text, as ``explain --text T --json`` prints it (the
        lines of ``explain --data`` are these records with an ``index``). One text is explained
        as ``--text`` is (50-step ``ig``), several as ``--data`` is (``ig-midpoint``), unless
        ``method`` says otherwise. ``html``: also write the heatmap page there."""
        from tunesmith.commands.explain import (
            CHUNK,
            _explain_chunk,
            _record,
            _report_truncation,
            _write_html,
            checked_steps,
            choose_method,
        )

        checked = text_list(texts)
        _positive(steps, "steps")
        if html is not None:
            from tunesmith.io import check_output_file, check_writable_dir

            check_output_file(html, "html")
            check_writable_dir(html, force=force)
        explicit = method is not None
        method, chosen = choose_method(method, single=len(checked) == 1)
        loaded, *members = self._explainable()
        steps = checked_steps(loaded, target, method, chosen, steps, explicit=explicit)
        items: list[Any] = []
        for start in range(0, len(checked), CHUNK):
            chunk = _explain_chunk(
                loaded,
                checked[start : start + CHUNK],
                target=target,
                method=method,
                steps=steps,
                progress=None,
                members=members,
            )
            _report_truncation(chunk, start, loaded.max_length, single=len(checked) == 1)
            items += chunk
        if html is not None:
            _write_html(Path(html), items, force=force)
        from tunesmith.commands.engine.output import plain_json

        return plain_json([_record(item, text) for item, text in zip(items, checked, strict=True)])

    def _explainable(self) -> list[Any]:
        """The models to explain: gradients need the float weights, so an int8 model is
        explained through a float copy, as ``explain`` (which takes no ``--quantize``) does."""
        if self.quantize is None:
            return self._models_now()
        if self._float is None:
            from tunesmith.engine.ensemble import load_ensemble
            from tunesmith.engine.threads import configure_threads

            configure_threads()
            self._float = load_ensemble(self.path, device=self.device)
        return self._float

    @_keywords
    def evaluate(
        self,
        data: Any,
        *,
        text_col: str = "text",
        label_col: str = "label",
        label_sep: str | None = None,
        batch_size: int = 32,
        plot: PathLike | None = None,
    ) -> dict[str, Any]:
        """Measure the model on labelled data (a file path, a DataFrame, a list of dicts or a
        dict of columns): ``evaluate --json``'s report (accuracy, F1, per-label scores, ECE and
        NLL; a tagger's entity scores). ``plot``: a folder for the confusion matrix and
        reliability diagram. A model loaded with ``quantize="int8"`` is measured as loaded. The
        report's ``data`` is the file's path, or null for in-memory data."""
        from tunesmith.commands.engine.evaluate import evaluation_report
        from tunesmith.commands.engine.output import plain_json
        from tunesmith.python_data import data_file, is_path

        _positive(batch_size, "batch_size")
        if plot is not None:
            from tunesmith.io import check_output_folder

            check_output_folder(plot, "plot")
        loaded, *members = self._models_now()
        with data_file(data, what="data", columns=(text_col, label_col)) as path:
            report = evaluation_report(
                loaded,
                members,
                path,
                text_col=text_col,
                label_col=label_col,
                label_sep=label_sep,
                batch_size=batch_size,
                plot=None if plot is None else Path(plot),
            )
        if not is_path(data):
            report["data"] = None  # not the temporary file, gone with the call
        return plain_json(report)

    @_keywords
    def calibrate(
        self,
        data: Any,
        *,
        text_col: str = "text",
        label_col: str = "label",
        label_sep: str | None = None,
        batch_size: int = 32,
        plot: PathLike | None = None,
    ) -> dict[str, Any]:
        """Refit the temperature on held-out labelled data (the forms :meth:`evaluate` takes)
        and save it in the model folder: ``calibrate --json``'s result. This object predicts
        with the new temperature from the next call. ``plot``: a reliability diagram PNG. The
        saved ``fitted_on`` names the file, or says ``in-memory data (N records)``."""
        from tunesmith.commands.calibrate import calibrate_locked
        from tunesmith.commands.engine.output import plain_json
        from tunesmith.python_data import data_file, is_path

        _positive(batch_size, "batch_size")
        with data_file(data, what="data", columns=(text_col, label_col)) as path:
            source = None
            if not is_path(data):  # the file is gone after the call
                with path.open(encoding="utf-8") as handle:
                    source = f"in-memory data ({sum(1 for _ in handle)} records)"
            result = calibrate_locked(
                self.path,
                path,
                text_col=text_col,
                label_col=label_col,
                label_sep=label_sep,
                batch_size=batch_size,
                plot=None if plot is None else Path(plot),
                device=self.device,
                source=source,
            )
        # The files changed under the loaded models: their temperatures are the old ones.
        self._models = self._float = None
        return plain_json(result)


@_keywords
def load(path: PathLike, *, quantize: str | None = None, device: str = "auto") -> Model:
    """The model folder at ``path`` (from ``train``), loaded for :meth:`Model.predict`,
    :meth:`Model.explain`, :meth:`Model.evaluate` and :meth:`Model.calibrate`.
    ``quantize="int8"``: int8 linear layers, faster on a CPU; ``device``: ``auto``, ``cpu``,
    ``cuda``, ``cuda:N`` or ``mps``."""
    return Model(path, quantize=quantize, device=device)
