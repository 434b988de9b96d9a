"""From a PDF's lines to clean text: running heads and page numbers dropped, lines joined into
paragraphs (hyphenated words whole again), larger type as headings, and where each page starts.

The lines come from ingest/pdf.py in reading order with their geometry; the text is built here,
once, so the page offsets point exactly into it.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field, replace

MARGIN = 0.12  # running heads and page numbers sit in the top and bottom 12% of a page
_PAGE_NUMBER = re.compile(r"[-–—(\[ ]*(?:page |p\. ?)?(?:#|[ivxlcdm]{1,7})(?: ?(?:of|/) ?#)?[-–—)\] ]*")
_BULLET = re.compile(r"(?:[-•▪◦‣·*–]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


@dataclass(frozen=True)
class Line:
    """A line of text on a page, in points from the page's top-left corner.

    `hyphen` says the line ended in a hyphen, which `text` leaves out: whether it was a word
    broken across lines or a compound's own hyphen is decided when the lines are joined.
    """

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    page: int
    size: float = 0.0  # the font size of its first character
    hyphen: bool = False
    left: float = 0.0  # the edges of the column the line is in
    right: float = 0.0

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 1.0)


@dataclass(frozen=True)
class Page:
    """A page's lines in reading order."""

    number: int
    height: float
    lines: list[Line] = field(default_factory=list)


def drop_running_lines(pages: list[Page]) -> list[Page]:
    """Pages without their running heads, footers and page numbers.

    A line in a page's top or bottom margin goes when it is a page number, or when, digits aside,
    the same line sits in the margin of another page too; a larger heading always stays.
    """
    body = _body_size([ln for page in pages for ln in page.lines])
    margins = [_margin_lines(page) for page in pages]
    seen = Counter(key for lines in margins for key in {_key(ln.text) for ln in lines})
    out = []
    for page, margin in zip(pages, margins, strict=True):
        drop = {
            id(ln)
            for ln in margin
            if ln.size <= 1.05 * body and (_PAGE_NUMBER.fullmatch(_key(ln.text)) or seen[_key(ln.text)] > 1)
        }
        out.append(replace(page, lines=[ln for ln in page.lines if id(ln) not in drop]))
    return out


def _margin_lines(page: Page) -> list[Line]:
    by_top = sorted(page.lines, key=lambda ln: ln.top)
    ends = by_top[:2] + by_top[-2:]
    low, high = MARGIN * page.height, (1 - MARGIN) * page.height
    return [ln for ln in {id(ln): ln for ln in ends}.values() if ln.bottom < low or ln.top > high]


def _body_size(lines: list[Line]) -> float:
    """The font size most of the text is set in (counted by characters, so short lines weigh little)."""
    sizes: Counter[float] = Counter()
    for ln in lines:
        sizes[ln.size] += len(ln.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _key(text: str) -> str:
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def assemble(pages: list[Page]) -> tuple[str, tuple[int, ...]]:
    """The pages' lines as paragraphs of clean text, and the offset where each page starts in it."""
    pages = drop_running_lines(pages)
    lines = [ln for page in pages for ln in page.lines]
    body = _body_size(lines)
    leading = _leading(lines)
    vocabulary = _vocabulary(lines)
    out: list[str] = []
    length = 0
    starts: list[int] = []
    prev: Line | None = None
    for page in pages:
        starts.append(-1)
        for line in page.lines:
            heading = _is_heading(line, body)
            if prev is None:
                sep = ""
            elif heading and _title_goes_on(prev, line):
                sep = _joint(prev, line, vocabulary)  # a title set over two lines
            elif heading or _is_heading(prev, body) or _new_paragraph(prev, line, leading):
                sep = "\n\n"
            else:
                sep = _joint(prev, line, vocabulary)
            if prev is not None and prev.hyphen and sep in (" ", "\n\n"):
                sep = "-" + sep  # the hyphen ended a paragraph, or preceded a capital: it is text
            text = f"# {line.text}" if heading and (prev is None or sep.endswith("\n\n")) else line.text
            if starts[-1] < 0:
                starts[-1] = length + len(sep)
            out += [sep, text]
            length += len(sep) + len(text)
            prev = line
        if starts[-1] < 0:
            starts[-1] = length
    if prev is not None and prev.hyphen:
        out.append("-")
    return "".join(out), tuple(starts)


def _title_goes_on(prev: Line, line: Line) -> bool:
    """A heading set over two lines: the same size, the second right under the first."""
    return prev.page == line.page and prev.size == line.size and 0 <= line.top - prev.bottom < prev.height


def _is_heading(line: Line, body: float) -> bool:
    """Set larger than the body text, and short."""
    return line.size > 1.15 * body and len(line.text) < 150


def _leading(lines: list[Line]) -> float:
    """The usual distance from one line's top to the next within a column."""
    gaps = [
        b.top - a.top
        for a, b in itertools.pairwise(lines)
        if a.page == b.page and a.left == b.left and 0 < b.top - a.top < 4 * a.height
    ]
    return statistics.median(gaps) if gaps else 0.0


def _new_paragraph(prev: Line, line: Line, leading: float) -> bool:
    """True when `line` starts a paragraph: after a gap, indented, a list item, or after a short line."""
    if prev.hyphen and line.text[:1].islower():
        return False
    same_column = prev.page == line.page and prev.left == line.left and line.top > prev.top
    if same_column and leading and line.top - prev.top > 1.4 * leading:
        return True
    if _BULLET.match(line.text):
        return True
    if 0.6 * line.height < line.x0 - line.left < 8 * line.height:
        return True  # a first-line indent
    if line.text[:1].islower():
        return False
    return not _wrapped(prev, line)


def _wrapped(prev: Line, line: Line) -> bool:
    """True when `prev` ended only because the next line's first word would not have fitted on it."""
    char = (prev.x1 - prev.x0) / max(len(prev.text), 1)
    first = line.text.split(" ", 1)[0]
    return prev.x1 + char * (len(first) + 1) >= prev.right - 0.5 * prev.height


def _vocabulary(lines: list[Line]) -> Counter[str]:
    """Words as the document spells them inside its lines (not at their ends), hyphenated ones included."""
    words: Counter[str] = Counter()
    for ln in lines:
        inner = ln.text.split(" ")[1:-1]
        words.update(w.lower() for token in inner for w in _WORD.findall(token))
    return words


def _joint(prev: Line, line: Line, vocabulary: Counter[str]) -> str:
    """What joins a wrapped line to the next: nothing inside a hyphenated word, "-" inside a
    hyphenated compound (one the document spells so elsewhere), nothing after a dash, else a space."""
    if not prev.hyphen:
        return "" if prev.text.endswith(("—", "/")) else " "
    head, tail = _WORD.findall(prev.text), _WORD.findall(line.text)
    if not head or not tail or not line.text[:1].islower():
        return "-"
    joined, compound = (head[-1] + tail[0]).lower(), f"{head[-1]}-{tail[0]}".lower()
    # Neither spelling elsewhere: a broken word ("gid-diness", "towns-men") is far more common
    # than a compound broken at its own hyphen ("self-pleasing"), so the word is joined.
    return "-" if vocabulary[compound] > vocabulary[joined] else ""
