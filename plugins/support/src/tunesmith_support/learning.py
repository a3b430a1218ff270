"""`support train` and `support calibrate`: learn from past questions and their answers.

Past questions (a file with a question and the id of the entry that answered it; an empty id
marks a question the KB cannot answer) are split into a training part and a held-out part. The
training part fine-tunes the encoder on (question, entry text) pairs with the core's pair
training and/or trains an intent classifier over entry ids with the core engine; the KB is then
re-encoded with the tuned encoder; the held-out part fits the calibration and thresholds.

Everything is written beside what is served (a new encoder, index and classifier folder, a new
calibration file) and ``kb.json`` is switched to all of them at once at the end
(:mod:`tunesmith_support.kbgenerations`): a `train` killed at any point, or refused at its
calibration, leaves the KB as it was.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.data.limits import names_for_message
from tunesmith.data.readers import ROW_KEY, data_file, reader_for
from tunesmith.devices import check_precision, resolve_device
from tunesmith.engine.checks import check_epochs
from tunesmith.engine.config import RunConfig
from tunesmith.engine.ensemble import check_members, train_ensemble
from tunesmith.errors import DataError, UserInputError
from tunesmith.retrieval import train_pair_encoder
from tunesmith.retrieval.pairs import check_pair_settings
from tunesmith_support.calibrate import (
    MIN_QUESTIONS,
    Calibration,
    check_target_precision,
    fit_calibration,
)
from tunesmith_support.kbgenerations import (
    classifier_path,
    commit,
    fitted_on,
    next_generation,
)
from tunesmith_support.kbindex import (
    CLASSIFIER_DIR,
    index_past_questions,
    load_encoder,
    model_location,
    new_encoder_dir,
    open_index,
    read_meta,
    reencode_staged,
    remove_unused,
    renamed_in,
    stored_entries,
)
from tunesmith_support.kblexical import load_for as load_lexical
from tunesmith_support.languages import read_language_config
from tunesmith_support.scoring import OUT_OF_SCOPE, IntentModel, Scorer, save_examples

#: Out-of-scope training questions needed before the classifier learns them as a label.
MIN_OUT_OF_SCOPE = 5


@dataclass(frozen=True)
class Labelled:
    """A past question and the entry id that answers it (``""``: out of scope)."""

    question: str
    answer_id: str
    source: str
    row: int


def read_labelled(
    paths: list[str | Path],
    known_ids: set[str],
    *,
    question_col: str = "question",
    answer_col: str = "answer_id",
    renamed: dict[str, str] | None = None,
) -> list[Labelled]:
    """Labelled questions from data files (CSV, TSV, JSONL, JSON, Parquet, Excel); an unknown answer id is an error, an
    id the KB gave a new one (``renamed``: :func:`~tunesmith_support.kbindex.renamed_ids`) is
    read as the new one."""
    out: list[Labelled] = []
    for path in map(Path, paths):
        if not data_file(path).exists():  # book.xlsx#Sheet: the book
            raise UserInputError(f"{path}: no such file")
        rows = list(reader_for(path)(path))
        if not rows:
            raise DataError("no rows", path=path)
        header = set(rows[0]) - {ROW_KEY}
        for name in (question_col, answer_col):
            if name not in header:
                raise DataError(
                    f"no column '{name}' (columns: {names_for_message(sorted(header))})", path=path
                )
        for row in rows:
            line = int(row.get(ROW_KEY) or 0)
            question = str(row.get(question_col) or "").strip()
            answer_id = str(row.get(answer_col) or "").strip()
            answer_id = (renamed or {}).get(answer_id, answer_id)
            if not question:
                raise DataError("empty question", path=path, row=line, column=question_col)
            if answer_id and answer_id not in known_ids:
                raise DataError(
                    f"answer id '{answer_id}' is not in the knowledge base",
                    path=path,
                    row=line,
                    column=answer_col,
                )
            out.append(Labelled(question, answer_id, str(path), line))
    return out


def read_conversations(path: str | Path, known_ids: set[str]) -> list[tuple[str, str, str]]:
    """``(previous question, follow-up, answer id)`` rows of a two-turn conversation file
    (columns ``previous``, ``question``, ``answer_id``)."""
    previous = read_labelled([path], known_ids, question_col="previous")
    follow = read_labelled([path], known_ids)
    return [(p.question, f.question, f.answer_id) for p, f in zip(previous, follow, strict=True)]


def check_training_device(device: str, precision: str, *, classifier: bool) -> None:
    """Refuse, in one line, a ``--device`` this machine lacks, a ``--precision`` it cannot run
    there, and mixed precision without ``--classifier``: the encoder's pair training has its
    own loop, in fp32, and would ignore it."""
    chosen = check_precision(precision, resolve_device(device))
    if chosen != "fp32" and not classifier:
        raise UserInputError(
            f"--precision {chosen} applies to the intent classifier (--classifier); the "
            "encoder's pair training runs in fp32"
        )


def split_held_out(
    rows: list[Labelled], fraction: float, seed: int = 42
) -> tuple[list[Labelled], list[Labelled]]:
    """(training, held out): ``fraction`` of each answer id's questions held out (at least one
    question stays in training for ids with two or more), out-of-scope ones likewise."""
    by_id: dict[str, list[Labelled]] = {}
    for row in rows:
        by_id.setdefault(row.answer_id, []).append(row)
    rng = random.Random(seed)
    train, held = [], []
    for answer_id in sorted(by_id):
        group = by_id[answer_id][:]
        rng.shuffle(group)
        n = round(len(group) * fraction)
        if answer_id and len(group) >= 2:
            n = min(max(n, 1), len(group) - 1)
        held += group[:n]
        train += group[n:]
    return train, held


def scorer_for(
    kb_dir: str | Path,
    *,
    with_lexical: bool = True,
    device: str = "cpu",
    meta: dict[str, Any] | None = None,
) -> Scorer:
    """A scorer over the KB (or the generation ``meta`` describes) with every optional score
    loaded (to choose weights), its models on ``device``."""
    kb_dir = Path(kb_dir)
    meta = read_meta(kb_dir) if meta is None else meta
    index = open_index(kb_dir, load_encoder(kb_dir, device=device, meta=meta), meta)
    entries = stored_entries(index)
    languages = read_language_config(kb_dir).languages
    lexical = load_lexical(kb_dir, meta, entries, languages) if with_lexical else None
    classifier = classifier_path(kb_dir, meta)
    intent = IntentModel(classifier, device=device) if classifier.exists() else None
    return Scorer(index, entries, lexical, intent)


def calibrate_kb(
    kb_dir: str | Path,
    questions: list[Labelled],
    *,
    target_precision: float = 0.9,
    lexical: bool = True,
    device: str = "cpu",
    meta: dict[str, Any] | None = None,
) -> Calibration:
    """Fit the KB's calibration on labelled held-out questions (scored on ``device``) and
    commit it: with ``meta`` (the generation `train` built beside the KB), the KB switches to
    that generation and this calibration in one step."""
    kb_dir = Path(kb_dir)
    meta = dict(read_meta(kb_dir) if meta is None else meta)
    scorer = scorer_for(kb_dir, with_lexical=lexical, device=device, meta=meta)
    calibration = fit_calibration(
        scorer,
        [q.question for q in questions],
        [q.answer_id for q in questions],
        target_precision=target_precision,
    )
    calibration.fitted_on = fitted_on(kb_dir, meta)
    staged = kb_dir / f"calibration-{next_generation(kb_dir)}.json"
    calibration.save(staged)
    meta["calibration"] = staged.name
    commit(kb_dir, meta)  # the commit point
    remove_unused(kb_dir)
    return calibration


def pair_texts(rows: list[Labelled], entries: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(query, target) pairs: each question with its entry's indexed texts."""
    queries, targets = [], []
    for row in rows:
        if not row.answer_id:
            continue
        for _vid, _field, text in entries[row.answer_id].vectors():
            queries.append(row.question)
            targets.append(text)
    return queries, targets


def check_train_arguments(
    *,
    encoder: bool,
    classifier: bool,
    index_questions: bool,
    held_out: float,
    epochs: float,
    classifier_epochs: float | None,
    classifier_members: int,
    target_precision: float,
) -> None:
    """Refuse :func:`train_kb` arguments that cannot work, before the KB's encoder loads, the
    questions are read or a line is logged: a bad ``epochs`` was found only by the pair
    training, after "fine-tuning the encoder on N pairs", and a bad ``classifier_epochs`` only
    after the encoder had been tuned."""
    if not (encoder or classifier or index_questions):
        raise UserInputError(
            "nothing to train: give --encoder, --classifier and/or --index-questions"
        )
    if not 0.0 < held_out < 1.0:
        raise UserInputError(f"--held-out must be between 0 and 1, got {held_out}")
    if encoder:
        check_pair_settings(epochs=epochs)
    if classifier:
        if classifier_epochs is not None:
            check_epochs(classifier_epochs, "--classifier-epochs")
        check_members(classifier_members, "full")
    # Re-encoding replaces the KB's encoder and index, so a calibration refused after training
    # would leave the KB on them with its old calibration.
    check_target_precision(target_precision)


def train_kb(
    kb_dir: str | Path,
    data: list[str | Path],
    *,
    question_col: str = "question",
    answer_col: str = "answer_id",
    encoder: bool = True,
    classifier: bool = False,
    held_out: float = 0.3,
    epochs: float = 3.0,
    classifier_epochs: float | None = None,
    classifier_members: int = 1,
    index_questions: bool = False,
    target_precision: float = 0.9,
    seed: int = 42,
    log: Any = print,
    device: str = "auto",
    precision: str = "fp32",
) -> dict[str, Any]:
    """Fine-tune the KB's encoder and/or an intent classifier, then calibrate.

    Everything runs on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``:
    :func:`tunesmith.devices.resolve_device`); ``precision`` is the classifier's (the engine's
    ``--precision``; the encoder's pair training runs in fp32). Both are checked before the
    data is read.

    ``index_questions`` also indexes the training questions as extra question vectors of the
    entries that answered them (their cosine is then part of the retrieval score).
    ``classifier_members`` > 1 trains the classifier as a seed ensemble
    (:mod:`tunesmith.engine.ensemble`).

    Returns what was done and measured (pair metrics, classifier path, calibration report).
    """
    kb_dir = Path(kb_dir)
    meta = read_meta(kb_dir)
    # The generation this run builds beside the KB; committed with its calibration, at the end.
    staged = dict(meta)
    check_train_arguments(
        encoder=encoder,
        classifier=classifier,
        index_questions=index_questions,
        held_out=held_out,
        epochs=epochs,
        classifier_epochs=classifier_epochs,
        classifier_members=classifier_members,
        target_precision=target_precision,
    )
    # Before the questions are read: a GPU this machine lacks is one line, not a late traceback.
    check_training_device(device, precision, classifier=classifier)
    # One kb.json throughout: the generation ``staged`` starts from.
    index = open_index(kb_dir, load_encoder(kb_dir, device=device, meta=meta), meta)
    entries = {e.id: e for e in stored_entries(index)}
    rows = read_labelled(
        data,
        set(entries),
        question_col=question_col,
        answer_col=answer_col,
        renamed=renamed_in(meta),
    )
    train_rows, held_rows = split_held_out(rows, held_out, seed)
    if not any(r.answer_id for r in train_rows):
        raise UserInputError("no training questions with an answer id after holding out")
    if len(held_rows) < MIN_QUESTIONS:
        raise UserInputError(
            f"calibration needs at least {MIN_QUESTIONS} held-out questions, got "
            f"{len(held_rows)} (--held-out {held_out} of {len(rows)}); give more questions or "
            "a larger --held-out"
        )
    result: dict[str, Any] = {
        "questions": len(rows),
        "train": len(train_rows),
        "held_out": len(held_rows),
    }
    try:
        calibration = _train_and_calibrate(
            kb_dir, staged, entries, train_rows, held_rows, result,
            encoder=encoder, classifier=classifier, index_questions=index_questions,
            epochs=epochs, classifier_epochs=classifier_epochs,
            classifier_members=classifier_members, target_precision=target_precision,
            seed=seed, log=log, device=device, precision=precision,
        )  # fmt: skip
    except Exception:
        # Nothing was committed, so the KB answers as before; what was trained goes.
        remove_unused(kb_dir)
        raise
    result["calibration"] = calibration.report
    return result


def _train_and_calibrate(
    kb_dir: Path,
    staged: dict[str, Any],
    entries: dict[str, Any],
    train_rows: list[Labelled],
    held_rows: list[Labelled],
    result: dict[str, Any],
    *,
    encoder: bool,
    classifier: bool,
    index_questions: bool,
    epochs: float,
    classifier_epochs: float | None,
    classifier_members: int,
    target_precision: float,
    seed: int,
    log: Any,
    device: str,
    precision: str,
) -> Calibration:
    """:func:`train_kb`'s training into ``staged`` (a generation beside the KB), then its
    calibration, which commits them together."""
    if encoder:
        queries, targets = pair_texts(train_rows, entries)
        eval_q, eval_t = pair_texts(held_rows, entries)

        new = new_encoder_dir(kb_dir)
        log(f"fine-tuning the encoder on {len(queries)} pairs")
        trained = train_pair_encoder(
            queries,
            targets,
            new,
            model=model_location(kb_dir, staged),
            eval_queries=eval_q or None,
            eval_targets=eval_t or None,
            epochs=epochs,
            seed=seed,
            force=True,
            device=device,
        )
        result["pair_metrics"] = trained.metrics
        log("re-encoding the knowledge base with the tuned encoder")
        staged.update(
            reencode_staged(
                kb_dir, staged, list(entries.values()), Path(trained.path), device=device
            )
        )
    if index_questions:
        pairs = [(r.question, r.answer_id) for r in train_rows if r.answer_id]
        result["indexed_questions"] = index_past_questions(
            kb_dir, pairs, device=device, meta=staged
        )
        log(f"indexed {result['indexed_questions']} past questions")
    if classifier:
        path = train_classifier(
            kb_dir,
            train_rows,
            out=kb_dir / f"{CLASSIFIER_DIR}-{next_generation(kb_dir)}",
            meta=staged,
            held=held_rows,
            epochs=classifier_epochs,
            members=classifier_members,
            seed=seed,
            log=log,
            device=device,
            precision=precision,
        )
        staged["classifier"] = Path(path).name
        result["classifier"] = str(path)
    log(f"calibrating on {len(held_rows)} held-out questions")
    try:
        return calibrate_kb(
            kb_dir, held_rows, target_precision=target_precision, device=device, meta=staged
        )
    except UserInputError as exc:
        if type(exc) is not UserInputError:
            raise  # a located error keeps its file, row and column
        # Found only now (the held-out questions all answered right by what was just trained)
        raise UserInputError(
            f"{exc}. The knowledge base is unchanged (what was trained is discarded)"
        ) from None


def train_classifier(
    kb_dir: Path,
    rows: list[Labelled],
    *,
    out: Path | None = None,
    meta: dict[str, Any] | None = None,
    held: list[Labelled] | None = None,
    epochs: float | None = None,
    members: int = 1,
    seed: int = 42,
    log: Any = print,
    device: str = "auto",
    precision: str = "fp32",
) -> Path:
    """An intent classifier over entry ids (the core engine), saved in ``out`` (default
    ``KB/classifier``), starting from the encoder of the KB (or of ``meta``); a seed ensemble
    of ``members`` runs when above 1.

    Out-of-scope questions (no answer id) become the label :data:`OUT_OF_SCOPE` when there are
    at least :data:`MIN_OUT_OF_SCOPE`. ``held`` questions are the engine's held-out data (early
    stopping and its temperature); ``epochs`` None lets the engine choose. ``device`` and
    ``precision``: the engine's ``--device`` and ``--precision``."""
    import csv
    import tempfile

    labelled = [(r.question, r.answer_id) for r in rows if r.answer_id]
    if len({label for _, label in labelled}) < 2:
        raise UserInputError("an intent classifier needs questions for at least two answer ids")
    outside = [(r.question, OUT_OF_SCOPE) for r in rows if not r.answer_id]
    if len(outside) >= MIN_OUT_OF_SCOPE:
        # Their own label: its probability is an out-of-scope score the confidence reads.
        labelled += outside
    known = {label for _, label in labelled}
    held_rows = [(r.question, r.answer_id or OUT_OF_SCOPE) for r in held or []]
    held_rows = [(q, label) for q, label in held_rows if label in known]
    log(f"training an intent classifier on {len(labelled)} questions")
    with tempfile.TemporaryDirectory() as tmp:

        def write(name: str, table: list[tuple[str, str]]) -> str:
            path = Path(tmp) / name
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["text", "label"])
                writer.writerows(table)
            return str(path)

        data = write("train.csv", labelled)
        run = RunConfig(
            data=data,
            eval_data=write("held.csv", held_rows) if len(held_rows) >= 2 else None,
            epochs=epochs,
            out=str(out or kb_dir / CLASSIFIER_DIR),
            model=model_location(kb_dir, read_meta(kb_dir) if meta is None else meta),
            seed=seed,
            force=True,
            device=device,
            precision=precision,
        )
        out = train_ensemble(run, members, log=log)
    # What the classifier learned from, in its own space: the confidence reads how close a
    # question comes to it (out-of-scope questions excluded: nearness to them is no evidence).
    save_examples(out, [q for q, label in labelled if label != OUT_OF_SCOPE], device=device)
    return out
