"""Chunking: exact offsets, structure as boundaries, sizes that fit the model."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.chunk import MAX_CHARS, blocks, chunk_essay, clause_spans, sentence_spans
from ingest.essay import Essay
from ingest.load import corpus_files, load_essay

SAHEL = "sahel/could-malis-coup-have-been-avoided-part-two.txt"


def _essay(text: str) -> Essay:
    return Essay("x.md", "X", text)


def test_offsets_round_trip_on_every_chunk_of_the_shipped_corpus(corpus_dir: Path) -> None:
    total = 0
    for path in corpus_files(corpus_dir):
        essay = load_essay(path, corpus_dir, max_bytes=5 * 2**20)
        chunks = chunk_essay(essay)
        assert chunks, essay.id
        for i, c in enumerate(chunks):
            assert essay.text[c.start : c.end] == c.text
            assert c.text.strip() == c.text and c.text
            assert c.ordinal == i and len(c.text) <= MAX_CHARS
        total += len(chunks)
    assert total > 2500


def test_each_numbered_item_of_the_sahel_essay_starts_its_own_chunk(corpus_dir: Path) -> None:
    essay = load_essay(corpus_dir / SAHEL, corpus_dir, max_bytes=5 * 2**20)
    chunks = chunk_essay(essay)
    for n in range(1, 11):
        starting = [c for c in chunks if re.match(rf"\s*{n}\. ", c.text)]
        assert len(starting) == 1, n
    for c in chunks:  # never two items in one chunk
        assert len(re.findall(r"(?m)^\s*\d{1,2}\. [A-Z]", c.text)) <= 1


def test_blocks_split_at_headings_items_and_quotes() -> None:
    text = "# Title\n\nFirst para\ncontinues here.\n- one\n- two\n> verse a\n> verse b\n\nLast."
    kinds = [(b.kind, text[b.start : b.end]) for b in blocks(text)]
    assert kinds == [
        ("heading", "# Title"),
        ("prose", "First para\ncontinues here."),
        ("item", "- one"),
        ("item", "- two"),
        ("quote", "> verse a\n> verse b"),
        ("prose", "Last."),
    ]


def test_short_paragraphs_merge_and_headings_are_recorded() -> None:
    text = "# Part One\n\nShort.\n\nAlso short.\n\n# Part Two\n\n" + "Long sentence here. " * 20
    chunks = chunk_essay(_essay(text.strip()))
    assert [c.heading for c in chunks] == ["Part One", "Part Two"]
    assert chunks[0].text == "Short.\n\nAlso short."


def test_long_paragraph_splits_at_sentence_ends() -> None:
    text = " ".join(f"Sentence number {i} says something fairly long about the topic." for i in range(60))
    chunks = chunk_essay(_essay(text))
    assert len(chunks) >= 3
    assert all(c.text.endswith(".") and len(c.text) <= MAX_CHARS for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")


def test_sentence_spans_keep_offsets() -> None:
    text = "One. “Two?” Three! four stays with three."
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["One.", "“Two?”", "Three! four stays with three."]


def test_a_long_sentence_divides_into_clauses_with_their_offsets() -> None:
    text = (
        "Preamble. The powers delegated to the federal government are few and defined; those which "
        "remain in the State governments are numerous and indefinite, but the former will be exercised "
        "principally on external objects: war, peace and commerce. Next."
    )
    start = text.index("The powers")
    end = text.index(" Next.")
    clauses = [text[s:e] for s, e in clause_spans(text, start, end)]
    assert clauses == [
        "The powers delegated to the federal government are few and defined",
        "those which remain in the State governments are numerous and indefinite",
        "but the former will be exercised principally on external objects: war, peace and commerce.",
    ]  # "war, peace and commerce." has too few words to stand alone: it stays with its clause


def test_a_sentence_without_a_clause_boundary_stays_whole() -> None:
    text = "  A plain sentence with no place to divide it at all.  "
    assert clause_spans(text, 0, len(text)) == [(2, len(text) - 2)]
