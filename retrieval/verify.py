"""Check citations against the stored essay text, the step that makes an answer trustworthy."""

from __future__ import annotations

import re

from retrieval.types import Citation

_WS = re.compile(r"\s+")


def is_verbatim(quote: str, essay_text: str, start: int, end: int) -> bool:
    """True when `quote` is exactly the essay's text at start:end, and not empty."""
    return bool(quote.strip()) and 0 <= start < end <= len(essay_text) and essay_text[start:end] == quote


def locate(quote: str, essay_text: str, *, near: int = 0) -> tuple[int, int] | None:
    """Offsets of `quote` in the essay (the occurrence closest to `near`), tolerating whitespace runs."""
    quote = quote.strip()
    if not quote:
        return None
    hits = [m.start() for m in re.finditer(re.escape(quote), essay_text)]
    if hits:
        start = min(hits, key=lambda s: abs(s - near))
        return start, start + len(quote)
    # Models and people re-flow whitespace; match any whitespace run instead.
    pattern = r"\s+".join(re.escape(part) for part in _WS.split(quote))
    found = [(m.start(), m.end()) for m in re.finditer(pattern, essay_text)]
    return min(found, key=lambda se: abs(se[0] - near)) if found else None


def verify(citation: Citation, essay_text: str | None) -> Citation:
    """Recompute `verified` from the stored text; an unknown essay is never verified."""
    ok = essay_text is not None and is_verbatim(citation.quote, essay_text, citation.start, citation.end)
    if ok == citation.verified:
        return citation
    from dataclasses import replace

    return replace(citation, verified=ok)
