"""The domain values of ingestion: an Essay and the Chunks cut from its clean text."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Essay:
    """One cleaned essay; `id` is its path relative to the corpus folder (POSIX slashes)."""

    id: str
    title: str
    text: str
    author: str = ""
    year: str = ""
    collection: str = ""
    source_hash: str = ""
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    #: For paged sources (PDF): the offset in `text` where each page starts, page 1 first.
    page_starts: tuple[int, ...] = ()

    @property
    def text_hash(self) -> str:
        return content_hash(self.text.encode("utf-8"))


@dataclass(frozen=True)
class Chunk:
    """A span of an essay's clean text: `essay.text[start:end] == text` always holds."""

    essay_id: str
    ordinal: int
    text: str
    start: int
    end: int
    heading: str = ""
    #: The first and last page the chunk is on, for paged sources (see page_span); else None.
    pages: tuple[int, int] | None = None

    @property
    def id(self) -> str:
        return f"{self.essay_id}#{self.ordinal}"


def page_span(page_starts: tuple[int, ...], start: int, end: int) -> tuple[int, int] | None:
    """The first and last page (numbered from 1) that text[start:end] lies on, given where pages start."""
    if not page_starts:
        return None
    first = max(bisect_right(page_starts, start), 1)
    return first, max(bisect_right(page_starts, max(start, end - 1)), first)


def content_hash(data: bytes) -> str:
    """Stable short hash of file bytes, used to detect changed essays."""
    return hashlib.sha256(data).hexdigest()[:32]
