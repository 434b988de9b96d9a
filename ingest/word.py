"""Word documents (.docx): paragraphs, headings, lists and tables as Markdown-ish text.

A .docx has no fixed pages (Word lays them out when it opens the file), so its passages carry
no page numbers.
"""

from __future__ import annotations

import io
import re

from ingest.document import Part, clean_title, first_line, year_of
from ingest.errors import RejectedFile

_HEADING = re.compile(r"heading (\d)", re.IGNORECASE)
_ITEM = re.compile(r"(?:- |\d+\. )")


def extract(data: bytes, name: str) -> Part:
    """The essay in a .docx file, with the title, author and year its properties give."""
    import docx  # lazy: only corpora with Word files load it
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        properties = document.core_properties
        blocks: list[str] = []
        numbers: dict[str, int] = {}
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                rows = [" | ".join(" ".join(c.text.split()) for c in row.cells) for row in item.rows]
                blocks.append("\n".join(r for r in rows if r.strip(" |")))
                continue
            text = " ".join(item.text.split())
            if not text:
                continue
            style = (item.style.name if item.style is not None else "") or ""
            blocks.append(_block(text, style, item._p.pPr, numbers))
        title, author = properties.title or "", properties.author or ""
        created = properties.created.isoformat() if properties.created else ""
    except Exception as err:  # a damaged file can fail anywhere in the parser
        raise RejectedFile(name, f"not a readable Word document ({first_line(err)}); re-save it") from err
    return Part(
        _join(blocks),
        title=clean_title(title),
        author=" ".join(author.split()),
        year=year_of(created),
    )


def _block(text: str, style: str, ppr, numbers: dict[str, int]) -> str:
    """A paragraph as a heading ("# "), a list item ("- ", "1. ") or plain text."""
    if style == "Title":
        return f"# {text}"
    if heading := _HEADING.fullmatch(style):
        return f"{'#' * min(int(heading.group(1)), 6)} {text}"
    numbered = style.startswith("List Number")
    listed = style.startswith(("List Bullet", "List Paragraph")) or (
        ppr is not None and ppr.numPr is not None
    )
    if numbered or listed:
        if numbered:
            numbers[style] = numbers.get(style, 0) + 1
            return f"{numbers[style]}. {text}"
        return f"- {text}"
    numbers.clear()  # a paragraph between two lists starts the numbering again
    return text


def _join(blocks: list[str]) -> str:
    """Blocks separated by blank lines; consecutive list items stay together as one list."""
    out: list[str] = []
    for block in blocks:
        if out and _ITEM.match(block) and _ITEM.match(out[-1].rsplit("\n", 1)[-1]):
            out[-1] += "\n" + block
        else:
            out.append(block)
    return "\n\n".join(out)
