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
class Passage:
    """A retrieved chunk with its essay's details and its fused relevance score."""

    chunk: Chunk
    essay: EssayInfo
    score: float
    rank: int = 0


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
    """One earlier exchange in a conversation."""

    question: str
    answer: str = ""
    standalone: str = ""


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


class Answerer(Protocol):
    """Composes an Answer from retrieved passages."""

    def answer(self, question: str, passages: Sequence[Passage], history: Sequence[Turn]) -> Answer: ...


class StreamingAnswerer(Answerer, Protocol):
    """An answerer that can also yield text as it is generated."""

    def stream(
        self, question: str, passages: Sequence[Passage], history: Sequence[Turn]
    ) -> Iterator[str]: ...
