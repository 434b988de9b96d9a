"""Sentence units of a chunk: embedded at index time so answering can rank sentences by meaning.

Each sentence of each chunk gets its own vector (the sentence alone, no title: measured on the
tuning questions, plain sentences put the sentence that answers first more often than sentences
pooled from the passage's token states, 0.32 against 0.20). They live in the catalog beside the
essay's text, in chunk and sentence order, named `<chunk id>/<n>` when retrieved, so the same
sentence spans can be recomputed from the text at any time and a question costs no model call
beyond its own embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingest.chunk import sentence_spans
from ingest.essay import Chunk

#: Bump when the units or what is embedded for them change: the index is rebuilt.
SENTENCES_VERSION = "plain-v2"  # v2: kept in the catalog, not in Chroma


def sentence_units(text: str, chunk: Chunk) -> list[tuple[int, int]]:
    """(start, end) of each sentence of the chunk, as offsets into the essay's text."""
    return sentence_spans(text, chunk.start, chunk.end)


def sentence_id(chunk_id: str, n: int) -> str:
    return f"{chunk_id}/{n}"


def essay_sentence_ids(essay_id: str, counts: Sequence[int]) -> list[str]:
    """The ids of an essay's sentence vectors, in the catalog's order: `counts[i]` for chunk i."""
    return [
        sentence_id(f"{essay_id}#{ordinal}", n)
        for ordinal, count in enumerate(counts)
        for n in range(int(count))
    ]


def chunk_of(sentence: str) -> str:
    """The chunk id a sentence id belongs to."""
    return sentence.rsplit("/", 1)[0]
