"""Structure-aware chunking: paragraphs, list items, block quotes and headings are boundaries.

Chunks are spans of the essay's clean text (`text[start:end] == chunk.text`), sized for
MiniLM's 256-token window: short prose paragraphs are merged with their neighbour, long
ones are split at sentence ends into near-equal parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.essay import Chunk, Essay, page_span

#: Bump when chunking changes: the index is rebuilt instead of mixing old and new chunks.
CHUNKER_VERSION = "blocks-v2"

MAX_CHARS = 1000  # ~220 word pieces with a title prefix: inside the 256-token window
MIN_CHARS = 250  # shorter prose paragraphs are merged with the next one
TINY_CHARS = 80  # shorter list items and quotes are merged with a neighbour of their kind

_LIST_ITEM = re.compile(r"^\s*(?:[-*+•▪◦‣·]|\(?\d{1,3}[.)]|\(?[a-zA-Z][.)])\s+\S")
_HEADING = re.compile(r"^\s*#{1,6}\s+\S")
_QUOTE = re.compile(r"^\s*>")
_SENTENCE_END = re.compile(r"(?<=[.!?…])([”’\"')\]]*)\s+(?=[\"“‘(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class Block:
    """A structural unit of the text: kind is prose, item, quote or heading."""

    kind: str
    start: int
    end: int


def blocks(text: str) -> list[Block]:
    """Split text into blocks: blank lines separate; every item, heading and quote line starts one."""
    out: list[Block] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        start, end = pos, pos + len(line.rstrip("\n"))
        pos += len(line)
        if not line.strip():
            out.append(Block("blank", start, end))
            continue
        kind = _kind(line)
        prev = out[-1] if out else None
        # Continuation lines join the open block; quotes join quotes (a stanza is one unit).
        if (
            prev
            and prev.kind != "blank"
            and prev.kind != "heading"
            and (
                (kind == "prose" and prev.kind in {"prose", "item"})
                or (kind == "quote" and prev.kind == "quote")
            )
        ):
            out[-1] = Block(prev.kind, prev.start, end)
        else:
            out.append(Block(kind, start, end))
    return [b for b in out if b.kind != "blank"]


def _kind(line: str) -> str:
    if _HEADING.match(line):
        return "heading"
    if _QUOTE.match(line):
        return "quote"
    if _LIST_ITEM.match(line):
        return "item"
    return "prose"


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence offsets within text[start:end], trimmed of surrounding whitespace."""
    end = len(text) if end is None else end
    spans, cur = [], start
    for m in _SENTENCE_END.finditer(text, start, end):
        spans.append((cur, m.start() + len(m.group(1))))
        cur = m.end()
    spans.append((cur, end))
    return [_trim(text, s, e) for s, e in spans if text[s:e].strip()]


# Where a long sentence divides into clauses: a semicolon, a colon, a dash, or a comma before a
# conjunction or relative pronoun that opens a clause of its own.
_CLAUSE_CUT = re.compile(
    r"[;:]\s+|\s+(?:—|--)\s*|,\s+(?=(?:but|and|for|which|yet|whereas|while|though|although|because"
    r"|since|so|or|nor)\b)"
)


def clause_spans(text: str, start: int, end: int, *, shortest: int = 6) -> list[tuple[int, int]]:
    """The clauses of text[start:end] (a sentence), each of at least `shortest` words: a piece
    shorter than that stays with the one before it. One span, the whole, when it does not divide."""
    pieces, cur = [], start
    for m in _CLAUSE_CUT.finditer(text, start, end):
        pieces.append((cur, m.start()))
        cur = m.end()
    pieces.append((cur, end))
    merged: list[tuple[int, int]] = []
    for s, e in pieces:
        if merged and (_words(text, s, e) < shortest or _words(text, *merged[-1]) < shortest):
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    out = []
    for s, e in merged:
        s, e = _trim(text, s, e)
        while e > s and text[e - 1] in ",;:—-":
            e -= 1
        if e > s:
            out.append((s, e))
    return out if len(out) > 1 else [_trim(text, start, end)]


def _words(text: str, s: int, e: int) -> int:
    return len(text[s:e].split())


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _split_long(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split a long block at sentence ends into near-equal parts of at most MAX_CHARS."""
    if end - start <= MAX_CHARS:
        return [(start, end)]
    sentences = sentence_spans(text, start, end)
    parts = -(-(end - start) // MAX_CHARS)
    target = (end - start) / parts
    out: list[tuple[int, int]] = []
    cur_s = sentences[0][0]
    for i, (_, e) in enumerate(sentences):
        last = i == len(sentences) - 1
        if last or (e - cur_s >= target) or (sentences[i + 1][1] - cur_s > MAX_CHARS):
            out.append((cur_s, e))
            if not last:
                cur_s = sentences[i + 1][0]
    # A single sentence longer than MAX_CHARS is split at spaces so nothing is cut off by the model.
    return [piece for s, e in out for piece in _split_words(text, s, e)]


def _split_words(text: str, start: int, end: int) -> list[tuple[int, int]]:
    pieces = []
    while end - start > MAX_CHARS:
        cut = text.rfind(" ", start, start + MAX_CHARS)
        cut = cut if cut > start else start + MAX_CHARS
        pieces.append(_trim(text, start, cut))
        start = cut
    pieces.append(_trim(text, start, end))
    return [p for p in pieces if p[1] > p[0]]


def chunk_essay(essay: Essay) -> list[Chunk]:
    """Cut an essay into chunks; each records its offsets and the heading it sits under."""
    text = essay.text
    spans: list[list] = []  # [start, end, heading, kind]
    heading = ""
    pending: tuple[int, int] | None = None  # a short prose paragraph waiting to merge forward

    def flush() -> None:
        # A short paragraph with no prose after it joins the prose before it, when that fits.
        if pending is None:
            return
        prev = spans[-1] if spans else None
        if prev and prev[3] == "prose" and prev[2] == heading and pending[1] - prev[0] <= MAX_CHARS:
            prev[1] = pending[1]
        else:
            spans.append([*pending, heading, "prose"])

    for block in blocks(text):
        if block.kind == "heading":
            flush()
            pending = None
            heading = text[block.start : block.end].lstrip("# ").strip()
            continue
        if block.kind != "prose":
            flush()
            pending = None
        start = pending[0] if pending else block.start
        pending = None
        if block.kind == "prose" and block.end - start < MIN_CHARS:
            pending = (start, block.end)
            continue
        spans.extend([s, e, heading, block.kind] for s, e in _split_long(text, start, block.end))
    flush()
    trimmed = [(*_trim(text, s, e), h) for s, e, h, _ in _merge_tiny(spans)]
    return [
        Chunk(essay.id, i, text[s:e], s, e, h, page_span(essay.page_starts, s, e))
        for i, (s, e, h) in enumerate(trimmed)
    ]


def _merge_tiny(spans: list[list]) -> list[list]:
    """Fold tiny items and quotes (footnotes, epigraph titles) into a same-kind neighbour."""
    out: list[list] = []
    for span in spans:
        prev = out[-1] if out else []
        fits = bool(prev) and prev[3] == span[3] and prev[2] == span[2] and span[1] - prev[0] <= MAX_CHARS
        if fits and (span[1] - span[0] < TINY_CHARS or prev[1] - prev[0] < TINY_CHARS):
            prev[1] = span[1]
        else:
            out.append(span)
    return out


def embedding_text(chunk: Chunk, title: str) -> str:
    """What the model sees: the chunk with its essay title (and heading) as context."""
    context = title if not chunk.heading or chunk.heading in title else f"{title} — {chunk.heading}"
    return f"{context}\n{chunk.text}"
