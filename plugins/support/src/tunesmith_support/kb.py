"""Knowledge-base sources: FAQ files and documents read into entries with stable ids and hashes.

An FAQ file (CSV, TSV, JSONL, JSON or Parquet, read by the core's readers) gives one entry per
row: a question, its answer, and optionally an id and a category. A document (Markdown, plain
text, HTML) gives one entry per passage (see :mod:`tunesmith_support.documents`). A directory
mixes both. Each entry's content hash decides whether re-indexing must encode it again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from tunesmith.data.file_errors import INPUT_ERRNOS, read_failure
from tunesmith.data.limits import names_for_message
from tunesmith.data.readers import ROW_KEY, data_file, reader_for
from tunesmith.errors import DataError, UserInputError
from tunesmith_support.documents import DOCUMENT_SUFFIXES, EmptySourceError, read_document

FAQ_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".xlsx", ".xlsm")


#: Longest answer snippet shown beside a candidate or a clarifying question's option.
SNIPPET_CHARS = 80


@dataclass(frozen=True)
class Entry:
    """One answerable unit: an FAQ row (``kind="faq"``) or a document passage (``"passage"``)."""

    id: str
    answer: str
    question: str = ""
    category: str = ""
    source: str = ""
    heading: str = ""
    kind: str = "faq"
    row: int = 0

    @cached_property
    def content_hash(self) -> str:
        """Hash of everything that is indexed or shown (not the row, which moves freely).
        Kept once made: a re-index of 100,000 entries read it five times each."""
        data = [self.question, self.answer, self.category, self.heading, self.kind]
        return hashlib.sha256(json.dumps(data).encode("utf-8")).hexdigest()[:16]

    @property
    def title(self) -> str:
        """How a clarifying question names this entry: its question, or its heading."""
        return self.question or self.heading or self.answer[:60]

    @property
    def snippet(self) -> str:
        """The start of its answer on one line (:data:`SNIPPET_CHARS` at most, cut at a word),
        which tells apart entries whose titles are the same (a KB that repeats a question)."""
        flat = " ".join(self.answer.split())
        if len(flat) <= SNIPPET_CHARS:
            return flat
        cut = flat[: SNIPPET_CHARS - 1]
        space = cut.rfind(" ")
        if space > SNIPPET_CHARS // 2:
            cut = cut[:space]
        return cut.rstrip(" ,;:.") + "…"

    def vectors(self) -> list[tuple[str, str, str]]:
        """``(vector id, field, text)`` for each indexed text: an FAQ entry's question and
        answer, a passage's heading and text."""
        if self.kind == "faq":
            return [(f"{self.id}::q", "q", self.question), (f"{self.id}::a", "a", self.answer)]
        text = f"{self.heading}. {self.answer}" if self.heading else self.answer
        return [(f"{self.id}::a", "a", text)]

    def payload(self, field_name: str) -> dict[str, Any]:
        """The payload stored beside one of this entry's vectors."""
        return {
            "entry_id": self.id,
            "field": field_name,
            "question": self.question,
            "answer": self.answer,
            "category": self.category,
            "source": self.source,
            "heading": self.heading,
            "kind": self.kind,
            "hash": self.content_hash,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Entry:
        """The entry a stored payload describes, with the content hash stored beside it (a
        re-index keeps the entries of unchanged files without hashing them again)."""
        entry = cls(
            id=payload["entry_id"],
            answer=payload.get("answer", ""),
            question=payload.get("question", ""),
            category=payload.get("category", ""),
            source=payload.get("source", ""),
            heading=payload.get("heading", ""),
            kind=payload.get("kind", "faq"),
        )
        if isinstance(payload.get("hash"), str) and payload["hash"]:
            entry.__dict__["content_hash"] = payload["hash"]
        return entry


@dataclass(frozen=True)
class FaqColumns:
    """Column names of FAQ files. ``id`` and ``category`` are optional unless named by a flag."""

    question: str = "question"
    answer: str = "answer"
    id: str = "id"
    category: str = "category"
    required: frozenset[str] = field(default_factory=frozenset)

    def to_dict(self) -> dict[str, str]:
        return {
            "question": self.question,
            "answer": self.answer,
            "id": self.id,
            "category": self.category,
        }


def _cell(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    return "" if value is None else str(value).strip()


def derived_id(question: str) -> str:
    """An id for an FAQ row without one: stable while the question is unchanged."""
    return "q-" + hashlib.sha1(" ".join(question.lower().split()).encode("utf-8")).hexdigest()[:10]


def read_faq(
    path: str | Path, columns: FaqColumns = FaqColumns(), *, source: str | None = None
) -> list[Entry]:
    """The entries of one FAQ file; a missing column or an empty question/answer is an error."""
    path = Path(path)
    rows = list(reader_for(path)(path))
    if not rows:
        raise EmptySourceError("the FAQ file has no rows", path=path)
    header = set(rows[0]) - {ROW_KEY}
    for role in ("question", "answer"):
        name = getattr(columns, role)
        if name not in header:
            raise DataError(
                f"no {role} column '{name}' (columns: {names_for_message(sorted(header))}); "
                f"name it with --{role}-col",
                path=path,
            )
    for role in ("id", "category"):
        name = getattr(columns, role)
        if role in columns.required and name not in header:
            raise DataError(
                f"no {role} column '{name}' (columns: {names_for_message(sorted(header))}); name it "
                f"with --{role}-col (a KB re-indexed without the flag keeps its first column)",
                path=path,
            )
    entries = []
    for row in rows:
        line = int(row.get(ROW_KEY) or 0)
        question, answer = _cell(row, columns.question), _cell(row, columns.answer)
        for role, value in (("question", question), ("answer", answer)):
            if not value:
                raise DataError(f"empty {role}", path=path, row=line, column=getattr(columns, role))
        entry_id = _cell(row, columns.id) or derived_id(question)
        entries.append(
            Entry(
                id=entry_id,
                question=question,
                answer=answer,
                category=_cell(row, columns.category),
                source=source or str(path),
                kind="faq",
                row=line,
            )
        )
    return entries


def _passages(path: Path, source: str, stem: str | None = None) -> list[Entry]:
    return [
        Entry(
            id=p.id,
            answer=p.text,
            heading=p.heading,
            source=source,
            kind="passage",
            row=p.line,
        )
        for p in read_document(path, source=source, stem=stem)
    ]


def document_stems(files: list[Path], root: Path) -> dict[Path, str]:
    """The id prefix of each document's passages: its file stem, or its path from ``root`` when
    another document has the same stem (two ``README.md`` in different folders would otherwise
    give the same passage ids)."""
    documents = [f for f in files if f.suffix.lower() in DOCUMENT_SUFFIXES]
    counts: dict[str, int] = {}
    for f in documents:
        counts[f.stem] = counts.get(f.stem, 0) + 1
    return {f: f.stem if counts[f.stem] == 1 else f.relative_to(root).as_posix() for f in documents}


def source_files(path: str | Path, *, exclude: str | Path | None = None) -> list[Path]:
    """The KB files under ``path`` (itself if a file), sorted; hidden files and folders
    (``.git``) are skipped, and so is everything under ``exclude`` (the KB being built, when it
    sits among its sources: its own JSON files are no FAQ). See :func:`_scan` for links,
    folders that cannot be read and files removed during the scan."""
    path = Path(path)
    skip = Path(exclude).resolve() if exclude is not None else None
    if not data_file(path).exists():
        raise UserInputError(f"{path}: no such file or directory")
    if data_file(path).is_file():  # book.xlsx#Sheet names one sheet of the book
        return [path]
    files = [
        p
        for p in sorted(_scan(path, skip))
        if not (skip is not None and p.resolve().is_relative_to(skip))
    ]
    if not files:
        raise UserInputError(
            f"{path}: no knowledge-base files (FAQ: {', '.join(FAQ_SUFFIXES)}; "
            f"documents: {', '.join(DOCUMENT_SUFFIXES)})"
        )
    return files


#: A file or folder listed a moment ago and now gone (or a folder replaced by a file).
_GONE = frozenset({errno.ENOENT, errno.ENOTDIR})


def _scan(root: Path, skip: Path | None) -> list[Path]:
    """The KB files under the folder ``root`` (unsorted), by path from ``root``.

    ``Path.rglob`` left out a folder it could not read without a word (Python 3.11), so a KB
    lost its files silently; here such a folder, or a KB file whose link leads nowhere, is one
    ``DataError`` naming it (exit 2). A link to a folder is followed; a folder reached twice (a
    link loop, two links to one folder) is read once, at the first of its paths in name order.
    A file or folder removed while the folder is listed is left out: it is no longer part of
    it. The machine failing (no file descriptor left, an I/O error) is the ``OSError`` naming
    the path (exit 1)."""
    known = FAQ_SUFFIXES + DOCUMENT_SUFFIXES
    files: list[Path] = []
    seen: set[tuple[int, int]] = set()
    folders = [root]  # a stack: sorted names pushed in reverse, so read in name order
    while folders:
        folder = folders.pop()
        try:
            info = folder.stat()  # follows a link: its target's identity
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            if exc.errno in _GONE and folder != root:
                continue
            raise _folder_failure(exc, folder) from None
        below: list[Path] = []
        for entry in entries:
            # Hidden (.git, .DS_Store), or the lock file Office keeps beside an open workbook.
            if entry.name.startswith((".", "~$")):
                continue
            child = folder / entry.name
            try:
                is_dir = entry.is_dir()  # follows a link
            except OSError as exc:
                raise read_failure(exc, child) from None
            if is_dir:
                if skip is None or not child.resolve().is_relative_to(skip):
                    below.append(child)
            elif child.suffix.lower() in known and _still_there(entry, child):
                files.append(child)
        folders.extend(reversed(below))
    return files


def _still_there(entry: os.DirEntry[str], path: Path) -> bool:
    """Whether a listed KB file is there to read: False when it was removed since it was
    listed; a link that leads nowhere (or round in a loop) is a ``DataError``."""
    try:
        entry.stat()  # follows a link
    except OSError as exc:
        if exc.errno in _GONE and not os.path.lexists(path):
            return False
        if os.path.islink(path) and exc.errno in (errno.ENOENT, errno.ELOOP):
            leads = "round in a loop" if exc.errno == errno.ELOOP else "to nothing"
            raise DataError(
                f"a link to {os.readlink(path)}, which leads {leads}; fix the link or remove "
                "it from the knowledge-base folder",
                path=path,
            ) from None
        raise read_failure(exc, path) from None
    return True


def _folder_failure(exc: OSError, folder: Path) -> Exception:
    """What to raise for ``exc``, met listing the KB folder ``folder``: a ``DataError`` when
    the folder is at fault (its files would be left out), else the machine's ``OSError``
    naming it (:func:`~tunesmith.data.file_errors.read_failure`)."""
    if exc.errno in INPUT_ERRNOS:
        return DataError(
            f"cannot read this folder ({exc.strerror or exc}), so its files would be left out "
            "of the knowledge base; make it readable, or move it out of the knowledge-base "
            "folder",
            path=folder,
        )
    return read_failure(exc, folder)


def read_sources(
    path: str | Path,
    columns: FaqColumns = FaqColumns(),
    *,
    exclude: str | Path | None = None,
    skipped: list[str] | None = None,
    record: Any = None,
) -> list[Entry]:
    """Every entry of a KB file or directory, in file order, with ids checked; files under
    ``exclude`` are left out (see :func:`source_files`). ``record``: a
    :class:`~tunesmith_support.sourcerecord.SourceRecord`, which gives the entries of the files
    unchanged since the last index (not read again) and records the others.

    In a directory, an empty file (an FAQ with no rows, a document with no text) is skipped
    and named in ``skipped`` (``"faq/new.csv: the FAQ file has no rows"``): one placeholder
    stopped the import of every other file. A file named alone, or a directory of empty files
    only, is an error.

    The same id twice with the same content is kept once; with different content it is an
    error naming both places.
    """
    root = Path(path)
    entries: dict[str, Entry] = {}
    files = source_files(root, exclude=exclude)
    stems = document_stems(files, root if root.is_dir() else root.parent)
    empty: list[str] = []
    for file in files:
        source = str(file.relative_to(root)) if root.is_dir() else file.name
        stem = stems.get(file)
        found = None if record is None else record.reuse(file, source, stem)
        if found is None:
            try:
                if stem is not None:
                    found = _passages(file, source, stem)
                else:
                    found = read_faq(file, columns, source=source)
            except EmptySourceError as exc:
                if not root.is_dir():
                    raise
                empty.append(f"{source}: {exc.message}")
                continue
            if record is not None:
                record.add(source, found)
        for entry in found:
            first = entries.get(entry.id)
            if first is None:
                entries[entry.id] = entry
            elif first.content_hash != entry.content_hash:
                if entry.kind == "faq" and entry.id == derived_id(entry.question):
                    # No id column: the id was made from the question, which the user never
                    # wrote as an id; say what is the same.
                    raise DataError(
                        f"the same question twice with different content (first at "
                        f"{first.source}:{first.row}); give the rows an id column "
                        "(--id-col) or merge them",
                        path=file,
                        row=entry.row,
                        column=columns.question,
                    )
                raise DataError(
                    f"duplicate id '{entry.id}' with different content "
                    f"(first at {first.source}:{first.row})",
                    path=file,
                    row=entry.row,
                )
    if not entries:
        # Nothing to index: a KB built from it would lose every entry it had.
        raise UserInputError(f"{root}: every knowledge-base file is empty ({'; '.join(empty)})")
    if skipped is not None:
        skipped += empty
    return list(entries.values())
