"""Documents (Markdown, plain text, HTML) split into passages by heading and length.

Each passage keeps its source file and the heading it sits under, and gets a stable id
``<file stem>#<heading slug>`` (``-2``, ``-3`` ... when a section is split by length or a heading
repeats), so that re-indexing a changed document touches only the passages that changed. A
KB whose documents share a stem gives them their paths instead (``kb.document_stems``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from tunesmith.data.readers import read_utf8
from tunesmith.errors import DataError

DOCUMENT_SUFFIXES = (".md", ".markdown", ".txt", ".text", ".html", ".htm")

#: Words per passage: all-MiniLM-L6-v2 was trained on 128 word pieces and truncates at 256, so a
#: passage of ~120 words is read whole.
MAX_WORDS = 120

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Passage:
    """One passage of a document."""

    id: str
    heading: str
    text: str
    source: str
    line: int


def slugify(text: str) -> str:
    """``"Lost or damaged parcels"`` -> ``"lost-or-damaged-parcels"``."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "section"


class _HtmlToMarkdown(HTMLParser):
    """Text of an HTML page with ``h1``-``h6`` turned into Markdown headings; script, style and
    head contents dropped; block elements end a paragraph."""

    _SKIP = {"script", "style", "head", "template", "noscript", "svg"}
    _BLOCK = {"p", "div", "li", "ul", "ol", "br", "tr", "table", "section", "article", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._buffer: list[str] = []
        self._skip = 0
        self._heading = 0
        self._title: list[str] = []
        self._in_title = False

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        if text:
            self.lines.append(("#" * self._heading + " " + text) if self._heading else text)
            self.lines.append("")
        self._buffer = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self._SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = int(tag[1])
        elif tag in self._BLOCK:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = 0
        elif tag in self._BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)
        if not self._skip:
            self._buffer.append(data)

    def markdown(self) -> str:
        self._flush()
        return "\n".join(self.lines)


def html_to_markdown(html: str) -> str:
    """HTML reduced to text, headings kept as Markdown headings (stdlib ``html.parser``)."""
    parser = _HtmlToMarkdown()
    parser.feed(html)
    parser.close()
    return parser.markdown()


def _split_long(text: str, max_words: int) -> list[str]:
    """Paragraphs packed into chunks of at most ``max_words`` words; a longer paragraph is cut at
    sentence ends, and a longer sentence at the word limit."""
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        if len(paragraph.split()) <= max_words:
            units.append(paragraph)
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            words = sentence.split()
            for start in range(0, len(words), max_words):
                units.append(" ".join(words[start : start + max_words]))
    chunks: list[str] = []
    current: list[str] = []
    count = 0
    for unit in units:
        n = len(unit.split())
        if current and count + n > max_words:
            chunks.append("\n\n".join(current))
            current, count = [], 0
        current.append(unit)
        count += n
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def split_markdown(
    text: str, source: str, stem: str, *, max_words: int = MAX_WORDS
) -> list[Passage]:
    """Passages of a Markdown (or plain) text: one section per heading, long ones split."""
    sections: list[tuple[str, int, list[str]]] = []  # heading, line, body lines
    heading, start, body = "", 1, []
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            sections.append((heading, start, body))
            heading, start, body = match.group(2).strip(), number, []
        else:
            body.append(line)
    sections.append((heading, start, body))

    passages: list[Passage] = []
    used: dict[str, int] = {}
    for heading, line, lines in sections:
        chunks = _split_long("\n".join(lines), max_words)
        base = slugify(heading) if heading else "text"
        for chunk in chunks:
            used[base] = used.get(base, 0) + 1
            suffix = "" if used[base] == 1 else f"-{used[base]}"
            passages.append(Passage(f"{stem}#{base}{suffix}", heading, chunk, source, line))
    return passages


def read_document(
    path: str | Path, *, source: str | None = None, stem: str | None = None
) -> list[Passage]:
    """The passages of one Markdown, plain-text or HTML file; an empty document is an error.
    Passage ids start with ``stem`` (the file's stem unless given)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DOCUMENT_SUFFIXES:
        raise DataError(
            f"not a document ({', '.join(DOCUMENT_SUFFIXES)} are read as documents)", path=path
        )
    text = read_utf8(path)
    if suffix in (".html", ".htm"):
        text = html_to_markdown(text)
    passages = split_markdown(text, source or str(path), stem or path.stem)
    if not passages:
        raise DataError("the document has no text", path=path)
    return passages
