"""PDF, EPUB and Word essays: real files made by writer libraries, read into clean text with pages,
hostile ones rejected in one line, and a mixed folder indexed and asked end to end."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import documents
import pytest

from ingest.catalog import Catalog
from ingest.chunk import chunk_essay
from ingest.document import MAX_UNPACKED
from ingest.errors import RejectedFile
from ingest.essay import Essay, page_span
from ingest.load import load_essay, load_essays
from ingest.pipeline import catalog_path, run_ingest
from ingest.settings import Settings
from ui.cards import page_label

MB = 2**20
TWO_COLUMN = ("bacon/04-of-revenge.md", "bacon/50-of-studies.md", "bacon/27-of-friendship.md")
HEAD = "Essays, or Counsels Civil and Moral"
CHAPTERS = ("bacon/01-of-truth.md", "bacon/11-of-great-place.md", "bacon/57-of-anger.md")


def load(
    path: Path, root: Path | None = None, *, max_bytes: int = 5 * MB, max_document_bytes: int = 50 * MB
) -> list[Essay]:
    return load_essays(path, root or path.parent, max_bytes=max_bytes, max_document_bytes=max_document_bytes)


def assert_offsets_and_pages(essay: Essay, pages: int) -> None:
    """Every chunk is an exact slice of the text, and knows the pages it spans (none without pages)."""
    chunks = chunk_essay(essay)
    assert chunks
    for chunk in chunks:
        assert essay.text[chunk.start : chunk.end] == chunk.text
        if pages:
            assert chunk.pages == page_span(essay.page_starts, chunk.start, chunk.end)
            assert chunk.pages is not None and 1 <= chunk.pages[0] <= chunk.pages[1] <= pages
        else:
            assert chunk.pages is None


def assert_paragraph_pages(essay: Essay, laid: documents.Laid) -> None:
    for paragraph, first, last in laid.paragraphs:
        at = essay.text.index(paragraph)
        assert page_span(essay.page_starts, at, at + len(paragraph)) == (first, last), paragraph[:60]


@pytest.fixture(scope="module")
def two_column(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, documents.Laid]:
    path = tmp_path_factory.mktemp("pdf") / "three-essays.pdf"
    laid = documents.write_pdf(
        path, TWO_COLUMN, columns=2, head=HEAD, justify=True, title="Three Essays", author="Francis Bacon",
        interleave=True,
    )  # fmt: skip
    return path, laid


def test_a_two_column_pdf_reads_each_column_in_turn(two_column) -> None:
    path, laid = two_column
    [essay] = load(path)
    assert laid.pages == 6 and essay.page_starts[0] == 0 and len(essay.page_starts) == laid.pages
    # The whole text, exactly: columns in order although drawn row by row, the running head and
    # page numbers gone, hyphenated words whole, ligatures spelled out, paragraphs re-formed.
    assert essay.text == laid.text
    assert HEAD not in essay.text and "ﬁ" not in essay.text and "ﬂ" not in essay.text
    assert "REVENGE is a kind of wild justice" in essay.text and "friendship" in essay.text
    assert len(laid.hyphenated) > 20
    for head, tail in laid.hyphenated:
        assert f"{head}{tail}" in essay.text and f"{head}-{tail}" not in essay.text
    assert (essay.title, essay.author, essay.id) == ("Three Essays", "Francis Bacon", "three-essays.pdf")
    assert_paragraph_pages(essay, laid)
    assert_offsets_and_pages(essay, laid.pages)


def test_a_pdf_loses_running_heads_page_numbers_and_line_end_hyphens(tmp_path: Path) -> None:
    path = tmp_path / "friendship.pdf"
    laid = documents.write_pdf(path, ("emerson/06-friendship.md",), head="Ralph Waldo Emerson — Essays")
    [essay] = load(path)
    assert laid.pages >= 8 and len(laid.hyphenated) > 20
    assert essay.text == laid.text
    assert "Ralph Waldo Emerson — Essays" not in essay.text
    lines = essay.text.split("\n")
    assert not [n for n in range(1, laid.pages + 1) if str(n) in lines]  # no page number left as a line
    for head, tail in laid.hyphenated:
        assert f"{head}{tail}" in essay.text and f"{head}-" not in essay.text.replace(f"{head}-{tail}", "")
    # No title in the file's metadata: its first heading is the title.
    assert essay.title == "Friendship" and essay.text.startswith("# Friendship\n\n")
    assert_paragraph_pages(essay, laid)
    assert_offsets_and_pages(essay, laid.pages)
    spans = {c.pages for c in chunk_essay(essay)}
    assert (1, 1) in spans and any(a < b for a, b in spans if a)  # some passages run over a page break
    assert page_label((4, 4)) == "p. 4" and page_label((4, 5)) == "pp. 4–5" and page_label(None) == ""


def test_an_epub_is_one_essay_per_chapter(tmp_path: Path) -> None:
    path = tmp_path / "essays.epub"
    titles = documents.write_epub(
        path, CHAPTERS, title="Essays (Selection)", author="Francis Bacon", year="1625"
    )
    essays = load(path)
    assert [e.title for e in essays] == titles == ["Of Truth", "Of Great Place", "Of Anger"]
    assert [e.id for e in essays] == [
        "essays.epub#01-of-truth",
        "essays.epub#02-of-great-place",
        "essays.epub#03-of-anger",
    ]
    for essay, rel in zip(essays, CHAPTERS, strict=True):
        _, paragraphs = documents.essay(rel)
        assert essay.text.startswith(f"## {essay.title}\n\n")
        assert all(p in essay.text for p in paragraphs)  # the second chapter's two files as one
        assert (essay.author, essay.year, essay.collection) == ("Francis Bacon", "1625", "Essays (Selection)")
        assert "by Francis Bacon" not in essay.text  # the title page is front matter, not a chapter
        assert not any(t in essay.text for t in titles if t != essay.title)
        assert_offsets_and_pages(essay, 0)
    with pytest.raises(ValueError, match="load_essays"):
        load_essay(path, tmp_path, max_bytes=5 * MB)


def test_a_word_document_keeps_its_headings_lists_and_table(tmp_path: Path) -> None:
    path = tmp_path / "drafts" / "on-studies.docx"
    path.parent.mkdir()
    parts = documents.write_docx(path, title="On Studies, a Draft", author="A. Reader")
    [essay] = load(path, tmp_path)
    bullets = "\n".join(f"- {b}" for b in parts["bullets"])
    numbered = "\n".join(f"{n}. {b}" for n, b in enumerate(parts["numbered"], 1))
    assert essay.text == (
        f"# On Studies, a Draft\n\n# What studies are for\n\n{parts['paragraphs'][0]}\n\n{bullets}\n\n"
        f"# How to read\n\n{parts['paragraphs'][1]}\n\n{numbered}\n\n"
        "Reading | a full man\nWriting | an exact man"
    )
    assert (essay.title, essay.author, essay.collection) == ("On Studies, a Draft", "A. Reader", "drafts")
    assert_offsets_and_pages(essay, 0)
    headings = {c.heading for c in chunk_essay(essay)}
    assert {"What studies are for", "How to read"} <= headings


# --- hostile documents ------------------------------------------------------------------------------

HOSTILE = {
    "locked.pdf": (documents.encrypted_pdf, "encrypted PDF (needs a password)"),
    "scanned.pdf": (documents.scanned_pdf, "no text layer (scanned pages?); OCR is not supported"),
    "damaged.pdf": (documents.corrupt_pdf, "not a readable PDF"),
    "damaged.epub": (documents.corrupt_zip, "not a valid EPUB (not a readable zip archive)"),
    "damaged.docx": (documents.corrupt_zip, "not a valid Word document (not a readable zip archive)"),
    "hollow.docx": (documents.hollow_docx, "not a readable Word document"),
    "bomb.epub": (lambda p: documents.zip_bomb(p, epub=True), "(a zip bomb?)"),
    "bomb.docx": (lambda p: documents.zip_bomb(p, epub=False), "(a zip bomb?)"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for name, (write, _) in HOSTILE.items():
        write(folder / name)
    return folder


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_document_is_rejected_in_one_line(hostile: Path, name: str) -> None:
    with pytest.raises(RejectedFile) as caught:
        load(hostile / name)
    assert HOSTILE[name][1] in caught.value.reason and "\n" not in caught.value.reason
    if name.startswith("bomb"):
        assert (hostile / name).stat().st_size < MB < MAX_UNPACKED  # small on disk, huge unpacked


def test_documents_over_a_limit_are_rejected(two_column) -> None:
    path, _ = two_column
    with pytest.raises(RejectedFile, match=r"over the 20\.0 KB limit \(MARGINALIA_MAX_DOCUMENT_MB\)"):
        load(path, max_document_bytes=20 * 1024)
    with pytest.raises(
        RejectedFile, match=r"its text is .* over the 10\.0 KB limit \(MARGINALIA_MAX_FILE_MB\)"
    ):
        load(path, max_bytes=10 * 1024, max_document_bytes=50 * MB)
    assert load(path, max_bytes=5 * MB, max_document_bytes=path.stat().st_size)


def test_an_index_from_before_pages_opens_and_takes_pdfs(tmp_path: Path, two_column) -> None:
    """A catalog written before page numbers existed gains its pages table; its essays have none."""
    path = tmp_path / "catalog.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('generation', '3');"
            "CREATE TABLE essays (id TEXT PRIMARY KEY, title TEXT NOT NULL, author TEXT NOT NULL,"
            " year TEXT NOT NULL, collection TEXT NOT NULL, source_hash TEXT NOT NULL, text TEXT NOT NULL,"
            " indexed_at REAL NOT NULL);"
            "CREATE TABLE chunks (essay_id TEXT NOT NULL REFERENCES essays(id) ON DELETE CASCADE,"
            ' ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,'
            " heading TEXT NOT NULL,"
            " PRIMARY KEY (essay_id, ordinal));"
            "INSERT INTO essays VALUES ('old.md', 'Old', '', '', '', 'h', 'An old essay.', 0);"
            "INSERT INTO chunks VALUES ('old.md', 0, 0, 13, '');"
        )
    catalog = Catalog(path)
    [(old, [chunk])] = list(catalog.chunks())
    assert old.page_starts == () and chunk.pages is None and chunk.text == "An old essay."
    [pdf] = load(two_column[0])
    catalog.put(pdf, chunk_essay(pdf))
    stored = catalog.essay(pdf.id)
    assert stored is not None and stored.page_starts == pdf.page_starts
    assert {c.id: c.pages for _, cs in catalog.chunks() for c in cs} == {
        c.id: c.pages for c in [chunk, *chunk_essay(pdf)]
    }
    catalog.delete(pdf.id)  # its pages go with it
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM pages").fetchone()[0] == 0
    catalog.close()


# --- end to end ---------------------------------------------------------------------------------------


def test_a_mixed_folder_is_indexed_and_a_pdf_passage_answers(tmp_path: Path, hostile: Path, embedder) -> None:
    """Text, PDF, EPUB and Word essays and every hostile document in one folder, the real model,
    real Chroma: the good files are indexed, the bad listed with a reason, a question is answered
    from a PDF passage whose citation is verified and carries its page."""
    import shutil

    from retrieval.assistant import Assistant

    corpus = tmp_path / "corpus"
    for folder in ("bacon", "papers", "books"):
        (corpus / folder).mkdir(parents=True)
    shutil.copy(documents.CORPUS / "bacon/50-of-studies.md", corpus / "bacon")
    laid = documents.write_pdf(
        corpus / "papers" / "revenge.pdf",
        ("bacon/04-of-revenge.md", "bacon/27-of-friendship.md"),
        columns=2,
        head=HEAD,
        justify=True,
        title="Of Revenge and of Friendship",
        author="Francis Bacon",
    )
    documents.write_epub(
        corpus / "books" / "essays.epub",
        CHAPTERS,
        title="Essays (Selection)",
        author="Francis Bacon",
        year="1625",
    )
    documents.write_docx(corpus / "draft.docx", title="On Studies, a Draft", author="A. Reader")
    for name in HOSTILE:
        shutil.copy(hostile / name, corpus / name)
    settings = Settings.from_env(env={}, corpus_dir=corpus, index_dir=tmp_path / "index")

    summary = run_ingest(settings, embedder=embedder)
    assert sorted(summary.added) == [
        "bacon/50-of-studies.md",
        "books/essays.epub#01-of-truth",
        "books/essays.epub#02-of-great-place",
        "books/essays.epub#03-of-anger",
        "draft.docx",
        "papers/revenge.pdf",
    ]
    rejected = {r["path"]: r["reason"] for r in summary.rejected}
    assert set(rejected) == set(HOSTILE) and all("\n" not in r for r in rejected.values())

    assistant = Assistant(settings, embedder=embedder)
    answer = assistant.ask("What kind of justice is revenge?")
    assert not answer.refused
    cited = [c for c in answer.citations if c.essay == "papers/revenge.pdf"]
    assert cited and all(c.verified for c in cited)
    for citation in cited:
        passage = citation.passage
        assert passage is not None and passage.chunk.pages is not None
        first, last = passage.chunk.pages
        text = assistant.essay_text("papers/revenge.pdf") or ""
        assert text[citation.start : citation.end] == citation.quote
        para = next(p for p in laid.paragraphs if citation.quote in p[0])
        assert first <= para[2] and para[1] <= last  # the passage's pages overlap its paragraph's
        assert page_label(passage.chunk.pages).startswith("p")

    again = run_ingest(settings, embedder=embedder)  # every chapter of the unchanged book stays as it is
    assert not again.changed and "books/essays.epub#02-of-great-place" in again.unchanged
    documents.write_epub(
        corpus / "books" / "essays.epub", CHAPTERS[:2], title="Essays", author="F. B.", year="1625"
    )
    third = run_ingest(settings, embedder=embedder)
    assert third.removed == ["books/essays.epub#03-of-anger"]
    assert sorted(third.updated) == ["books/essays.epub#01-of-truth", "books/essays.epub#02-of-great-place"]
    catalog = Catalog(catalog_path(settings))
    assert json.loads(
        sqlite3.connect(catalog.path).execute("SELECT starts FROM pages").fetchone()[0]
    ) == list(catalog.essay("papers/revenge.pdf").page_starts)
    catalog.close()
