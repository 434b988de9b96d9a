"""PDF essays: each page's text layer read in order (columns too), without running heads or page
numbers, with hyphenation undone, ligatures expanded and paragraphs re-formed from lines.

PDFium (pypdfium2) gives the text as line rectangles on the page; this module turns them into
lines in reading order, and ingest/reflow.py into paragraphs with exact page offsets.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ingest.clean import normalise
from ingest.document import Part, clean_title, year_of
from ingest.errors import RejectedFile
from ingest.reflow import MARGIN, Line, Page, assemble

MAX_PAGES = 5000
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
_HYPHEN_MARKS = ("\x02", "\ufffe")  # PDFium's marks for a hyphen that ends a line
_SPACES = re.compile(r"[ \t]+")
_LINE_END = re.compile("\r\n|\ufffe")


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
    # Between two consecutive line edges the number of lines crossing is constant: the lines that
    # start left of a point less those that also end left of it.
    edges = sorted({a, b, *(x for ln in lines for x in (ln.x0, ln.x1) if a < x < b)})
    starts, ends = sorted(ln.x0 for ln in lines), sorted(ln.x1 for ln in lines)
    best: tuple[int, float, float] | None = None  # (crossing, -width, middle)
    for x, y in itertools.pairwise(edges):
        middle = (x + y) / 2
        crossing = bisect_left(starts, middle) - bisect_right(ends, middle)
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
