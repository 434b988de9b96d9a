"""PDF essays: each page's text layer read in order (columns too), without running heads or page
numbers, with hyphenation undone, ligatures expanded and paragraphs re-formed from lines.

PDFium (pypdfium2) gives the text as line rectangles on the page; the rest is layout inference
on those rectangles. The text is assembled here, once, so the offset where each page starts is
known exactly (`Part.page_starts`).
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ingest.clean import normalise
from ingest.document import Part, clean_title, year_of
from ingest.errors import RejectedFile

MAX_PAGES = 5000
MARGIN = 0.12  # running heads and page numbers sit in the top and bottom 12% of a page
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
_HYPHEN_MARKS = ("\x02", "\ufffe")  # PDFium's marks for a hyphen that ends a line
_SPACES = re.compile(r"[ \t]+")
_LINE_END = re.compile("\r\n|\ufffe")
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


def extract(data: bytes, name: str) -> Part:
    """The essay in a PDF: clean text with page starts, and the title, author and year it states."""
    import pypdfium2 as pdfium  # lazy: only corpora with PDFs pay for loading PDFium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as err:
        if getattr(err, "err_code", None) in (pdfium.raw.FPDF_ERR_PASSWORD, pdfium.raw.FPDF_ERR_SECURITY):
            raise RejectedFile(name, "encrypted PDF (needs a password); save an unprotected copy") from err
        raise RejectedFile(
            name, "not a readable PDF (damaged or cut short); re-save or re-export it"
        ) from err
    try:
        if len(document) > MAX_PAGES:
            raise RejectedFile(name, f"{len(document):,} pages, over the {MAX_PAGES:,}-page limit; split it")
        pages = [read_page(document, n) for n in range(len(document))]
        meta = document.get_metadata_dict(skip_empty=True)
    finally:
        document.close()
    if not any(page.lines for page in pages):
        raise RejectedFile(name, "no text layer (scanned pages?); OCR is not supported")
    text, starts = assemble(pages)
    return Part(
        text,
        title=clean_title(meta.get("Title", "")),
        author=" ".join(meta.get("Author", "").split()),
        year=year_of(meta.get("CreationDate", "")),
        page_starts=starts,
        meta={"pages": str(len(pages))},
    )


def read_page(document: Any, index: int) -> Page:
    """Page `index` of an open pypdfium2 document, its lines in reading order."""
    import pypdfium2.raw as pdfium_c

    page = document[index]
    textpage = page.get_textpage()
    try:
        height = page.get_height()
        pieces = []
        for left, bottom, right, top, raw, first in _pieces(textpage, pdfium_c):
            text, hyphen = _clean(raw)
            if not text:
                continue
            size = pdfium_c.FPDFText_GetFontSize(textpage.raw, first) if first >= 0 else top - bottom
            top_, bottom_ = height - top, height - bottom
            pieces.append(Line(text, left, right, top_, bottom_, index + 1, round(size, 1), hyphen))
    finally:
        textpage.close()
        page.close()
    lines = [line for row in _rows(pieces) for line in _merge(row)]
    return Page(index + 1, height, _in_reading_order(lines, page_height=height))


def _pieces(textpage: Any, pdfium_c: Any) -> Iterator[tuple[float, float, float, float, str, int]]:
    """(left, bottom, right, top, text, index of its first character) for each run of text on a line.

    PDFium's text comes in the order of the file, a break after each of its lines; each line is
    asked for its rectangles, and one that fills a single rectangle is cut from the page's text.
    A line of several rectangles (two columns drawn row by row, a wide gap) is read rectangle by
    rectangle, which scans the page each time (measured: 3x slower over a page).
    """
    full = textpage.get_text_range()
    if len(full) != textpage.count_chars():  # offsets would not line up: read every rectangle
        for i in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(i)
            first = pdfium_c.FPDFText_GetCharIndexAtPos(textpage.raw, left + 0.5, (bottom + top) / 2, 2, 2)
            yield left, bottom, right, top, textpage.get_text_bounded(left, bottom, right, top), first
        return
    start = 0
    for match in _LINE_END.finditer(full + "\r\n"):
        end = match.start() + (1 if match.group() == "\ufffe" else 0)
        if end > start:
            count = textpage.count_rects(start, end - start)
            rects = [textpage.get_rect(i) for i in range(count)]
            if len(rects) == 1:
                yield (*rects[0], full[start:end], start)
            else:
                for left, bottom, right, top in rects:
                    text = textpage.get_text_bounded(left, bottom, right, top)
                    middle, reach = (bottom + top) / 2, (top - bottom) / 2 + 1
                    first = pdfium_c.FPDFText_GetCharIndexAtPos(textpage.raw, left + 0.5, middle, 2, reach)
                    yield left, bottom, right, top, text, first
        start = match.end()


def _clean(raw: str) -> tuple[str, bool]:
    """A line's text, ligatures expanded and invisible characters gone; and whether it ended in a hyphen."""
    text = raw.translate(_LIGATURES).rstrip()
    marked = text.endswith(_HYPHEN_MARKS)
    for mark in _HYPHEN_MARKS:
        text = text.replace(mark, "")
    text = _SPACES.sub(" ", normalise(text).replace("\n", " ")).strip()
    if not marked and text.endswith("-") and text[-2:-1].isalpha():
        return text[:-1], True
    return text, marked and bool(text)


def _rows(pieces: list[Line]) -> list[list[Line]]:
    """Pieces grouped by the baseline they share (a word in another font sits a little higher or
    lower: its middle still falls inside the row), rows top to bottom, pieces left to right."""
    rows: list[list[Line]] = []
    for piece in sorted(pieces, key=lambda p: p.top):
        middle = _middle(piece)
        row = next((r for r in reversed(rows[-3:]) if r[0].top <= middle <= r[0].bottom), None)
        if row is None:
            rows.append([piece])
        else:
            row.append(piece)
    return [sorted(row, key=lambda p: p.x0) for row in rows]


def _merge(row: list[Line]) -> list[Line]:
    """A row's pieces joined into lines (a font change splits PDFium's rectangles); a gap as wide
    as a column gutter keeps them apart."""
    lines: list[Line] = []
    for piece in row:
        prev = lines[-1] if lines else None
        if prev is not None and -2 <= piece.x0 - prev.x1 < 0.8 * prev.height:
            lines[-1] = replace(
                prev,
                text=f"{prev.text}{'-' if prev.hyphen else ''} {piece.text}",
                x1=piece.x1,
                top=min(prev.top, piece.top),
                bottom=max(prev.bottom, piece.bottom),
                size=max(prev.size, piece.size),
                hyphen=piece.hyphen,
            )
        else:
            lines.append(piece)
    return lines


def _middle(line: Line) -> float:
    return (line.top + line.bottom) / 2


def _in_reading_order(lines: list[Line], *, page_height: float) -> list[Line]:
    """Lines in reading order: between full-width lines, a left column is read before the right one."""
    body = [ln for ln in lines if MARGIN * page_height < ln.top and ln.bottom < (1 - MARGIN) * page_height]
    gutter = _gutter(body or lines)
    ordered: list[Line] = []
    band: list[Line] = []  # the column lines between two full-width lines
    for line in sorted(lines, key=lambda ln: ln.top):
        if _side(line, gutter) != "all":
            band.append(line)
            continue
        ordered += _columns(band, gutter)
        band = []
        ordered.append(line)
    ordered += _columns(band, gutter)
    return _with_edges(ordered, gutter)


def _gutter(lines: list[Line]) -> float | None:
    """The middle of the gap between two columns, when the page has them.

    The gap is the widest stretch of the page's middle 40% that the fewest lines cross (full-width
    titles may); it makes columns when few lines cross it and many lie on either side.
    """
    if len(lines) < 8:
        return None
    lo, hi = min(ln.x0 for ln in lines), max(ln.x1 for ln in lines)
    a, b = lo + 0.3 * (hi - lo), lo + 0.7 * (hi - lo)
    # Sweep the line edges: between two consecutive edges the number of lines crossing is constant.
    edges = sorted({a, b, *(x for ln in lines for x in (ln.x0, ln.x1) if a < x < b)})
    best: tuple[int, float, float] | None = None  # (crossing, -width, middle)
    for x, y in itertools.pairwise(edges):
        middle = (x + y) / 2
        crossing = sum(1 for ln in lines if ln.x0 < middle < ln.x1)
        if best is None or (crossing, x - y) < best[:2]:
            best = (crossing, x - y, middle)
    if best is None:
        return None
    crossing, _, gutter = best
    left = sum(1 for ln in lines if ln.x1 <= gutter)
    right = sum(1 for ln in lines if ln.x0 >= gutter)
    if crossing > 0.2 * len(lines) or min(left, right) < max(3, 0.2 * len(lines)):
        return None
    return gutter


def _side(line: Line, gutter: float | None) -> str:
    if gutter is None or line.x0 < gutter < line.x1:
        return "all"
    return "left" if line.x1 <= gutter else "right"


def _columns(band: list[Line], gutter: float | None) -> list[Line]:
    return [ln for ln in band if _side(ln, gutter) == "left"] + [
        ln for ln in band if _side(ln, gutter) != "left"
    ]


def _with_edges(lines: list[Line], gutter: float | None) -> list[Line]:
    """Each line with the left and right edges of its column: where most of its lines start and end."""
    groups: dict[str, list[Line]] = {}
    for ln in lines:
        groups.setdefault(_side(ln, gutter), []).append(ln)
    edges = {}
    for side, group in groups.items():
        start = Counter(round(ln.x0) for ln in group).most_common(1)[0][0]
        ends = sorted(ln.x1 for ln in group)
        edges[side] = (float(start), ends[int(0.9 * (len(ends) - 1))])
    out = []
    for ln in lines:
        left, right = edges[_side(ln, gutter)]
        out.append(replace(ln, left=min(left, ln.x0), right=max(right, ln.x1)))
    return out


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
        drop = [
            ln
            for ln in margin
            if ln.size <= 1.05 * body and (_PAGE_NUMBER.fullmatch(_key(ln.text)) or seen[_key(ln.text)] > 1)
        ]
        out.append(replace(page, lines=[ln for ln in page.lines if not any(ln is d for d in drop)]))
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
