"""The plugin from Python: build a knowledge base, calibrate it, ask it questions.

Each function runs what its command runs (``support index``, ``calibrate``, ``train``,
``eval``, ``ask``, ``feedback``, ``stats``) and returns what the command's ``--json`` prints,
as plain dicts and lists. A mistake is the :class:`~tunesmith.errors.UserInputError` line the
command prints after ``Error:``. Nothing heavy is imported until a function runs.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.python_data import is_path, keyword_errors

PathLike = str | os.PathLike

#: Errors name this API's keywords, not the commands' flags (``--out`` is ``index``'s ``kb``).
_keywords = keyword_errors(
    {
        "--out": "kb",
        "--language": "languages",
        "--sink": "sinks",
        "--encoder": "encoder=True",
        "--classifier": "classifier=True",
        "--index-questions": "index_questions=True",
        "`tunesmith support calibrate --kb KB --data questions.csv` (or `support train`)": (
            "kb.calibrate(data) (or kb.train(data))"
        ),
    }
)


@contextlib.contextmanager
def _data_files(data: Any, question_col: str, answer_col: str) -> Iterator[list[Path]]:
    """``data`` as the files the commands' repeatable ``--data`` reads: one file or a list of
    them as they are, in-memory data (a DataFrame, a list of dicts, a dict of columns) as the
    one JSONL file :func:`tunesmith.python_data.data_file` writes for the call, as the core's
    ``Model.calibrate`` takes it."""
    from tunesmith.python_data import data_file

    if is_path(data):
        yield [Path(data)]
        return
    if isinstance(data, (list, tuple)) and data and all(is_path(item) for item in data):
        yield [Path(item) for item in data]
        return
    if isinstance(data, (list, tuple)) and not data:
        raise UserInputError("data: the list is empty")
    with data_file(data, what="data", columns=(question_col, answer_col)) as path:
        yield [path]


def _text(value: object, what: str) -> str:
    """A text argument; anything else is one line, not a tokenizer's ``TypeError``."""
    from tunesmith.data.limits import cli_text

    if not isinstance(value, str):
        raise UserInputError(f"the {what} must be a string, got {type(value).__name__}")
    return cli_text(value, f"the {what}")


@_keywords
def index(
    source: PathLike,
    kb: PathLike,
    *,
    question_col: str | None = None,
    answer_col: str | None = None,
    id_col: str | None = None,
    category_col: str | None = None,
    model: str | None = None,
    languages: Sequence[str] = (),
    device: str = "auto",
) -> dict[str, Any]:
    """Import FAQ files and documents at ``source`` into the knowledge base folder ``kb``, or
    update it (only new and changed entries are encoded): ``support index --json``.

    The column arguments and ``model`` default to the KB's own on a re-run; ``languages``:
    the KB's language codes (``support index --language``)."""
    from tunesmith.devices import check_device
    from tunesmith.io import check_output_folder
    from tunesmith.locks import run_lock
    from tunesmith_support.kbindex import build_index, faq_columns
    from tunesmith_support.languages import (
        check_language_codes,
        english_model_note,
        read_language_config,
    )

    if not is_path(source) or not is_path(kb):
        # Path() of a DataFrame is a TypeError deep in the reader. The KB remembers its source
        # files to update them later, so data in memory has no place here: write it out first.
        what, value = ("source", source) if not is_path(source) else ("kb", kb)
        raise UserInputError(
            f"{what}: give a file or folder path, got {type(value).__name__}"
            + ("; write a DataFrame to a CSV file first" if what == "source" else "")
        )
    out = Path(kb)
    check_device(device)
    columns = faq_columns(
        out, question=question_col, answer=answer_col, id=id_col, category=category_col
    )
    check_output_folder(out, "--out")
    codes = check_language_codes(list(languages))
    read_language_config(out)
    with run_lock(out):
        report = build_index(
            Path(source), out, columns=columns, model=model, device=device, languages=codes or None
        )
    note = english_model_note(out)
    if note:
        warnings.warn(note, stacklevel=2)
    return {"kb": str(out), **report.to_dict()}


def _labelled(kb: Path, data: list[Path], question_col: str, answer_col: str) -> list[Any]:
    """The labelled questions of ``data``, their ids checked against the KB (no encoder)."""
    from tunesmith_support.kbindex import kb_entries, renamed_ids
    from tunesmith_support.learning import read_labelled

    known = {e.id for e in kb_entries(kb)}
    return read_labelled(
        data, known, question_col=question_col, answer_col=answer_col, renamed=renamed_ids(kb)
    )


class KnowledgeBase:
    """A knowledge base at work: calibrate, train and evaluate it, and answer questions in
    conversations, each turn and its feedback stored in the KB's conversation database and
    each hand-off sent to its sinks, as the ``support`` commands do. Open one with
    :meth:`open`; close it (or use ``with``) when done."""

    @_keywords
    def __init__(
        self,
        path: PathLike,
        *,
        db: PathLike | None = None,
        sinks: Sequence[str] | None = None,
        device: str = "auto",
    ) -> None:
        """See :meth:`open`."""
        from tunesmith.devices import check_device
        from tunesmith_support.kbindex import read_meta

        self.path = Path(path)
        check_device(device)
        # Before the conversation database is opened, which would make a mistyped folder.
        read_meta(self.path)
        self._db = None if db is None else Path(db)
        self._sinks = [sinks] if isinstance(sinks, str) else list(sinks or [])
        self._device = device
        self._service = self._open_service()
        self._closed = False
        #: kb_stamp of the files the answerer read, once a question has loaded it.
        self._stamp: tuple[int, ...] | None = None

    @classmethod
    def open(
        cls,
        path: PathLike,
        *,
        db: PathLike | None = None,
        sinks: Sequence[str] | None = None,
        device: str = "auto",
    ) -> KnowledgeBase:
        """The KB at ``path`` (from :func:`index`). ``db``: the conversation database (default
        ``KB/conversations.sqlite``); ``sinks``: where hand-offs go (``jsonl:PATH``,
        ``stdout``, ``webhook:URL``; default ``jsonl:KB/handoffs.jsonl``); ``device``: where
        its models run. The models load at the first question. :func:`load` is the same,
        under the name the core and the other plugins use."""
        return cls(path, db=db, sinks=sinks, device=device)

    def _open_service(self) -> Any:
        from tunesmith_support.commands.shared import open_service

        return open_service(self.path, self._db, self._sinks or None, device=self._device)

    def _current_service(self) -> Any:
        """The service, opened again when the KB's files changed since its models loaded
        (a re-index, ``calibrate`` or ``train`` from here or from a terminal): a notebook
        keeps the object open across them, and would answer from the old index and
        calibration. Not while one of them is still writing (its run lock names a live
        process): a ``train`` half done holds a new index beside the old calibration, so the
        rule is the server's (:func:`~tunesmith_support.reload.writer_pid`)."""
        from tunesmith_support.answer import kb_stamp
        from tunesmith_support.reload import writer_pid

        self._check_open()
        if (
            self._stamp is not None
            and kb_stamp(self.path) != self._stamp
            and writer_pid(self.path) is None
        ):
            self._service.close()
            self._service = self._open_service()
            self._stamp = None
        return self._service

    @_keywords
    def ask(self, question: str, conversation: str | None = None) -> dict[str, Any]:
        """Answer ``question``, in a new conversation or in ``conversation`` (the
        ``conversation_id`` of an earlier result): ``support ask --json``, with ``decision``
        (answer, clarify, handoff), ``text``, ``confidence``, ``entry``, ``turn_id`` ..."""
        question = _text(question, "question")
        if conversation is not None:
            conversation = _text(conversation, "conversation id")
        service = self._current_service()
        turn = service.ask(question, conversation, channel="python")
        self._stamp = service.answerer.loaded_stamp
        return turn.to_dict()

    @_keywords
    def feedback(
        self,
        turn: int,
        *,
        helpful: bool | None = None,
        correct_id: str | None = None,
        note: str = "",
        conversation: str | None = None,
    ) -> None:
        """Store feedback on a turn (``turn_id`` of :meth:`ask`): helpful or not, or the right
        entry's id; ``conversation``: refused unless the turn is that conversation's
        (``support feedback``)."""
        # numbers.Integral: a turn_id read back from a DataFrame of turns is a numpy int
        if isinstance(turn, bool) or not isinstance(turn, numbers.Integral):
            raise UserInputError(f"turn must be a turn id (an int), got {turn!r}")
        turn = int(turn)
        if helpful is None and correct_id is None:
            raise UserInputError("give helpful=True, helpful=False or correct_id=ID")
        self._current_service().feedback(
            turn,
            helpful=helpful,
            correct_id=None if correct_id is None else _text(correct_id, "correct id"),
            note=_text(note, "note"),
            conversation_id=conversation,
        )

    @_keywords
    def stats(self, by: str = "day") -> list[dict[str, Any]]:
        """Answer, clarify and hand-off rates and feedback per day, week or month:
        ``support stats --json``."""
        from tunesmith_support.conversations import check_period
        from tunesmith_support.kbindex import renamed_ids

        check_period(by)
        self._check_open()
        return self._service.conversations.stats(by, renamed_ids(self.path))

    @_keywords
    def calibrate(
        self,
        data: Any,
        *,
        question_col: str = "question",
        answer_col: str = "answer_id",
        target_precision: float = 0.9,
        lexical: bool = True,
    ) -> dict[str, Any]:
        """Fit the confidence and the answer/clarify thresholds on labelled questions (a file,
        a list of files, or a pandas DataFrame, list of dicts or dict of columns with
        ``question_col`` and ``answer_col``): ``support calibrate --json``."""
        from tunesmith_support.commands.shared import kb_writer
        from tunesmith_support.learning import calibrate_kb

        with _data_files(data, question_col, answer_col) as files:
            rows = _labelled(self.path, files, question_col, answer_col)
        with kb_writer(self.path):
            calibration = calibrate_kb(
                self.path,
                rows,
                target_precision=target_precision,
                lexical=lexical,
                device=self._device,
            )
        return calibration.to_dict()

    @_keywords
    def train(
        self,
        data: Any,
        *,
        question_col: str = "question",
        answer_col: str = "answer_id",
        encoder: bool = True,
        classifier: bool = False,
        index_questions: bool = False,
        held_out: float = 0.3,
        epochs: float = 3.0,
        classifier_epochs: float | None = None,
        classifier_members: int = 1,
        target_precision: float = 0.9,
        seed: int = 42,
        precision: str = "fp32",
    ) -> dict[str, Any]:
        """Learn from past questions (tune the encoder and/or an intent classifier), re-encode
        and calibrate: ``support train --json``. ``data``: the forms :meth:`calibrate` takes.
        Progress lines go to stderr."""
        from tunesmith_support.commands.shared import kb_writer
        from tunesmith_support.learning import train_kb

        with _data_files(data, question_col, answer_col) as files, kb_writer(self.path):
            return train_kb(
                self.path,
                files,
                question_col=question_col,
                answer_col=answer_col,
                encoder=encoder,
                classifier=classifier,
                index_questions=index_questions,
                held_out=held_out,
                epochs=epochs,
                classifier_epochs=classifier_epochs,
                classifier_members=classifier_members,
                target_precision=target_precision,
                seed=seed,
                log=lambda message: print(message, file=sys.stderr),
                device=self._device,
                precision=precision,
            )

    @_keywords
    def evaluate(
        self,
        data: Any,
        *,
        question_col: str = "question",
        answer_col: str = "answer_id",
        follow_ups: PathLike | None = None,
    ) -> dict[str, Any]:
        """Hit@1, hit@5, MRR, decision rates, precision and ECE on labelled questions (the
        forms :meth:`calibrate` takes; and,
        with ``follow_ups``, how follow-ups are read): ``support eval --json``. Nothing is
        stored."""
        from tunesmith_support.evaluate import evaluate, follow_up_report
        from tunesmith_support.learning import read_conversations

        service = self._current_service()
        answerer = service.answerer
        self._stamp = answerer.loaded_stamp
        with _data_files(data, question_col, answer_col) as files:
            rows = _labelled(self.path, files, question_col, answer_col)
        questions, expected = [r.question for r in rows], [r.answer_id for r in rows]
        result = evaluate(answerer, questions, expected)
        if follow_ups is not None:
            conversations = read_conversations(follow_ups, set(answerer.scorer.position))
            result.update(follow_up_report(answerer, questions, expected, conversations))
        return result

    def close(self) -> None:
        """Close the conversation database (hand-offs not yet delivered stay in the outbox)."""
        self._service.close()
        self._closed = True

    def _check_open(self) -> None:
        # Not the store's own "the store is closed", which names a file, not this object; and
        # a reload here would open the database again behind a closed object.
        if self._closed:
            raise UserInputError(
                f"the knowledge base {str(self.path)!r} is closed; open it again with "
                "KnowledgeBase.open()"
            )

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return f"KnowledgeBase({str(self.path)!r}{state})"


def load(
    path: PathLike,
    *,
    db: PathLike | None = None,
    sinks: Sequence[str] | None = None,
    device: str = "auto",
) -> KnowledgeBase:
    """The knowledge base at ``path`` (from :func:`index`), opened for questions, as
    ``tunesmith.load`` opens a core model and ``tunesmith_finance.load`` and
    ``tunesmith_recommend.load`` theirs: :meth:`KnowledgeBase.open` (still there) under the
    shared name. ``db``, ``sinks`` and ``device`` as :meth:`KnowledgeBase.open` takes them;
    close it (or use ``with``) when done."""
    return KnowledgeBase(path, db=db, sinks=sinks, device=device)
