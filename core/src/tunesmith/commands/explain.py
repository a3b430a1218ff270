"""``tunesmith explain``: why a model decided, word by word, with faithfulness scores.

Heavy libraries are imported inside the command body, so ``tunesmith --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import typer

from tunesmith.devices import check_device, device_option

# Shared with the playground, which explains one text as `explain --text` does.
from tunesmith.explain.methods import DEFAULT_STEPS, SINGLE_TEXT_METHOD

#: Texts explained per chunk with --data: bounds memory whatever the file's size (each forward
#: pass is bounded by tokens anyway). Larger chunks share more: texts of one length share one
#: baseline row in integrated gradients, and passes are fuller.
CHUNK = 128


@contextlib.contextmanager
def _atomic_stream(path: Path, *, force: bool) -> Iterator[TextIO]:
    """A text file written through a temporary sibling and renamed into place on success."""
    from tunesmith.io import atomic_open, check_writable_dir

    check_writable_dir(path, force=force)
    with atomic_open(path) as handle:
        yield handle


def _record(item: Any, text: str, index: int | None = None) -> dict[str, Any]:
    """The JSON shape of one explained text (a classifier's, or a tagger's entity list)."""
    if isinstance(item, list):  # NER: the entities of one text
        data: dict[str, Any] = {"text": text, "entities": [e.to_dict() for e in item]}
    else:
        data = item.to_dict()
    if index is not None:
        data = {"index": index, **data}
    return data


def _summary(item: Any, text: str, *, multilabel: bool = False) -> str:
    """A few readable lines for one explanation (without --json). A multi-label model's
    ``label`` is its most probable one, which may be below 0.5, where ``predict`` lists none."""
    if isinstance(item, list):
        if not item:
            return f"{text!r}: no entities predicted"
        lines = []
        for entity in item:
            words = sorted(entity.tokens, key=lambda t: -t.score)[:5]
            drivers = ", ".join(f"{w.word} {w.score:+.3f}" for w in words)
            lines.append(
                f"{entity.label} {entity.entity!r} (p={entity.probability:.3f}): {drivers}"
            )
        return "\n".join(lines)
    words = sorted(item.tokens, key=lambda t: -t.score)[:8]
    said = "predicted"
    if multilabel:
        said = (
            "most probable label"
            if item.probability >= 0.5
            else "no label above 0.5; most probable"
        )
    lines = [
        f"{said} {item.label} (p={item.probability:.3f}); explaining {item.target} "
        f"(p={item.target_probability:.3f}) with {item.method}",
        "words towards it: " + ", ".join(f"{w.word} {w.score:+.4f}" for w in words),
    ]
    from tunesmith.explain.faithfulness import faithfulness_figures

    # The playground shows the same figures, each with its meaning.
    scores = [f"{name} {value}" for name, value, _ in faithfulness_figures(item)]
    if scores:
        lines.append(", ".join(scores))
    return "\n".join(lines)


def _explain_chunk(
    loaded: Any,
    texts: list[str],
    *,
    target: str | None,
    method: str,
    steps: int,
    progress: Any,
    members: list[Any] | None = None,
) -> list[Any]:
    from tunesmith.explain.attribute import explain_loaded

    options: dict[str, Any] = {"n_steps": steps, "progress": progress, "warn": None}
    if loaded.task != "ner":
        # A seed ensemble is explained as `predict` scores it: the mean of its members.
        options.update(target=target, method=method, members=members or [])
    return list(explain_loaded(loaded, texts, **options))


def _check_options(loaded: Any, target: str | None, method: str | None) -> None:
    """Refuse options that do not apply; ``method`` is ``None`` when the user gave none."""
    from tunesmith.errors import UserInputError

    if loaded.task == "ner":
        if target is not None:
            raise UserInputError(
                "--target applies to classifiers; a NER model is explained per predicted entity"
            )
        if method not in (None, "ig"):
            raise UserInputError("NER models are explained with integrated gradients (--method ig)")
    elif target is not None and target not in loaded.labels:
        raise UserInputError(
            f"unknown target label {target!r}; the model's labels are: {', '.join(loaded.labels)}"
        )


def choose_method(method: str | None, *, single: bool) -> tuple[str, Any]:
    """The attribution method's name and object: ``method``, else 50-step integrated
    gradients for a single text (precise, a small delta, under a second) and the measured fast
    default for many (docs/benchmarks.md, Explanations). An unknown name is refused here,
    before the model loads."""
    from tunesmith.explain.methods import DEFAULT_METHOD, get_method

    name = method or (SINGLE_TEXT_METHOD if single else DEFAULT_METHOD)
    return name, get_method(name)


def checked_steps(
    loaded: Any, target: str | None, method: str, chosen: Any, steps: int | None, *, explicit: bool
) -> int:
    """The integration steps to use once the model is loaded, after refusing a ``target`` or
    ``method`` it does not take (``explicit``: the user named the method) and ``steps`` with
    a method that takes none."""
    from tunesmith.errors import UserInputError

    _check_options(loaded, target, method if explicit else None)
    # NER models are always explained with ig, which takes the steps.
    if steps is not None and loaded.task != "ner" and not getattr(chosen, "uses_steps", True):
        raise UserInputError(
            f"--steps does not apply to --method {method}, which takes no integration steps; "
            "use it with ig, ig-adaptive or captum-ig"
        )
    return steps if steps is not None else DEFAULT_STEPS


def explain_command(
    model: Path = typer.Option(
        ..., "--model", "-m", help="A model directory (from `tunesmith train`)."
    ),
    texts: list[str] | None = typer.Option(
        None, "--text", help="One text to explain (several: put them in a file for --data)."
    ),
    data: Path | None = typer.Option(None, "--data", help="A file of texts: writes JSON lines."),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the text."),
    target: str | None = typer.Option(
        None, "--target", help="Label to explain (default: the predicted one)."
    ),
    method: str | None = typer.Option(
        None,
        "--method",
        help="ig (batched integrated gradients; the default with --text), ig-midpoint (the mean gradient at 2 points around the path's middle; the default with --data, measured as faithful and over 10x faster), ig-adaptive (path rule refined per text until it adds up), occlusion, grad-input, captum-ig (Captum, one text at a time), or a plugin's.",
    ),
    steps: int | None = typer.Option(
        None,
        "--steps",
        min=1,
        help=f"Integrated-gradient steps (ig, ig-adaptive, captum-ig; default {DEFAULT_STEPS}).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (with --text)."),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML heatmap page."),
    out: Path | None = typer.Option(
        None, "--out", help="With --data: write the JSON lines here instead of stdout."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite --out / --html if they exist."),
    device: str = device_option(),
) -> None:
    """Explain predictions: each word's attribution, the IG convergence delta, and how faithful
    the explanation is (comprehensiveness: the probability drop when the top 20% words are
    removed; sufficiency: the drop when only they are kept).

    Classifiers: per text (the predicted label, or --target). NER models: per entity. A seed
    ensemble (ensemble.json) is explained as predict scores it: the mean of its members.
    """
    text = _given_text(texts, data, out)
    _check_outputs(out, html, force=force)
    check_device(device)  # a GPU this machine lacks: one line before the model or data loads
    from tunesmith.engine.ensemble import load_ensemble
    from tunesmith.engine.threads import configure_threads

    explicit = method is not None
    method, chosen = choose_method(method, single=text is not None)
    configure_threads()
    # A seed ensemble (ensemble.json) is explained as `predict` scores it, all members at once.
    loaded, *members = load_ensemble(model, device=device)
    steps = checked_steps(loaded, target, method, chosen, steps, explicit=explicit)
    from tunesmith.commands.engine import say_if_ensemble

    say_if_ensemble(model, loaded, members, words=True)
    if text is not None:
        _explain_one(loaded, text, target, method, steps, html, as_json, force, members)
        return
    assert data is not None
    texts = _file_texts(data, text_col)
    _explain_file(
        loaded, texts, target, method, steps, out, html, force, loaded.max_length, members
    )


def _given_text(texts: list[str] | None, data: Path | None, out: Path | None) -> str | None:
    """The one ``--text`` (checked), or ``None`` with ``--data``; refuses both, neither, several
    ``--text`` and ``--out`` without ``--data``."""
    from tunesmith.errors import UserInputError

    if texts and len(texts) > 1:
        # click keeps the last of a repeated option: the others would vanish without a word,
        # where `predict --text A --text B` labels both.
        raise UserInputError(
            f"--text was given {len(texts)} times; explain takes one --text (put several "
            "texts in a file, one per row, and pass --data FILE)"
        )
    text = texts[0] if texts else None
    if (data is None) == (text is None):
        raise UserInputError("pass either --text TEXT or --data FILE (one of them)")
    if out is not None and data is None:
        raise UserInputError("--out goes with --data; with --text the result is printed")
    if text is not None:
        from tunesmith.data.limits import cli_text

        text = cli_text(text)  # not-UTF-8 argv bytes: one line, not the tokenizer's TypeError
        if not text.strip():
            raise UserInputError("the text is empty; there is nothing to explain")
    return text


def _check_outputs(out: Path | None, html: Path | None, *, force: bool) -> None:
    """Refuse ``--out`` and ``--html`` files that cannot be written, before the model loads."""
    from tunesmith.errors import UserInputError
    from tunesmith.io import check_output_file, check_writable_dir

    for path, flag in ((out, "--out"), (html, "--html")):
        if path is not None:
            # A folder first: "exists already; pass --force" would send the user to a flag
            # that cannot help (--force cannot replace a folder with a file).
            check_output_file(path, flag)
            check_writable_dir(path, force=force)
    if out is not None and html is not None and out.resolve() == html.resolve():
        raise UserInputError(
            f"--out and --html are both {out}; the page would overwrite the JSON lines: "
            "give two files"
        )


def _explain_one(
    loaded: Any,
    text: str,
    target: str | None,
    method: str,
    steps: int,
    html: Path | None,
    as_json: bool,
    force: bool,
    members: list[Any],
) -> None:
    """``explain --text``: print the explanation (a summary, or JSON), and write ``--html``."""
    items = _explain_chunk(
        loaded, [text], target=target, method=method, steps=steps, progress=None, members=members
    )
    _report_truncation(items, 0, loaded.max_length, single=True)
    if html is not None:
        _write_html(html, items, force=force)
    if as_json:
        typer.echo(json.dumps(_record(items[0], text), indent=2, ensure_ascii=False))
    else:
        typer.echo(_summary(items[0], text, multilabel=loaded.task == "multilabel"))


def _file_texts(data: Path, text_col: str) -> list[str]:
    """The texts of ``--data``; an empty one is refused, named by its number and column."""
    from tunesmith.data.load import read_texts
    from tunesmith.errors import DataError

    texts = read_texts(data, text_col=text_col)
    for i, value in enumerate(texts):
        if not value.strip():
            raise DataError(
                f"text {i + 1} is empty; there is nothing to explain", path=data, column=text_col
            )
    return texts


def _report_truncation(items: list[Any], offset: int, limit: int, *, single: bool = False) -> None:
    for i, item in enumerate(items):
        truncated = (
            any(getattr(e, "truncated", False) for e in item)
            if isinstance(item, list)
            else item.truncated
        )
        if truncated:
            where = "the text" if single else f"text {offset + i + 1}"
            typer.echo(
                f"warning: {where} is longer than the model's limit of {limit} tokens; only its "
                "first tokens were explained",
                err=True,
            )


def _write_html(path: Path, items: list[Any], *, force: bool) -> None:
    from tunesmith.explain.html import render_html
    from tunesmith.io import atomic_write_text

    flat: list[Any] = []
    for item in items:
        flat.extend(item if isinstance(item, list) else [item])
    atomic_write_text(path, render_html(flat))
    typer.echo(f"wrote {path}", err=True)


def _explain_file(
    loaded: Any,
    texts: list[str],
    target: str | None,
    method: str,
    steps: int,
    out: Path | None,
    html: Path | None,
    force: bool,
    limit: int,
    members: list[Any] | None = None,
) -> None:
    """Explain a file chunk by chunk, streaming JSON lines (and HTML cards) as they come."""
    from tqdm import tqdm

    from tunesmith.explain.html import page_footer, page_header, render_card

    with contextlib.ExitStack() as stack:
        sink: TextIO = (
            stack.enter_context(_atomic_stream(out, force=force)) if out is not None else sys.stdout
        )
        page = stack.enter_context(_atomic_stream(html, force=force)) if html is not None else None
        if page is not None:
            page.write(page_header())
        bar = stack.enter_context(
            tqdm(total=len(texts), desc="explaining", unit="text", file=sys.stderr, disable=None)
        )
        for start in range(0, len(texts), CHUNK):
            chunk = texts[start : start + CHUNK]
            done = [0.0]

            def progress(amount: float, done: list[float] = done, size: int = len(chunk)) -> None:
                # Methods report fractional texts (IG rows / steps); cap at the chunk's size.
                step = min(amount, size - done[0])
                done[0] += step
                bar.update(step)

            items = _explain_chunk(
                loaded,
                chunk,
                target=target,
                method=method,
                steps=steps,
                progress=progress,
                members=members,
            )
            bar.update(len(chunk) - done[0])
            _report_truncation(items, start, limit)
            for offset, item in enumerate(items):
                sink.write(
                    json.dumps(_record(item, chunk[offset], start + offset), ensure_ascii=False)
                    + "\n"
                )
                if page is not None:
                    for card in item if isinstance(item, list) else [item]:
                        page.write(render_card(card) + "\n")
            sink.flush()
        if page is not None:
            page.write(page_footer())
    for path in (out, html):
        if path is not None:
            typer.echo(f"wrote {path}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``tunesmith explain`` to ``app``."""
    app.command("explain")(explain_command)
