"""`tunesmith support ...`: build a knowledge base, train, answer, serve and review."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

KB_OPTION = typer.Option(..., "--kb", help="Knowledge-base directory (from `support index`).")
DB_HELP = "Conversation database (default: KB/conversations.sqlite)."
QUESTION_COL_HELP = "Column holding the question."
ANSWER_COL_HELP = "Column of the right entry id (empty: out of scope)."
SINK_HELP = "Where hand-offs go (repeatable): jsonl:PATH, stdout, webhook:URL (default: jsonl:KB/handoffs.jsonl)."


def _bar(total_label: str) -> Any:
    """A tqdm bar on stderr for terminals; a callable ``(done, total)``."""
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(
                total=total,
                desc=total_label,
                unit="entry",
                file=sys.stderr,
                leave=False,
                disable=not sys.stderr.isatty(),
            )
        state["bar"].n = done
        state["bar"].refresh()
        if done >= total:
            state["bar"].close()

    return update


def index_command(
    kb: Path = typer.Option(..., "--kb", help="FAQ file, document or directory of both."),
    out: Path = typer.Option(..., "--out", help="Knowledge-base directory to create or update."),
    question_col: str | None = typer.Option(
        None,
        "--question-col",
        help="FAQ question column (default 'question', or the one the KB was built with).",
    ),
    answer_col: str | None = typer.Option(
        None,
        "--answer-col",
        help="FAQ answer column (default 'answer', or the one the KB was built with).",
    ),
    id_col: str | None = typer.Option(
        None,
        "--id-col",
        help="FAQ id column (default: the KB's, else 'id' when present, else ids from questions).",
    ),
    category_col: str | None = typer.Option(
        None,
        "--category-col",
        help="FAQ category/intent column (default: the KB's, else 'category' if present).",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Encoder: 'default' or a model directory (default: the KB's own).",
    ),
    language: list[str] | None = typer.Option(
        None,
        "--language",
        help="The KB's language code, repeatable, the first the default of the bot's own texts "
        "(kept in KB/language.json; default: the KB's, else en).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import FAQ files and documents into a knowledge base; re-running updates only changes.

    In a folder, an empty file (an FAQ with no rows, a document with no text) is skipped and
    named in the report."""
    from tunesmith.io import check_output_folder
    from tunesmith.locks import run_lock
    from tunesmith_support.kbindex import build_index, faq_columns
    from tunesmith_support.languages import (
        check_language_codes,
        english_model_note,
        read_language_config,
        set_languages,
    )

    # A flag not given keeps the column the KB was built with (kb.json records them).
    columns = faq_columns(
        out, question=question_col, answer=answer_col, id=id_col, category=category_col
    )
    check_output_folder(out, "--out")  # before the lock file is put beside it
    # A bad --language or KB/language.json is said before anything is encoded.
    check_language_codes(language or [])
    read_language_config(out)
    with run_lock(out):  # one writer of a KB at a time (see _kb_writer)
        report = build_index(kb, out, columns=columns, model=model, progress=_bar("encoding"))
        if language:
            set_languages(out, language)
    note = english_model_note(out)
    if note:
        typer.echo(f"note: {note}", err=True)
    if as_json:
        typer.echo(json.dumps({"kb": str(out), **report.to_dict()}, indent=2, ensure_ascii=False))
        return
    typer.echo(f"{out}: {report.summary()}")


def calibrate_command(
    kb: Path = KB_OPTION,
    data: list[Path] = typer.Option(
        ..., "--data", help="Held-out questions with answer ids (repeat for several files)."
    ),
    question_col: str = typer.Option("question", "--question-col", help=QUESTION_COL_HELP),
    answer_col: str = typer.Option("answer_id", "--answer-col", help=ANSWER_COL_HELP),
    target_precision: float = typer.Option(
        0.9, "--target-precision", help="Share of answers that must be right (sets thresholds)."
    ),
    lexical: bool = typer.Option(
        True, "--lexical/--no-lexical", help="Try BM25 scores (kept only if they help)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Fit the confidence and the answer/clarify thresholds on labelled held-out questions."""
    from tunesmith_support.kbindex import kb_entries, renamed_ids
    from tunesmith_support.learning import calibrate_kb, read_labelled

    # The ids only: calibrate_kb loads the encoder, once (it was loaded here too).
    rows = read_labelled(
        data,
        {e.id for e in kb_entries(kb)},
        question_col=question_col,
        answer_col=answer_col,
        renamed=renamed_ids(kb),
    )
    with _kb_writer(kb):
        calibration = calibrate_kb(kb, rows, target_precision=target_precision, lexical=lexical)
    _print_calibration(calibration.to_dict(), as_json)


def _kb_writer(kb: Path) -> Any:
    """Hold the KB's run lock (``tunesmith.locks``) while a command rewrites it: two trainings
    at once tuned into one ``encoders/gN`` folder and removed each other's new index, and an
    ``index`` beside a ``train`` wrote back a ``kb.json`` naming the index it had removed.
    A missing folder is not locked (the command says what is wrong with it)."""
    from tunesmith.locks import writing_into

    return writing_into(kb, [], flag="--kb")


def threshold_text(threshold: float) -> str:
    """``>= 0.812``, or ``never`` for a threshold above 1: calibration stores 1.01 when no
    threshold reaches the target precision, and no probability reaches that."""
    return f">= {threshold:.3f}" if threshold <= 1.0 else "never (no threshold reaches it)"


def _print_calibration(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    report = data["report"]
    typer.echo(
        f"answer when confidence {threshold_text(data['answer_threshold'])} "
        f"(target precision {data['target_precision']}); clarify when the top 3 hold the answer "
        f"with p {threshold_text(data['clarify_threshold'])}"
    )
    typer.echo(
        f"held-out: {report['questions']} questions ({report['out_of_scope']} out of scope), "
        f"top-1 {report['top1_accuracy_in_scope']:.3f}, answer rate {report['answer_rate']:.3f} "
        f"at precision {report['answer_precision']:.3f}, ECE {report['ece']:.4f} "
        f"(raw top score {report['ece_uncalibrated_top_score']:.4f})"
    )
    weights = data["weights"]
    line = f"weights: lexical {weights['lexical']}, intent {weights['intent']}; MRR retrieval only {report['mrr_retrieval_only']}"
    if "mrr_best_with_lexical" in report:
        line += f", best with BM25 {report['mrr_best_with_lexical']}"
    if "mrr_best_with_intent" in report:
        line += f", best with intent {report['mrr_best_with_intent']}"
    typer.echo(line)


def train_command(
    kb: Path = KB_OPTION,
    data: list[Path] = typer.Option(
        ...,
        "--data",
        help="Past questions with the id of the entry that answered them (repeat for several files).",
    ),
    question_col: str = typer.Option("question", "--question-col", help=QUESTION_COL_HELP),
    answer_col: str = typer.Option("answer_id", "--answer-col", help=ANSWER_COL_HELP),
    encoder: bool = typer.Option(
        True, "--encoder/--no-encoder", help="Fine-tune the encoder on question/entry pairs."
    ),
    classifier: bool = typer.Option(
        False, "--classifier/--no-classifier", help="Also train an intent classifier over ids."
    ),
    index_questions: bool = typer.Option(
        False,
        "--index-questions/--no-index-questions",
        help="Also index the training questions as extra questions of their entries.",
    ),
    held_out: float = typer.Option(0.3, "--held-out", help="Share kept for calibration."),
    epochs: float = typer.Option(3.0, "--epochs", help="Pair-training epochs."),
    classifier_epochs: float | None = typer.Option(
        None, "--classifier-epochs", help="Classifier epochs (default: the engine's choice)."
    ),
    classifier_members: int = typer.Option(
        1, "--classifier-members", min=1, help="Train the classifier as an N-seed ensemble."
    ),
    target_precision: float = typer.Option(
        0.9, "--target-precision", help="Share of answers that must be right (sets thresholds)."
    ),
    seed: int = typer.Option(42, "--seed", help="Random seed (held-out split, training)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Learn from past questions: tune the encoder and/or a classifier, re-encode, calibrate."""
    from tunesmith_support.learning import train_kb

    with _kb_writer(kb):
        result = train_kb(
            kb,
            list(data),
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
            log=lambda m: typer.echo(m, err=True),
        )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    if "pair_metrics" in result:
        m = result["pair_metrics"]
        typer.echo(
            f"encoder: held-out MRR {m['untuned']['mrr']:.3f} -> {m['tuned']['mrr']:.3f}, "
            f"recall@1 {m['untuned']['recall@1']:.3f} -> {m['tuned']['recall@1']:.3f}"
        )
    if "classifier" in result:
        typer.echo(f"classifier: {result['classifier']}")
    rep = result["calibration"]
    typer.echo(
        f"calibrated on {rep['questions']} held-out questions: top-1 "
        f"{rep['top1_accuracy_in_scope']:.3f}, answer rate {rep['answer_rate']:.3f} at precision "
        f"{rep['answer_precision']:.3f}, ECE {rep['ece']:.4f}"
    )


def _service(
    kb: Path, db: Path | None, sinks: list[str] | None, *, background_delivery: bool = False
) -> Any:
    """The KB's service; its model loads at the first question, except for ``serve``
    (``background_delivery``), whose first customer should not wait for it."""
    from tunesmith_support.service import SupportService

    return SupportService(
        kb,
        db=db,
        sinks=sinks or None,
        background_delivery=background_delivery,
        lazy=not background_delivery,
    )


def stored_db(kb: Path, db: Path | None) -> Path:
    """The conversation database a command reads or rates turns in, which must exist: opening
    a mistyped ``--db`` would create an empty database there, and `export-feedback` would then
    write 0 rows as if nobody had given feedback."""
    from tunesmith.errors import UserInputError
    from tunesmith_support.service import default_db

    path = Path(db or default_db(kb))
    if not path.is_file():
        raise UserInputError(
            f"{path}: no conversation database (nothing asked yet with this KB, or another "
            "--db was meant)"
        )
    return path


def _print_turn(turn: Any) -> None:
    from tunesmith.data.limits import printable

    # Answers, titles and sources come from the KB's files, which may hold escape sequences.
    a = turn.answer
    for note in a.notes:
        typer.echo(printable(f"Note: {note}"), err=True)
    typer.echo(printable(a.text, lines=True))
    detail = f"[{a.decision}"
    if a.reason:
        detail += f": {a.reason}"
    detail += f", confidence {a.confidence:.2f}"
    if a.entry:
        where = a.entry["source"] + (f" > {a.entry['heading']}" if a.entry["heading"] else "")
        detail += f", source {a.entry['id']} ({where})"
    detail += f", turn {turn.turn_id}]"
    typer.echo(printable(detail), err=True)


def ask_command(
    question: str = typer.Argument(..., help="The customer's question."),
    kb: Path = KB_OPTION,
    conversation: str | None = typer.Option(
        None, "--conversation", help="Continue this conversation (its id)."
    ),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    sink: list[str] | None = typer.Option(None, "--sink", help=SINK_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Answer one question: the answer, its source, a confidence and the decision."""
    from tunesmith.events import refuse_stdout_sink_with_json

    refuse_stdout_sink_with_json(sink, as_json)
    service = _service(kb, db, sink)
    try:
        turn = service.ask(question, conversation, channel="cli")
    finally:
        service.close()
    if as_json:
        typer.echo(json.dumps(turn.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_turn(turn)


def is_rating(text: str) -> bool:
    """Whether a chat line rates the last answer (``+``, ``-`` or ``=ID``) instead of asking."""
    return text in ("+", "-") or text.startswith("=")


def chat_command(
    kb: Path = KB_OPTION,
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    sink: list[str] | None = typer.Option(None, "--sink", help=SINK_HELP),
) -> None:
    """A multi-turn conversation in the terminal (empty line or Ctrl-D ends it).

    After an answer, type '+' (helpful), '-' (not helpful) or '=ID' (the right entry).
    """
    from tunesmith.errors import UserInputError

    service = _service(kb, db, sink)
    conversation = None
    last = None
    typer.echo("Ask a question (empty line to stop; + / - / =ID rate the last answer).")
    try:
        while True:
            try:
                line = input("you> ")
            except EOFError:
                break
            if not line.strip():
                break
            text = line.strip()
            if is_rating(text) and last is None:
                # Asked as a question, "+" would be handed off to a person, and a later "=ID"
                # would turn it into a training row.
                typer.echo("Error: no answer to rate yet; ask a question first", err=True)
                continue
            if is_rating(text):
                helpful = {"+": True, "-": False}.get(text)
                correct = text[1:].strip() if text.startswith("=") else None
                if correct == "":
                    typer.echo("Error: '=' needs the right entry's id, e.g. =shp-01", err=True)
                    continue
                try:
                    service.feedback(last, helpful=helpful, correct_id=correct)
                    typer.echo("thanks, feedback stored")
                except UserInputError as exc:
                    typer.echo(f"Error: {exc}", err=True)
                continue
            try:
                turn = service.ask(line, conversation, channel="chat")
            except UserInputError as exc:
                typer.echo(f"Error: {exc}", err=True)
                continue
            conversation = turn.conversation_id
            if turn.answer.reason != "small_talk":
                # "+" after "thanks!" rates the answer thanked for, not the "You're welcome".
                last = turn.turn_id
            _print_turn(turn)
    finally:
        service.close()


def feedback_command(
    kb: Path = KB_OPTION,
    turn: int = typer.Option(..., "--turn", help="The turn id (shown by ask/chat)."),
    helpful: bool | None = typer.Option(
        None, "--helpful/--not-helpful", help="Whether the answer helped."
    ),
    correct_id: str | None = typer.Option(None, "--correct-id", help="The right entry id."),
    note: str = typer.Option("", "--note", help="A free-text note stored with the feedback."),
    conversation: str | None = typer.Option(
        None, "--conversation", help="Check that the turn is this conversation's."
    ),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Record feedback on an answer: helpful or not, or the right entry picked by an agent."""
    from tunesmith.errors import UserInputError
    from tunesmith_support.kbindex import read_meta

    if helpful is None and correct_id is None:
        # The service's own message names the HTTP API's fields ('helpful'), not these flags.
        raise UserInputError("give --helpful, --not-helpful or --correct-id ID")
    read_meta(kb)
    service = _service(kb, stored_db(kb, db), None)
    try:
        service.feedback(
            turn, helpful=helpful, correct_id=correct_id, note=note, conversation_id=conversation
        )
    finally:
        service.close()
    typer.echo(f"feedback stored for turn {turn}")


def eval_command(
    kb: Path = KB_OPTION,
    data: list[Path] = typer.Option(
        ..., "--data", help="Questions with answer ids (repeat for several files)."
    ),
    question_col: str = typer.Option("question", "--question-col", help=QUESTION_COL_HELP),
    answer_col: str = typer.Option("answer_id", "--answer-col", help=ANSWER_COL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    follow_ups: Path | None = typer.Option(
        None,
        "--follow-ups",
        help="Two-turn conversations (previous,question,answer_id): also measure how "
        "follow-ups are read on them and on the --data questions played as one conversation.",
    ),
) -> None:
    """Retrieval (hit@1, hit@5, MRR), decisions and calibration on labelled questions."""
    from tunesmith_support.answer import Answerer
    from tunesmith_support.evaluate import evaluate, follow_up_report
    from tunesmith_support.kbindex import renamed_ids
    from tunesmith_support.learning import read_conversations, read_labelled

    answerer = Answerer(kb)
    known = set(answerer.scorer.position)
    rows = read_labelled(
        data, known, question_col=question_col, answer_col=answer_col, renamed=renamed_ids(kb)
    )
    questions, expected = [r.question for r in rows], [r.answer_id for r in rows]
    result = evaluate(answerer, questions, expected)
    if follow_ups is not None:
        conversations = read_conversations(follow_ups, known)
        result.update(follow_up_report(answerer, questions, expected, conversations))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        typer.echo(f"{key:22s} {value}")


def export_feedback_command(
    kb: Path = KB_OPTION,
    out: Path = typer.Option(..., "--out", help="CSV to write (question,answer_id)."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> None:
    """Write confirmed (question, answer id) pairs from feedback, for the next `support train`."""
    from tunesmith.io import check_output_file, check_writable_dir
    from tunesmith_support.conversations import Conversations
    from tunesmith_support.kbindex import kb_entries, renamed_ids

    # A folder, or a path under a file, is one line before any work (not a rename traceback);
    # an existing file is kept unless --force (an earlier export, or a hand-edited history
    # CSV, was silently replaced), as every other --out of the CLI does.
    check_output_file(out, "--out")
    check_writable_dir(out, force=force)
    known = {e.id for e in kb_entries(kb)}  # no encoder: nothing is encoded
    log = Conversations.open(stored_db(kb, db))
    try:
        n = log.export_feedback(out, known, renamed_ids(kb))
    finally:
        log.close()
    typer.echo(f"{out}: {n} questions with confirmed answers")


def stats_command(
    kb: Path = KB_OPTION,
    by: str = typer.Option("day", "--by", help="day, week or month."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON rows."),
) -> None:
    """Answer rate, hand-off rate and feedback over time."""
    from tunesmith_support.conversations import Conversations, check_period
    from tunesmith_support.kbindex import read_meta, renamed_ids
    from tunesmith_support.service import default_db

    read_meta(kb)
    check_period(by)
    path = db or default_db(kb)
    rows: list[dict[str, Any]] = []
    if Path(path).exists():  # a report does not create the database it reports on
        log = Conversations.open(path)
        try:
            rows = log.stats(by, renamed_ids(kb))
        finally:
            log.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no conversations yet")
        return
    headers = [
        "period",
        "turns",
        "small_talk",
        "answer_rate",
        "clarify_rate",
        "handoff_rate",
        "feedback",
        "helpful_rate",
        "corrected",
    ]
    typer.echo("  ".join(f"{h:>12s}" for h in headers))
    for row in rows:
        cells = ["-" if row[h] is None else str(row[h]) for h in headers]
        typer.echo("  ".join(f"{c:>12s}" for c in cells))


@contextmanager
def _sigterm_returns() -> Iterator[None]:
    """Ignore a SIGTERM that arrives while inside (uvicorn handles its own, then raises it again
    for the handler it found): a service manager's stop (systemd, ``docker stop``) then ends
    like Ctrl-C, the database closed and "stopped" said, instead of killing the process."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_command(
    kb: Path = KB_OPTION,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0: all)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    sink: list[str] | None = typer.Option(None, "--sink", help=SINK_HELP),
    token_file: Path | None = typer.Option(
        None,
        "--token-file",
        help="File holding the token every request must send as 'Authorization: Bearer "
        "<token>' (default: $TUNESMITH_SUPPORT_TOKEN; neither: no token needed).",
    ),
    cors_origin: list[str] | None = typer.Option(
        None,
        "--cors-origin",
        help="A web origin whose pages may call the API from a browser, e.g. "
        "https://shop.example (repeatable; default: none). Feedback must then name its "
        "conversation_id.",
    ),
    feedback_needs_conversation: bool = typer.Option(
        False,
        "--feedback-needs-conversation",
        help="Feedback must name the turn's conversation_id (as with --cors-origin): for a "
        "public widget that reaches this server through a back end of yours.",
    ),
) -> None:
    """HTTP JSON API: POST /v1/ask, POST /v1/feedback, GET /v1/health, /openapi.json, /docs."""
    import uvicorn

    from tunesmith.ui.launch import check_address
    from tunesmith_support.api import create_app, is_loopback
    from tunesmith_support.api_access import TOKEN_ENV, check_origin, read_token

    # Everything that can be refused is, before the model loads.
    origins = [check_origin(origin) for origin in cors_origin or []]
    token = read_token(token_file)
    check_address(host, port)
    loopback = is_loopback(host)
    if token is None and not loopback:
        typer.echo(
            f"warning: serving {host} without a token: anyone who can reach port {port} can ask, "
            f"send feedback and read answers (--token-file or ${TOKEN_ENV} sets one)",
            err=True,
        )
    # A hand-off's delivery must not hold the customer's request (a webhook that is down).
    service = _service(kb, db, sink, background_delivery=True)
    try:
        app = create_app(
            service,
            loopback_only=loopback,
            token=token,
            cors_origins=origins,
            feedback_needs_conversation=feedback_needs_conversation,
        )
        access = "token required" if token is not None else "no token"
        typer.echo(
            f"serving {kb} on http://{host}:{port} ({access}; docs: /docs; Ctrl-C stops)",
            err=True,
        )
        # uvicorn stops on Ctrl-C or SIGTERM once the requests in flight are answered (a
        # second Ctrl-C stops at once), then raises the signal again with the handler it found.
        with _sigterm_returns():
            uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        # Hand-offs still queued stay pending in the outbox instead of holding the exit
        # through a webhook's retries (docs: `events retry --status pending`).
        service.close()
    typer.echo("stopped", err=True)


def demo_command(
    kb: Path | None = typer.Option(
        None, "--kb", help="Knowledge base to open (default: the sample KB, built on first start)."
    ),
    port: int = typer.Option(7861, "--port", help="Port to listen on (0: any free port)."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes it to others."
    ),
) -> None:
    """The Gradio demo on its own: chat, sources, confidence, hand-off, feedback, why."""
    from tunesmith.ui.launch import check_address, launch
    from tunesmith_support.demo import build_demo
    from tunesmith_support.kbindex import read_meta

    check_address(host, port)  # before the sample KB is built for a server that cannot start
    if kb is not None:
        read_meta(kb)  # not a KB: one line now, not an error on every action once it serves
    launch(build_demo(kb), host=host, port=port, share=False)


def about_command() -> None:
    """Say what the support plugin does and where its sample data and docs are."""
    import shlex

    from tunesmith_support.sample import SAMPLE_DIR

    typer.echo(
        "Customer support: answers questions from a FAQ/document knowledge base with a "
        "calibrated confidence; asks to clarify when two answers are close and hands off to a "
        "person (a support.handoff event) when unsure or asked to."
    )
    typer.echo(f"Sample knowledge base: {SAMPLE_DIR}")
    # The real folder, quoted for a shell: a "$SAMPLE/kb" nobody had set, copied as printed,
    # asked for "/kb".
    kb = shlex.quote(str(SAMPLE_DIR / "kb"))
    typer.echo(f"Start: tunesmith support index --kb {kb} --out kb; see docs/support.md")


def build_group() -> typer.Typer:
    """The `support` command group."""
    group = typer.Typer(
        help="Customer support: answer from a knowledge base, clarify or hand off when unsure.",
        no_args_is_help=True,
    )
    group.command("about")(about_command)
    group.command("index")(index_command)
    group.command("calibrate")(calibrate_command)
    group.command("train")(train_command)
    group.command("ask")(ask_command)
    group.command("chat")(chat_command)
    group.command("feedback")(feedback_command)
    group.command("eval")(eval_command)
    group.command("export-feedback")(export_feedback_command)
    group.command("stats")(stats_command)
    group.command("serve")(serve_command)
    group.command("demo")(demo_command)
    return group
