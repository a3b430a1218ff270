"""Documents (Markdown, plain text, HTML) split into passages by heading and length.

Each passage keeps its source file and the heading it sits under, and gets a stable id
``<file stem>#<heading slug>`` (``-2``, ``-3`` ... when a section is split by length or a heading
repeats), so that re-indexing a changed document touches only the passages that changed. A
KB whose documents share a stem gives them their paths instead (``kb.document_stems``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from tunesmith.data.readers import read_utf8
from tunesmith.errors import DataError

DOCUMENT_SUFFIXES = (".md", ".markdown", ".txt", ".text", ".html", ".htm")

#: Words per passage: all-MiniLM-L6-v2 was trained on 128 word pieces and truncates at 256, so a
#: passage of ~120 words is read whole.
MAX_WORDS = 120

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_FENCE = re.compile(r"^\s*(```|~~~)")
#: Lines whose line breaks carry meaning: code fences, indented code, tables, lists, quotes.
_STRUCTURED = re.compile(r"^(\s*(```|~~~|\||[-*+]\s|\d+[.)]\s|>)|\t| {4})")


#: A plain-text section number and title: "1. Returns", "2.3 Refund times", "2.3. Refund times"
#: (a dot after or inside the number: "2024 results" is no heading).
_NUMBERED = re.compile(r"^(\d{1,3}(?:\.\d{1,3})*)(\.?)\s+([^\W\d_].*?)\s*$")
#: Words a numbered heading has at most; a longer line is a sentence of a numbered list.
HEADING_WORDS = 12
_LIST_ITEM = re.compile(r"^\s*([-*+\u2022]\s|\d{1,3}[.)]\s)")
#: A setext heading's underline: ``=`` (level 1) or ``-`` (level 2) repeated, at most 3 spaces
#: in (CommonMark).
_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


class EmptySourceError(DataError):
    """An FAQ file with no rows or a document with no text: an error for a file named alone,
    skipped (and reported) in a folder (``kb.read_sources``)."""


@dataclass(frozen=True)
class Passage:
    """One passage of a document."""

    id: str
    heading: str
    text: str
    source: str
    line: int


def slugify(text: str) -> str:
    """``"Lost or damaged parcels"`` -> ``"lost-or-damaged-parcels"``, ``"Größe"`` ->
    ``"größe"``: letters and digits of every script kept (as GitHub's heading anchors), in
    NFKC and lower case, so the same heading typed in NFD gives the same id.

    ASCII letters alone made "Größe" and "Grüße" both ``gr-e`` (the second then named as a
    repeat of the first), and every heading in Japanese or Arabic ``section``, ``section-2``:
    ids by position, which moved to another passage when a section was added above."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFKC", text).lower())
    slug = re.sub(r"[\W_]+", "-", folded).strip("-")
    return slug or "section"


class _HtmlToMarkdown(HTMLParser):
    """Text of an HTML page with ``h1``-``h6`` turned into Markdown headings; script, style and
    head contents dropped; block elements end a paragraph."""

    _SKIP = {"script", "style", "head", "template", "noscript", "svg", "nav", "footer"}
    #: ARIA roles of site chrome (menus, banners, page footers), skipped like ``nav``/``footer``.
    _SKIP_ROLES = {"navigation", "banner", "contentinfo"}
    #: Content landmarks: a ``header`` inside one is the article's own (its title), not the site's.
    _CONTENT = {"main", "article", "section"}
    _BLOCK = {"p", "div", "li", "ul", "ol", "br", "tr", "table", "section", "article", "pre"}
    _CELL = {"td", "th"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._buffer: list[str] = []
        self._skip = 0
        #: Skipped elements still open: [tag, nesting of that tag] (a ``div role=navigation``
        #: holds divs of its own, and only its own end tag ends the skipping).
        self._skipping: list[list[Any]] = []
        self._content = 0
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
        if tag in self._CONTENT:
            self._content += 1
        role = (dict(attrs).get("role") or "").strip().lower()
        site_header = tag == "header" and not self._content
        if self._skipping and tag == self._skipping[-1][0]:
            self._skipping[-1][1] += 1
        elif tag in self._SKIP or site_header or role in self._SKIP_ROLES:
            self._skip += 1
            self._skipping.append([tag, 1])
        elif tag in self._CELL:
            # Cells of a row: "Email | 24/7", not "Email24/7" (minified tables have no spaces).
            if "".join(self._buffer).strip():
                self._buffer.append(" | ")
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = int(tag[1])
        elif tag in self._BLOCK:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._CONTENT:
            self._content = max(0, self._content - 1)
        if self._skipping and tag == self._skipping[-1][0]:
            self._skipping[-1][1] -= 1
            if not self._skipping[-1][1]:
                self._skipping.pop()
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


def _numbered_heading(line: str) -> tuple[int, str] | None:
    """(level, title) of a plain-text section line ("2.3 Refund times": 2, "Refund times"), or
    ``None``: a sentence ("1. Start a return under Orders."), a number alone, a long line."""
    match = _NUMBERED.match(line)
    if not match or ("." not in match.group(1) and not match.group(2)):
        return None
    title = match.group(3)
    if len(title.split()) > HEADING_WORDS or title[-1] in ".,;:":
        return None
    return match.group(1).count(".") + 1, title


def _setext_title(
    lines: list[str], underline: str, plain: bool, overlined: bool = False
) -> str | None:
    """The heading a setext underline makes of the paragraph ``lines`` above it, or ``None``.

    Markdown (CommonMark): the whole paragraph, unless it holds a list item, a quote, a table
    row or indented code (the underline then ends those, as a thematic break). Plain text: one
    short line that starts a block, not indented nor a list item, nor a sentence (ending with
    ``.,;:``), over a line of at least 3 ``=`` or ``-``; a section number in front is left
    out, as for numbered section lines. ``overlined``: a rule of the same character above it
    too (reStructuredText's style), where the title may be indented."""
    if plain:
        line = lines[0].strip() if overlined else lines[0]
        if len(lines) > 1 or len(underline.strip()) < 3 or line[:1].isspace():
            return None
        numbered = _numbered_heading(line.strip())
        if numbered is None and (_LIST_ITEM.match(line) or _STRUCTURED.match(line)):
            return None
        title = numbered[1] if numbered else line.strip()
        if len(title.split()) > HEADING_WORDS or title[-1] in ".,;:":
            return None
        return title
    if any(_STRUCTURED.match(line) for line in lines):
        return None
    return " ".join(" ".join(lines).split()) or None


def setext_headings(text: str, *, plain: bool = False) -> str:
    """A text with its setext headings (a title underlined with ``===``: level 1, or ``---``:
    level 2) turned into ``#`` headings, line numbers kept (the title on its first line, the
    rest and the underline blank); outside code fences. They were read as body text: the
    title and its underline ran into the section before ("... by email. Returns =======
    Return unused items ..."). ``plain``: by the stricter rules of plain text
    (:func:`_setext_title`)."""
    lines = text.splitlines()
    out = list(lines)
    in_fence = False
    paragraph: int | None = None  # where the paragraph above the current line starts
    found: list[tuple[int, str, bool, str]] = []  # line, underline character, overlined, title
    for i, line in enumerate(lines):
        if _is_fence(line):
            in_fence = not in_fence
            paragraph = None
            continue
        if in_fence:
            continue
        underline = _UNDERLINE.match(line)
        if underline:
            title = None
            char = underline.group(1)[0]
            overlined = plain and paragraph is not None and _overline(lines, paragraph, char)
            if paragraph is not None:
                title = _setext_title(lines[paragraph:i], underline.group(1), plain, overlined)
            if title:
                found.append((paragraph, char, overlined, title))
                out[paragraph + 1 : i + 1] = [""] * (i - paragraph)
                if overlined:
                    out[paragraph - 1] = ""
            # A heading, or a thematic break ("---" after a blank line): either ends a
            # paragraph.
            paragraph = None
        elif not line.strip() or _HEADING.match(line):
            paragraph = None
        elif paragraph is None:
            paragraph = i
    # Markdown: "=" is level 1 and "-" level 2. A plain text with titles between two rules
    # (reStructuredText's style) ranks its styles as reStructuredText does, in the order they
    # first appear: its over-and-underlined "=" title is above its "=" sections.
    ranked = any(overlined for _i, _c, overlined, _t in found)
    styles: list[tuple[str, bool]] = []
    for at, char, overlined, title in found:
        if ranked:
            if (char, overlined) not in styles:
                styles.append((char, overlined))
            level = styles.index((char, overlined)) + 1
        else:
            level = 1 if char == "=" else 2
        out[at] = f"{'#' * level} {title}"
    return "\n".join(out)


def _overline(lines: list[str], title: int, char: str) -> bool:
    """Whether the line above ``title`` is a rule of ``char`` that starts a block: the overline
    of a reStructuredText-style title ("=======" / "Returns" / "=======")."""
    if title == 0:
        return False
    rule = _UNDERLINE.match(lines[title - 1])
    if not rule or rule.group(1)[0] != char or len(rule.group(1)) < 3:
        return False
    return title == 1 or not lines[title - 2].strip()


def plain_text_headings(text: str) -> str:
    """A plain text with its underlined titles (:func:`setext_headings`) and its numbered
    section lines ("1. Returns", "2.3 Refund times") turned into Markdown headings of their
    level (``#``, ``##``), line numbers kept; they were read as body text, and a whole manual
    became one section split by length.

    A section line starts a block (after a blank line or at the top) and is not followed by a
    list item or an indented line; a run of them with nothing between at one level is a numbered
    list ("1. Start a return" / "2. Print the label"), not headings. The number is left out of
    the heading, so that renumbering the sections keeps their passage ids."""
    lines = setext_headings(text, plain=True).splitlines()
    found: dict[int, tuple[int, str]] = {}
    for i, line in enumerate(lines):
        heading = _numbered_heading(line)
        if heading is None or (i and lines[i - 1].strip()):
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if following.strip() and (following[:1].isspace() or _LIST_ITEM.match(following)):
            continue
        found[i] = heading
    items = set()
    for i, (level, _title) in found.items():
        after = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
        if after in found and found[after][0] == level:
            items |= {i, after}
    for i in items:
        del found[i]
    out = list(lines)
    for i, (level, title) in found.items():
        out[i] = f"{'#' * level} {title}"
    return "\n".join(out)


def _is_fence(line: str) -> bool:
    return bool(_FENCE.match(line))


def _blocks(text: str) -> list[list[str]]:
    """The blank-line separated blocks of a text, a fenced code block kept whole even when it
    holds blank lines (its second half is no prose paragraph)."""
    blocks: list[list[str]] = []
    current: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if _is_fence(line):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if current:
                blocks.append(current)
            current = []
        else:
            current.append(line.rstrip())
    if current:
        blocks.append(current)
    return blocks


def _split_long(text: str, max_words: int) -> list[str]:
    """Paragraphs packed into chunks of at most ``max_words`` words; a longer paragraph is cut at
    sentence ends, and a longer sentence at the word limit. Code blocks, tables, lists and
    quotes keep their lines (and a code block its indentation): joined into one line they were
    unreadable in an answer; a longer one is cut between lines."""
    units: list[str] = []
    for block in _blocks(text):
        if any(_STRUCTURED.match(line) for line in block):
            lines = block
        else:
            lines = [" ".join(" ".join(block).split())]
        paragraph = "\n".join(lines)
        if len(paragraph.split()) <= max_words:
            units.append(paragraph)
            continue
        pieces = lines if len(lines) > 1 else _SENTENCE_END.split(lines[0])
        current: list[str] = []
        count = 0
        for piece in pieces:
            words = piece.split()
            if len(words) > max_words:
                if current:
                    units.append("\n".join(current))
                    current, count = [], 0
                units += [
                    " ".join(words[i : i + max_words]) for i in range(0, len(words), max_words)
                ]
                continue
            if current and count + len(words) > max_words:
                units.append(("\n" if len(lines) > 1 else " ").join(current))
                current, count = [], 0
            current.append(piece)
            count += len(words)
        if current:
            units.append(("\n" if len(lines) > 1 else " ").join(current))
    chunks: list[str] = []
    current = []
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
    """Passages of a Markdown (or plain) text: one section per heading, long ones split.

    A heading with no text of its own (a document's title, "# Returns" right above
    "## Refund times") names the sections under it: "Returns > Refund times".

    A heading that occurs more than once in the text ("Requirements" under "Installation" and
    again under "Troubleshooting") is named with its parent heading, "Troubleshooting >
    Requirements", so the two can be told apart; a repeat takes its id from that name
    (``#troubleshooting-requirements``), not from a counter it would share with the parts of a
    long section: ``#requirements-2`` then named another passage as soon as the first section
    grew a part, and feedback on it silently moved to that text.
    """
    # heading, parent, line, body lines, the enclosing sections (indices, outermost first)
    sections: list[tuple[str, str, int, list[str], list[int]]] = []
    heading, parent, start, body, enclosing = "", "", 1, [], []
    parents: list[tuple[int, str, int]] = []  # (level, heading, section) enclosing this line
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _is_fence(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            sections.append((heading, parent, start, body, enclosing))
            level = len(match.group(1))
            while parents and parents[-1][0] >= level:
                parents.pop()
            heading, start, body = match.group(2).strip(), number, []
            parent = parents[-1][1] if parents else ""
            enclosing = [p[2] for p in parents]
            parents.append((level, heading, len(sections)))
        else:
            body.append(line)
    sections.append((heading, parent, start, body, enclosing))
    has_text = [bool("".join(section[3]).strip()) for section in sections]

    counts: dict[str, int] = {}
    for heading, _parent, _line, _lines, _enclosing in sections:
        if heading and "".join(_lines).strip():
            counts[slugify(heading)] = counts.get(slugify(heading), 0) + 1
    passages: list[Passage] = []
    used: dict[str, int] = {}
    seen: set[str] = set()
    for heading, parent, line, lines, enclosing in sections:
        chunks = _split_long("\n".join(lines), max_words)
        base = slugify(heading) if heading else "text"
        # The enclosing headings with no text of their own, up to the nearest one that has
        # some: in no passage of their own, their words ("# Returns" over "## Refund times")
        # were in no passage at all. Named, not in the id, so that ids stay as they were.
        context: list[str] = []
        for index in reversed(enclosing):
            if has_text[index]:
                break
            context.insert(0, sections[index][0])
        if chunks and heading and counts.get(base, 0) > 1 and parent:
            if base in seen:
                base = slugify(f"{parent} > {heading}")
            seen.add(slugify(heading))
            context = context or [parent]
        if heading and context:
            heading = " > ".join([*context, heading])
        for chunk in chunks:
            used[base] = used.get(base, 0) + 1
            suffix = "" if used[base] == 1 else f"-{used[base]}"
            passages.append(Passage(f"{stem}#{base}{suffix}", heading, chunk, source, line))
    return passages


def _drop_front_matter(text: str) -> str:
    """A Markdown file's YAML front matter (``---`` ... ``---`` at the top: title, author, tags)
    blanked out, line numbers kept: it is metadata, not an answer, and was indexed as one."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            return "\n" * (end + 1) + "\n".join(lines[end + 1 :])
    return text


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
    elif suffix in (".md", ".markdown"):
        text = setext_headings(_drop_front_matter(text))
    else:
        text = plain_text_headings(text)
    # MAX_WORDS read now, not when split_markdown was defined: the setting a KB records.
    passages = split_markdown(text, source or str(path), stem or path.stem, max_words=MAX_WORDS)
    if not passages:
        raise EmptySourceError("the document has no text", path=path)
    return passages
