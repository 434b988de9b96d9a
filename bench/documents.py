"""PDF extraction speed: N generated pages of two-column essay text, read by ingest/pdf.py.

The pages are laid out like a printed collection (running head, page number, two justified
columns of the shipped essays' paragraphs), so the figure includes the layout repairs, not
only PDFium's text reading. `python -m bench.phases pdf_extraction '{"pages": 200}' OUT.json`
runs this measurement alone.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.measure import PROJECT_DIR, cpu_seconds, peak_rss_mb

WIDTH, HEIGHT, SIZE, LEADING = 612.0, 792.0, 10.0, 12.5


def pdf_extraction(spec: dict) -> dict:
    """Pages per second for ingest.pdf.extract on `pages` generated pages (best of `repeats`)."""
    pages = int(spec.get("pages", 200))
    corpus = Path(spec.get("corpus", PROJECT_DIR / "corpus"))
    data = make_pdf(pages, corpus)
    from ingest import pdf  # imported before the clock: PDFium's start-up is not per page

    best, best_cpu = float("inf"), float("inf")
    for _ in range(int(spec.get("repeats", 3))):
        began, began_cpu = time.perf_counter(), cpu_seconds()
        part = pdf.extract(data, "bench.pdf")
        best = min(best, time.perf_counter() - began)
        best_cpu = min(best_cpu, cpu_seconds() - began_cpu)
    return {
        "pages": pages,
        "megabytes": round(len(data) / 2**20, 2),
        "seconds": round(best, 3),
        "pages_per_s": round(pages / best, 1),
        # Per CPU second too: on a shared machine the wall-clock rate moves with the other work.
        "pages_per_cpu_s": round(pages / max(best_cpu, 1e-9), 1),
        "characters": len(part.text),
        "peak_rss_mb": peak_rss_mb(),
    }


def make_pdf(pages: int, corpus: Path) -> bytes:
    """A PDF of `pages` pages: running head, page number, two justified columns of essay paragraphs."""
    import io

    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    paragraphs = [
        " ".join(block.split())
        for path in sorted(corpus.glob("*/*.md"))[:40]
        for block in path.read_text(encoding="utf-8").split("\n\n")
        if len(block) > 200 and not block.startswith(("#", "---"))
    ] or ["An essay paragraph long enough to fill a few lines of a column. " * 8]
    # The standard Times font has no glyphs beyond Latin-1 (curly quotes are in it, through WinAnsi).
    paragraphs = [p.encode("cp1252", "replace").decode("cp1252") for p in paragraphs]
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=(WIDTH, HEIGHT), invariant=1)
    column = (WIDTH - 144 - 24) / 2
    lines = _lines(paragraphs, column, lambda text: stringWidth(text, "Times-Roman", SIZE))
    per_column = int((HEIGHT - 180) / LEADING)
    for number in range(1, pages + 1):
        pdf.setFont("Times-Italic", 8)
        pdf.drawString(72, HEIGHT - 50, "Essays, or Counsels Civil and Moral")
        pdf.drawCentredString(WIDTH / 2, 40, str(number))
        for side in range(2):
            y = HEIGHT - 90
            for _ in range(per_column):
                words, last = next(lines)
                text = pdf.beginText(72 + side * (column + 24), y)
                text.setFont("Times-Roman", SIZE)
                if not last and len(words) > 1:
                    natural = stringWidth(" ".join(words), "Times-Roman", SIZE)
                    text.setWordSpace((column - natural) / (len(words) - 1))
                text.textOut(" ".join(words))
                pdf.drawText(text)
                y -= LEADING
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def _lines(paragraphs: list[str], width: float, measure):
    """Endless greedy lines over the paragraphs, as (words, is the paragraph's last line)."""
    while True:
        for paragraph in paragraphs:
            line: list[str] = []
            for word in paragraph.split(" "):
                if line and measure(" ".join([*line, word])) > width:
                    yield line, False
                    line = []
                line.append(word)
            yield line, True
