"""The domain values of answering: a retrieved Passage, a Citation, an Answer, and the seams."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ingest.essay import Chunk

#: The one phrase every answerer uses when the essays do not support an answer; tests assert on it.
CANNOT_ANSWER = "The essays do not say enough to answer that."


@dataclass(frozen=True)
class EssayInfo:
    """What a source card shows about an essay."""

    id: str
    title: str
    author: str = ""
    year: str = ""
    collection: str = ""


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage (offsets into its essay's text) and its cosine to the query."""

    start: int
    end: int
    closeness: float


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its essay's details, its fused relevance score and its rank.

    `similarity` is the cosine of its vector to the query's (0 when the dense search did not
    return it): how close in meaning it is, whatever words the question uses. `sentences` are its
    sentences with their own cosines to the query, from the vectors stored at index time.
    """

    chunk: Chunk
    essay: EssayInfo
    score: float
    rank: int = 0
    similarity: float = 0.0
    sentences: tuple[Sentence, ...] = ()


@dataclass(frozen=True)
class Citation:
    """`quote` is meant to be exactly `essay_text[start:end]`; `verified` says it was checked."""

    number: int
    essay: str
    title: str
    quote: str
    start: int
    end: int
    verified: bool
    passage: Passage | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Turn:
    """One earlier exchange in a conversation; `essays` are those its answer drew on."""

    question: str
    answer: str = ""
    standalone: str = ""
    essays: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What the person sees: the text with [n] markers, its citations, and the passages behind it."""

    text: str
    citations: tuple[Citation, ...] = ()
    refused: bool = False
    passages: tuple[Passage, ...] = ()
    question: str = ""
    standalone: str = ""
    notice: str = ""
    mode: str = "extractive"


CONTEXT_PASSAGES = 2  # a refusal's closest passages that still say what the talk is about


def turn_of(answer: Answer) -> Turn:
    """An answer as a Turn of the conversation: the essays it cites, else those of its best passages."""
    cited = [c.essay for c in answer.citations]
    essays = cited or [p.chunk.essay_id for p in answer.passages[:CONTEXT_PASSAGES]]
    return Turn(answer.question, answer.text, answer.standalone, tuple(dict.fromkeys(essays)))


class Answerer(Protocol):
    """Composes an Answer from retrieved passages."""

    def answer(self, question: str, passages: Sequence[Passage], history: Sequence[Turn]) -> Answer: ...


class StreamingAnswerer(Answerer, Protocol):
    """An answerer that can also yield text as it is generated."""

    def stream(
        self, question: str, passages: Sequence[Passage], history: Sequence[Turn]
    ) -> Iterator[str]: ...
