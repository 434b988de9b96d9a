"""Real PDF, EPUB and Word files for the tests, written by maintained writers (reportlab, ebooklib,
python-docx) from shipped essays, with what their clean text must be and where each page starts.

The PDFs are laid out here line by line, so the truth is known exactly: which words were
hyphenated across lines, which page each paragraph starts and ends on, what the running head
and page numbers say. Hostile files (encrypted, scanned, damaged, zip bombs) are made here too.
"""

from __future__ import annotations

import io
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import reportlab
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from ingest.load import load_essay

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
_FONTS = Path(reportlab.__file__).parent / "fonts"  # Bitstream Vera ships with reportlab: ligatures too
pdfmetrics.registerFont(TTFont("Vera", str(_FONTS / "Vera.ttf")))
pdfmetrics.registerFont(TTFont("VeraBd", str(_FONTS / "VeraBd.ttf")))
WIDTH, HEIGHT = 612.0, 792.0
SIZE, LEADING, INDENT = 10.5, 13.0, 16.0


@dataclass
class Laid:
    """A PDF as laid out: its clean text must be `text`; paragraphs' first and last pages; hyphenations."""

    text: str = ""
    paragraphs: list[tuple[str, int, int]] = field(default_factory=list)
    hyphenated: list[tuple[str, str]] = field(default_factory=list)  # (head, tail) of words split
    pages: int = 0


def essay(rel: str) -> tuple[str, list[str]]:
    """A shipped essay's title and paragraphs (one line each), read the way ingest reads it."""
    loaded = load_essay(CORPUS / rel, CORPUS, max_bytes=5 * 2**20)
    paragraphs = [
        " ".join(b.split()) for b in loaded.text.split("\n\n") if b.strip() and not b.startswith("#")
    ]
    return loaded.title, paragraphs


def _width(text: str, size: float = SIZE) -> float:
    return pdfmetrics.stringWidth(text, "Vera", size)


def _lines(paragraph: str, width: float, laid: Laid) -> list[tuple[str, bool]]:
    """Greedy lines of a paragraph (first line indented); a long word that does not fit is hyphenated."""
    lines: list[tuple[str, bool]] = []
    words = paragraph.split(" ")
    current = ""
    room = width - INDENT
    while words:
        word = words.pop(0)
        trial = f"{current} {word}" if current else word
        if _width(trial) <= room:
            current = trial
            continue
        split = _split(word, current, room)
        if split:
            head, tail = split
            lines.append((f"{current} {head}-" if current else f"{head}-", not lines))
            laid.hyphenated.append((head, tail))
            words.insert(0, tail)
        else:
            lines.append((current, not lines))
            words.insert(0, word)
        current, room = "", width
    lines.append((current, not lines))
    return lines


def _split(word: str, current: str, room: float) -> tuple[str, str] | None:
    if not current or not word.isalpha() or len(word) < 8:
        return None
    for k in range(len(word) - 3, 2, -1):
        if _width(f"{current} {word[:k]}-") <= room:
            return word[:k], word[k:]
    return None


def _ligatures(text: str) -> str:
    return text.replace("fi", "ﬁ").replace("fl", "ﬂ")  # Vera has these two ligature glyphs


def write_pdf(
    path: Path,
    rels: tuple[str, ...],
    *,
    columns: int = 1,
    head: str = "",
    numbers: bool = True,
    justify: bool = False,
    title: str = "",
    author: str = "",
    interleave: bool = False,
) -> Laid:
    """A PDF of shipped essays: titles in large type, body text in columns, a running head, page numbers.

    With `interleave`, the two columns' lines are drawn row by row, so only the layout, not the
    order of the text in the file, says which comes first.
    """
    laid = Laid()
    pdf = canvas.Canvas(str(path), pagesize=(WIDTH, HEIGHT), invariant=1)
    pdf.setTitle(title)
    pdf.setAuthor(author)
    gutter = 24.0
    col_width = (WIDTH - 144 - gutter * (columns - 1)) / columns
    body_top, body_bottom = HEIGHT - 90, 90.0
    page, column, y = 1, 0, body_top
    rows: dict[tuple[int, float], list[tuple[float, str, float]]] = {}  # (page, y) -> [(x, text, spacing)]
    pieces: list[str] = []
    for rel in rels:
        essay_title, paragraphs = essay(rel)
        if y < body_top:  # a new essay starts on a new page
            page, column, y = page + 1, 0, body_top
        rows.setdefault((page, HEIGHT - 120), []).append((72, f"\x00{essay_title}", 0))
        pieces.append(f"# {essay_title}")
        y = HEIGHT - 160
        for paragraph in paragraphs:
            first_page = 0
            lines = _lines(paragraph, col_width, laid)
            for n, (line, indented) in enumerate(lines):
                if y < body_bottom:
                    column += 1
                    if column == columns:
                        page, column = page + 1, 0
                    y = body_top
                first_page = first_page or page
                x = 72 + column * (col_width + gutter) + (INDENT if indented else 0)
                spacing = 0.0
                if justify and n < len(lines) - 1 and line.count(" "):
                    room = col_width - (INDENT if indented else 0)
                    spacing = (room - _width(line)) / line.count(" ")
                rows.setdefault((page, y), []).append((x, line, spacing))
                y -= LEADING
            laid.paragraphs.append((paragraph, first_page, page))
            pieces.append(paragraph)
    laid.pages = page
    laid.text = "\n\n".join(pieces)
    for number in range(1, page + 1):
        if head:
            pdf.setFont("Vera", 8)
            pdf.drawString(72, HEIGHT - 50, head)
        if numbers:
            pdf.setFont("Vera", 9)
            pdf.drawCentredString(WIDTH / 2, 40, str(number))
        keys = sorted((k for k in rows if k[0] == number), key=lambda k: -k[1])
        order = [(y, item) for (_, y) in keys for item in rows[(number, y)]]
        if not interleave:
            order.sort(key=lambda e: (e[1][0] > 72 + col_width, -e[0]))  # column by column
        for y, (x, text, spacing) in order:
            if text.startswith("\x00"):
                pdf.setFont("VeraBd", 18)
                pdf.drawString(x, y, text[1:])
                continue
            line = pdf.beginText(x, y)
            line.setFont("Vera", SIZE)
            line.setWordSpace(spacing)
            line.textOut(_ligatures(text))
            pdf.drawText(line)
        pdf.showPage()
    pdf.save()
    return laid


def write_epub(path: Path, rels: tuple[str, ...], *, title: str, author: str, year: str) -> list[str]:
    """An EPUB with a title page, then one chapter per essay (the second split over two files)."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("marginalia-test-book")
    book.set_title(title)
    book.set_language("en")
    book.add_author(author)
    book.add_metadata("DC", "date", f"{year}-01-01")
    cover = epub.EpubHtml(title="Title page", file_name="title.xhtml", lang="en")
    cover.content = f"<html><body><h1>{title}</h1><p>by {author}</p></body></html>"
    book.add_item(cover)
    spine: list = ["nav", cover]
    toc = []
    titles = []
    for n, rel in enumerate(rels, 1):
        essay_title, paragraphs = essay(rel)
        titles.append(essay_title)
        halves = (
            [paragraphs]
            if n != 2
            else [paragraphs[: len(paragraphs) // 2], paragraphs[len(paragraphs) // 2 :]]
        )
        for k, part in enumerate(halves):
            doc = epub.EpubHtml(title=essay_title, file_name=f"chapter{n}{'ab'[k]}.xhtml", lang="en")
            heading = f"<h2>{_escape(essay_title)}</h2>" if k == 0 else ""
            body = "".join(f"<p>{_escape(p)}</p>" for p in part)
            doc.content = (
                f"<html><head><title>{_escape(essay_title)}</title></head><body>{heading}{body}</body></html>"
            )
            book.add_item(doc)
            spine.append(doc)
            if k == 0:
                toc.append(epub.Link(f"chapter{n}a.xhtml", essay_title, f"c{n}"))
    book.toc = toc
    book.spine = spine
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    epub.write_epub(str(path), book)
    return titles


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_docx(path: Path, *, title: str, author: str) -> dict[str, list[str]]:
    """A Word draft: a title, two headed sections, a bulleted and a numbered list, and a table."""
    import docx

    paragraphs = [essay("bacon/50-of-studies.md")[1][0], essay("bacon/04-of-revenge.md")[1][0]]
    document = docx.Document()
    document.core_properties.title = title
    document.core_properties.author = author
    document.add_heading(title, level=0)
    document.add_heading("What studies are for", level=1)
    document.add_paragraph(paragraphs[0])
    bullets = [
        "Read not to contradict and confute.",
        "Nor to believe and take for granted.",
        "But to weigh and consider.",
    ]
    for item in bullets:
        document.add_paragraph(item, style="List Bullet")
    document.add_heading("How to read", level=1)
    document.add_paragraph(paragraphs[1])
    numbered = [
        "Some books are to be tasted.",
        "Others to be swallowed.",
        "Some few to be chewed and digested.",
    ]
    for item in numbered:
        document.add_paragraph(item, style="List Number")
    table = document.add_table(rows=2, cols=2)
    for r, (a, b) in enumerate((("Reading", "a full man"), ("Writing", "an exact man"))):
        table.cell(r, 0).text, table.cell(r, 1).text = a, b
    document.save(str(path))
    return {"paragraphs": paragraphs, "bullets": bullets, "numbered": numbered}


# --- hostile documents ------------------------------------------------------------------------------


def encrypted_pdf(path: Path) -> None:
    pdf = canvas.Canvas(str(path), encrypt=StandardEncryption("reader-secret", "owner-secret"))
    pdf.drawString(72, 700, "A secret essay that needs a password to open.")
    pdf.save()


def scanned_pdf(path: Path) -> None:
    """Pages that are only pictures of text: no text layer at all."""
    from PIL import Image, ImageDraw
    from reportlab.lib.utils import ImageReader

    pdf = canvas.Canvas(str(path), pagesize=(WIDTH, HEIGHT))
    for _ in range(2):
        image = Image.new("L", (400, 500), 255)
        draw = ImageDraw.Draw(image)
        for y in range(40, 480, 18):
            draw.rectangle((30, y, 370 - (y % 90), y + 8), fill=0)  # lines of "print"
        pdf.drawImage(ImageReader(image), 72, 200, width=400, height=500)
        pdf.showPage()
    pdf.save()


def corrupt_pdf(path: Path) -> None:
    rng = random.Random(17)
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(rng.randrange(256) for _ in range(4000)))


def corrupt_zip(path: Path) -> None:
    """A zip archive cut short after its first entry's header: what an interrupted copy leaves."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("content.opf", "<package/>" * 500)
    path.write_bytes(buffer.getvalue()[:300])


def hollow_docx(path: Path) -> None:
    """A valid zip that is not a Word document inside (no word/document.xml)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("notes.txt", "not a document")


def zip_bomb(path: Path, *, epub: bool, megabytes: int = 300) -> None:
    """A small archive holding one entry that unpacks to `megabytes` of zeros."""
    zeros = bytes(2**20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        if epub:
            archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
            archive.writestr("META-INF/container.xml", "<container/>")
        else:
            archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml" if not epub else "OEBPS/bomb.xhtml", "w") as entry:
            for _ in range(megabytes):
                entry.write(zeros)
