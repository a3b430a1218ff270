"""Batched, idempotent, crash-safe ingest of documents into the finance store.

Each batch is read, scored outside any lock, then written in **one transaction together with the
file's progress record** (path, byte offset, line). Killed at any moment, a restart resumes at the
last committed offset: rows of a committed batch are never read again and rows of an uncommitted
one are read again, so nothing is lost or stored twice. Documents are keyed by id, so reading a
file (or standard input) twice adds nothing; see :mod:`tunesmith_finance.storage` for the rule when
a known id comes with a different text.
"""

from __future__ import annotations

import os
import sys
import time as _time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import IO, Any

from tunesmith.errors import DataError, UserInputError
from tunesmith_finance import storage
from tunesmith_finance.documents import (
    DEFAULT_MAX_CHARS,
    Document,
    RowError,
    check_columns,
    to_document,
)
from tunesmith_finance.rules import RegexTimeoutError, Rules
from tunesmith_finance.sources import (
    WORKBOOK,
    RawRow,
    check_file,
    iter_csv,
    iter_jsonl,
    read_header,
    read_workbook,
)

#: Documents scored together and stored in one transaction. Scoring 256 at a time cost a quarter
#: more than scoring a whole file at once at int8 (length sorting and the two inference streams
#: work per call); 1,024 recovers most of it, and a crash loses no more than one such batch's
#: scoring work (nothing stored).
DEFAULT_BATCH = 1024
#: How often a batch is tried again when the database stays locked past its busy timeout.
LOCK_RETRIES = 2


@dataclass
class Issue:
    """Something ingest reports: a skipped row, a changed text, an unknown topic, a truncation."""

    origin: str
    line: int | None
    kind: str
    detail: str
    doc_id: str | None = None

    def __str__(self) -> str:
        where = self.origin if self.line is None else f"{self.origin}:{self.line}"
        who = f" (id {self.doc_id})" if self.doc_id else ""
        return f"{where}: {self.kind}{who}: {self.detail}"


@dataclass
class Report:
    """What one ingest run did. ``issues`` keeps the first ``keep`` issues for display."""

    read: int = 0
    added: int = 0
    duplicates: int = 0
    changed: int = 0
    skipped: int = 0
    truncated: int = 0
    unknown_topics: int = 0
    #: Documents older than the last `finance prune`'s cut-off, not stored (retention.py).
    too_old: int = 0
    files: int = 0
    seconds: float = 0.0
    issues: list[Issue] = field(default_factory=list)
    keep: int = 50

    def note(self, issue: Issue) -> None:
        if len(self.issues) < self.keep:
            self.issues.append(issue)

    def merge(self, other: Report) -> None:
        for name in ("read", "added", "duplicates", "changed", "skipped", "truncated", "too_old"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unknown_topics += other.unknown_topics
        self.files += other.files
        self.seconds += other.seconds
        for issue in other.issues:
            self.note(issue)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "added": self.added,
            "duplicates": self.duplicates,
            "changed_texts": self.changed,
            "skipped": self.skipped,
            "truncated": self.truncated,
            "unknown_topics": self.unknown_topics,
            "older_than_retention": self.too_old,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "docs_per_second": round(self.read / self.seconds, 2) if self.seconds else None,
            "issues": [
                {
                    "file": i.origin,
                    "line": i.line,
                    "kind": i.kind,
                    "id": i.doc_id,
                    "detail": i.detail,
                }
                for i in self.issues
            ],
        }

    def summary(self) -> str:
        """One line for the terminal."""
        old = f", {self.too_old} older than the prune cut-off" if self.too_old else ""
        return (
            f"{self.read} rows read: {self.added} added, {self.duplicates} already stored, "
            f"{self.changed} changed text(s) kept as first stored, {self.skipped} skipped, "
            f"{self.truncated} truncated, {self.unknown_topics} unknown topic(s){old}"
        )


@dataclass
class _Pending:
    """A parsed row waiting in the current batch."""

    line: int
    doc: Document


class Ingester:
    """Scores documents in batches and stores them; one per database and model."""

    def __init__(
        self,
        db: Any,
        model: Any,
        rules: Rules | None = None,
        *,
        batch_size: int = DEFAULT_BATCH,
        max_chars: int = DEFAULT_MAX_CHARS,
        naive_tz: tzinfo = UTC,
        topic_model: Any = None,
        score_batch_size: int = 32,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise UserInputError("--batch-size must be at least 1")
        if max_chars < 1:
            raise UserInputError("--max-chars must be at least 1")
        self.db = db
        self.model = model
        self.rules = rules or Rules()
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.naive_tz = naive_tz
        self.topic_model = topic_model
        self.score_batch_size = score_batch_size
        self.warn = warn or (lambda message: print(message, file=sys.stderr))
        # Absolute: `finance alerts` finds the model by this name from whatever folder it runs
        # in (a relative "fin" was "no sentiment model found" from anywhere else). Not
        # resolved: a deployment's link (`models/current`) switched to a new model must be
        # followed by alerts, not pinned to the folder it named at ingest.
        path = getattr(model, "path", "") or ""
        self.model_name = os.path.abspath(Path(path).expanduser()) if path else ""
        self._meta_written = False

    # -- sources -------------------------------------------------------------------------------

    def ingest_file(
        self, path: str | Path, *, follow: bool = False, fmt: str | None = None
    ) -> Report:
        """Ingest a JSONL or CSV file from where the last committed batch ended.

        ``follow`` (for watched files that may still grow) leaves an unfinished last line for
        the next call. A file shorter than its recorded offset, or whose bytes before that
        offset changed, was replaced: it is read again from the start (documents already stored
        are recognised by id). ``fmt`` (``jsonl`` or ``csv``): the format when the file's name
        does not say it (a rotated ``feed.jsonl.1``).
        """
        kind = check_file(path, empty_ok=follow, fmt=fmt)
        if kind == WORKBOOK:
            if follow:  # watch leaves workbooks out (docs/finance.md "Ingest")
                raise UserInputError(f"{path}: workbooks are not followed; ingest it instead")
            return self.ingest_workbook(path)
        path = Path(path)
        key = str(path.resolve())
        report = Report(files=1)
        started = _time.perf_counter()
        progress = storage.get_progress(self.db, key) or storage.Progress(0, 0, None)
        offset, line, header_text = progress.offset, progress.line, progress.header
        size = path.stat().st_size
        if offset > size:
            self.warn(f"{path}: shorter than the {offset} bytes already read; reading it again")
            offset, line, header_text = 0, 0, None
        elif (
            progress.fingerprint is not None
            and storage.fingerprint(path, offset) != progress.fingerprint
        ):
            # Replaced by another file at least as long (a rotated log): resuming at the old
            # offset would skip its first rows. Stored ids make reading it again safe.
            self.warn(f"{path}: replaced by another file since it was read; reading it again")
            offset, line, header_text = 0, 0, None
        with path.open("rb") as handle:
            header: list[str] | None = None
            if kind == "csv":
                header, header_bytes, header_lines = read_header(
                    handle, name=str(path), follow=follow
                )
                if not header:
                    return report
                check_columns(header, str(path))
                joined = "\x1f".join(header)
                if header_text is not None and header_text != joined:
                    self.warn(f"{path}: its CSV header changed; reading it again from the start")
                    offset, line = 0, 0
                header_text = joined
                if offset < header_bytes:
                    offset, line = header_bytes, header_lines
                rows: Iterable[RawRow] = self._csv_rows(handle, header, offset, line, follow)
            else:
                handle.seek(offset)
                rows = iter_jsonl(handle, offset=offset, line=line, follow=follow)
            self._run(rows, str(path), report, progress_key=key, header=header_text, source=handle)
        report.seconds = _time.perf_counter() - started
        return report

    def ingest_workbook(self, path: str | Path) -> Report:
        """Ingest a worksheet (``book.xlsx``, ``book.xlsx#Sheet``) from the row after the last
        committed batch's. Its rows up to there must be as they were read (the same marks):
        a sheet edited, sorted or cut above that row since is read again from its first row,
        as a replaced file is (documents already stored are recognised by id)."""
        report = Report(files=1)
        started = _time.perf_counter()
        sheet = read_workbook(path)
        progress = storage.get_progress(self.db, sheet.key)
        start = 0
        if progress is not None:
            if progress.header != sheet.header:
                self.warn(f"{sheet.shown}: its header changed; reading it again from the start")
            elif progress.fingerprint != sheet.mark_at(progress.line):
                self.warn(
                    f"{sheet.shown}: rows up to row {progress.line}, already read, have changed "
                    "since (edited, inserted, deleted or sorted); reading it again from the start"
                )
            else:
                start = progress.line
        rows = [row for row in sheet.rows if row.line > start]
        self._run(rows, sheet.shown, report, progress_key=sheet.key, header=sheet.header)
        report.seconds = _time.perf_counter() - started
        return report

    @staticmethod
    def _csv_rows(
        handle: IO[bytes], header: list[str], offset: int, line: int, follow: bool
    ) -> Iterator[RawRow]:
        handle.seek(offset)
        yield from iter_csv(handle, header, offset=offset, line=line, follow=follow)

    def ingest_stream(
        self, handle: IO[bytes], *, name: str = "<stdin>", fmt: str = "jsonl"
    ) -> Report:
        """Ingest JSONL or CSV from a binary stream (standard input); no progress record, since
        a stream cannot be re-read, but ids still make a second run add nothing."""
        report = Report(files=1)
        started = _time.perf_counter()
        if fmt == "csv":
            header, header_bytes, header_lines = read_header(handle, name=name)
            if header:
                check_columns(header, name)
            rows: Iterable[RawRow] = iter_csv(
                handle, header, offset=header_bytes, line=header_lines
            )
        elif fmt == "jsonl":
            rows = iter_jsonl(handle)
        else:
            raise UserInputError(f"--format {fmt!r}: expected jsonl or csv")
        self._run(rows, name, report, progress_key=None, header=None)
        if not report.read:
            raise DataError("empty input; no documents to ingest", path=name)
        report.seconds = _time.perf_counter() - started
        return report

    def ingest_records(
        self,
        records: Iterable[dict[str, Any]],
        *,
        name: str = "<records>",
        lines: Iterable[int] | None = None,
    ) -> Report:
        """Ingest already-parsed records (dicts), e.g. from a replay. ``lines``: each record's
        line in ``name``, for the issues reported (by default its position in ``records``)."""
        report = Report(files=1)
        started = _time.perf_counter()
        records = list(records)
        numbers = list(lines) if lines is not None else range(1, len(records) + 1)
        if len(numbers) != len(records):
            raise ValueError("ingest_records: one line number per record")
        rows = (RawRow(line, 0, r) for line, r in zip(numbers, records, strict=True))
        self._run(rows, name, report, progress_key=None, header=None)
        report.seconds = _time.perf_counter() - started
        return report

    # -- batches -------------------------------------------------------------------------------

    def _run(
        self,
        rows: Iterable[RawRow],
        origin: str,
        report: Report,
        *,
        progress_key: str | None,
        header: str | None,
        source: IO[bytes] | None = None,
    ) -> None:
        """Parse, batch and flush ``rows``; ``source``: the file they are read from, whose
        bytes before each committed offset are fingerprinted."""
        pending: list[_Pending] = []
        issues: list[Issue] = []
        end, last_line, seen, first = 0, 0, 0, 0
        mark: str | None = None

        def flush() -> None:  # the batch so far, with where it starts and ends in the file
            self._flush(pending, issues, origin, report, progress_key, end, last_line, header,
                        first, source, mark)  # fmt: skip

        for row in rows:
            seen += 1
            first = first or row.line
            end, last_line, mark = row.end, row.line, row.mark
            report.read += 1
            if row.value is None:
                issues.append(Issue(origin, row.line, "skipped", row.error or "unreadable"))
            else:
                try:
                    doc = to_document(row.value, naive_tz=self.naive_tz, max_chars=self.max_chars)
                except RowError as exc:
                    issues.append(Issue(origin, row.line, "skipped", str(exc)))
                else:
                    pending.append(_Pending(row.line, doc))
            if seen >= self.batch_size:
                flush()
                pending, issues, seen, first = [], [], 0, 0
        if seen:
            flush()

    def _flush(
        self,
        pending: list[_Pending],
        issues: list[Issue],
        origin: str,
        report: Report,
        progress_key: str | None,
        end: int,
        line: int,
        header: str | None,
        first_line: int,
        source: IO[bytes] | None = None,
        mark: str | None = None,
    ) -> None:
        """Score the new documents of a batch and commit them with the file's progress;
        ``first_line``: the line of the batch's first row, where a rerun resumes; ``mark``:
        a workbook's fingerprint of its rows up to ``end`` (its Excel row)."""
        cutoff = storage.retention_cutoff(self.db)
        if cutoff is not None:
            # Pruned by retention: neither scored nor stored again (a file read again after
            # `finance prune` would bring them back until the next prune).
            kept = [p for p in pending if p.doc.ts >= cutoff]
            report.too_old += len(pending) - len(kept)
            pending = kept
        known = storage.known_hashes(self.db, [p.doc.id for p in pending])
        fresh: list[_Pending] = []
        batch_hash: dict[str, str] = {}
        duplicates = changed = 0
        for item in pending:
            doc = item.doc
            first = known.get(doc.id) or batch_hash.get(doc.id)
            if first is None:
                batch_hash[doc.id] = doc.text_hash
                fresh.append(item)
            elif first == doc.text_hash:
                duplicates += 1
            else:
                changed += 1
                issue = Issue(
                    origin,
                    item.line,
                    "changed_text",
                    "a different text under a stored id; the first stored version is kept",
                    doc.id,
                )
                issues.append(issue)
                self.warn(f"warning: {issue}")
        for item in fresh:
            if item.doc.truncated:
                issues.append(
                    Issue(
                        origin,
                        item.line,
                        "truncated",
                        f"text of {item.doc.chars} characters cut to {self.max_chars}",
                        item.doc.id,
                    )
                )
        stored, unknown = self._score(fresh, origin, issues)
        for attempt in range(LOCK_RETRIES + 1):
            try:
                with self.db.transaction() as tx:
                    added = storage.insert_documents(tx, stored)
                    storage.record_issues(tx, issues)
                    if progress_key is not None and end:
                        # From the bytes read, not the path: a file put in its place while
                        # this batch was scored must not be resumed at this offset. "" (not
                        # None, which older records have): cut meanwhile, so read it again.
                        if mark is not None:
                            print_ = mark
                        else:
                            print_ = (
                                storage.handle_fingerprint(source, end)
                                if source is not None
                                else storage.fingerprint(progress_key, end)
                            ) or ""
                        storage.set_progress(tx, progress_key, end, line, header, print_)
                    if not self._meta_written and stored:
                        # The model that scored the documents, for `finance alerts`.
                        storage.set_meta(tx, "model", self.model_name)
                        self._meta_written = True
                break
            except Exception as exc:
                from tunesmith.store import StoreLockedError

                if not isinstance(exc, StoreLockedError):
                    raise
                if attempt == LOCK_RETRIES:
                    # The batch's first row, stored or skipped: its skipped rows are not
                    # recorded either, and a rerun reads them again.
                    raise StoreLockedError(
                        f"{exc}; stopped before {origin}:{first_line}, nothing after it is "
                        "stored and the same command resumes there"
                    ) from None
                _time.sleep(0.5 * (attempt + 1))
        report.added += added
        # A row another process stored between our check and our insert is a duplicate too.
        report.duplicates += duplicates + (len(stored) - added)
        report.changed += changed
        report.unknown_topics += unknown
        for issue in issues:
            if issue.kind == "skipped":
                report.skipped += 1
            elif issue.kind == "truncated":
                report.truncated += 1
            report.note(issue)

    def _score(
        self, fresh: list[_Pending], origin: str, issues: list[Issue]
    ) -> tuple[list[storage.StoredDocument], int]:
        """Scores, topics and tickers for the new documents of a batch."""
        if not fresh:
            return [], 0
        texts = [p.doc.text for p in fresh]
        scores = self.model.score(texts, batch_size=self.score_batch_size)
        predicted = (
            self.topic_model.topics(texts, batch_size=self.score_batch_size)
            if self.topic_model is not None
            else [[] for _ in fresh]
        )
        stored = []
        unknown = 0
        for item, score, extra in zip(fresh, scores, predicted, strict=True):
            doc = item.doc
            try:
                assignment = self.rules.assign(
                    doc.text, topic=doc.topic + extra, tickers=doc.tickers
                )
            except RegexTimeoutError as exc:  # the document it hung on, to test the fix with
                raise DataError(str(exc), path=origin, row=item.line) from None
            for name in assignment.unknown_topics:
                if name in extra:
                    continue  # the user's topic model names its own topics
                unknown += 1
                issues.append(
                    Issue(
                        origin,
                        item.line,
                        "unknown_topic",
                        f"topic {name!r} is not in the rules file; kept as given",
                        doc.id,
                    )
                )
            stored.append(
                storage.StoredDocument(
                    id=doc.id,
                    ts=doc.ts,
                    time=doc.time,
                    source=doc.source,
                    text=doc.text,
                    text_hash=doc.text_hash,
                    chars=doc.chars,
                    truncated=doc.truncated,
                    label=score.label,
                    score=score.score,
                    p_negative=score.p_negative,
                    p_neutral=score.p_neutral,
                    p_positive=score.p_positive,
                    topics=assignment.topics,
                    tickers=assignment.tickers,
                    model=self.model_name,
                    origin=origin,
                    line=item.line,
                )
            )
        return stored, unknown
