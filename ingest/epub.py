"""EPUB books: one essay per chapter, as the book's table of contents divides it.

Each chapter's XHTML goes through the same article extraction as a web page (ingest/html.py).
A spine document the table of contents names starts a chapter, titled as the contents call it;
documents it does not name (a chapter split over several files) continue the chapter before, and
those before the first named one (cover, title page, copyright) are left out. A book without a
usable table of contents makes one chapter per document.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings

from ingest import html
from ingest.document import Part, clean_title, first_line, year_of
from ingest.errors import RejectedFile

_CONTENTS = re.compile(r"(?:table of )?contents|toc|inhalt|sommaire|índice", re.IGNORECASE)
_SLUG = re.compile(r"[^a-z0-9]+")


def extract(data: bytes, name: str) -> list[Part]:
    """The chapters of an EPUB as essays, each with the book's author and year."""
    import ebooklib  # lazy: only corpora with EPUBs load it
    from ebooklib import epub

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ebooklib warns about its own future defaults
            book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": False})
    except Exception as err:  # a damaged book can fail anywhere in the parser
        raise RejectedFile(name, f"not a readable EPUB ({first_line(err)}); re-export it") from err
    title = clean_title(_first(book, "title"))
    author = ", ".join(" ".join(v.split()) for v, _ in book.get_metadata("DC", "creator") if v)
    year = year_of(_first(book, "date"))
    named = _contents(book.toc)
    chapters: list[tuple[str, list[str]]] = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        label = named.get(item.get_name())
        if named and label is None and not chapters:
            continue  # cover, title and copyright pages before the first chapter the contents name
        page = html.extract(_decode(item.get_content()))
        if label is not None or not named or not chapters:
            chapters.append((label or "", []))
        if page.text.strip():
            chapters[-1][1].append(page.text)
    parts = []
    for n, (label, texts) in enumerate(chapters, 1):
        text = "\n\n".join(texts).strip()
        if not text or _CONTENTS.fullmatch(label.strip()):
            continue
        chapter = label or _heading(text) or f"{title or 'Chapter'} ({n})"
        parts.append(
            Part(
                text,
                title=chapter,
                author=author,
                year=year,
                key=f"{n:02d}-{_slug(chapter)}".rstrip("-"),
                meta={"book": title, "chapter": str(n)},
            )
        )
    if not parts:
        raise RejectedFile(name, "no chapter with text in this EPUB (images only?); nothing to index")
    return parts


def _first(book, field: str) -> str:
    values = book.get_metadata("DC", field)
    return str(values[0][0]) if values and values[0][0] else ""


def _contents(toc) -> dict[str, str]:
    """The first title the table of contents gives each document (by its path in the book)."""
    out: dict[str, str] = {}
    stack = list(toc)[::-1]
    while stack:
        entry = stack.pop()
        if isinstance(entry, tuple | list):  # (section, children)
            section, children = entry[0], entry[1]
            stack.extend(list(children)[::-1])
            entry = section
        href = getattr(entry, "href", "") or ""
        label = " ".join((getattr(entry, "title", "") or "").split())
        if href and label:
            out.setdefault(href.split("#", 1)[0], label)
    return out


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _heading(text: str) -> str:
    first = text.lstrip().split("\n", 1)[0]
    return first.lstrip("#").strip() if first.startswith("#") else ""


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return _SLUG.sub("-", ascii_title).strip("-")[:40].strip("-")
