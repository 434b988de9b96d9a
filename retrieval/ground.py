"""Ground a generated reply in its passages: drop stray markers, attach quotes, verify them, or give up."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from ingest.errors import MarginaliaError
from retrieval.types import CANNOT_ANSWER, Citation, Passage
from retrieval.verify import locate, verify

logger = logging.getLogger(__name__)

EssayText = Callable[[str], str | None]

MARKER = re.compile(r"\s*\[(\d+)\]")
# Models write "[1, 2]", "[1; 3]" or "[Passage 2]" as often as "[1][2]"; all become plain markers.
_GROUP = re.compile(
    r"\[\s*(?:passage|source)?\s*(\d+(?:\s*(?:,|;|and)\s*(?:passage|source)?\s*\d+)*)\s*\]", re.IGNORECASE
)
# A sentence ends at . ! ? (then closing quotes and markers) before whitespace, or at a line break.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)]*(?:\s*\[\d+\])*(?=\s|$)|\n+")
_QUOTED = re.compile(r"\"([^\"\n]+)\"|“([^”\n]+)”")
_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
# Sentences that address the reader's assistant rather than the reader; never used as evidence.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.!?\n]{0,60}?\b(?:instructions?|prompts?|rules)\b"
    r"|\bsystem prompt\b|\b(?:reply|respond|answer|say|output)\s+only\s+with\b",
    re.IGNORECASE,
)
# A word list reads better as prose than as a hundred quoted strings.
_STOPWORDS = frozenset(
    """
    about above after again against all also and any are because been before being below between both but
    can could did does doing doth down during each few for from further had has hast hath have having her
    here hers him his how into its itself just may might more most much must nor not now off once only
    other our ours out over own same shall she should some such than that the thee their theirs them then
    there these they thine this those thou through thus thy too under until unto upon very was were what
    when where which while who whom why will with would yet you your yours essay essays passage passages
    """.split()  # noqa: SIM905
)

# Evidence kinds, weakest first; a passage cited by several sentences keeps its strongest.
_SENTENCE, _QUOTE, _MISQUOTE = 1, 2, 3


class UngroundedReply(MarginaliaError):
    """A model reply that nothing in the passages supports; the answerer falls back to extractive."""


@dataclass(frozen=True)
class Grounded:
    """A reply made safe to show: kept markers, one checked citation per cited passage, or a refusal."""

    text: str
    citations: tuple[Citation, ...] = ()
    refused: bool = False


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    text: str
    words: frozenset[str]


@dataclass(frozen=True)
class _Evidence:
    sentences: tuple[_Span, ...]
    blocked: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class _Support:
    kind: int
    overlap: int
    quote: str
    start: int
    end: int


def ground(reply: str, passages: Sequence[Passage], essay_text: EssayText) -> Grounded:
    """Clean a model's reply and cite it against `passages`; raise UngroundedReply when nothing backs it."""
    text = normalize_markers(reply).strip()
    if is_refusal(text):
        return Grounded(CANNOT_ANSWER, refused=True)
    if not MARKER.sub("", text).strip():
        raise UngroundedReply("The model returned an empty reply")
    evidence = [_evidence(p) for p in passages]
    text, supports = _check_markers(text, passages, evidence)
    if not supports:
        text, supports = _attach(text, passages, evidence)
    if not supports:
        raise UngroundedReply("The model's answer cites no passage and matches none")
    return Grounded(text, _citations(supports, passages, essay_text))


def normalize_markers(text: str) -> str:
    """Rewrite grouped markers such as [1, 2] or [Passage 3] as [1][2] and [3]."""
    return _GROUP.sub(lambda m: "".join(f"[{n}]" for n in re.findall(r"\d+", m.group(1))), text)


def is_refusal(text: str) -> bool:
    """True when the reply contains the fixed refusal phrase, or is a near copy of it."""
    norm, phrase = _normalize(text), _normalize(CANNOT_ANSWER)
    if phrase in norm:
        return True
    return bool(norm) and len(norm) <= 2 * len(phrase) and SequenceMatcher(None, norm, phrase).ratio() >= 0.8


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, trailing markers included, surrounding whitespace excluded."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    trimmed = []
    for s, e in spans:
        piece = text[s:e]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            trimmed.append((s + lead, s + len(piece.rstrip())))
    return trimmed


def content_words(text: str) -> frozenset[str]:
    """Lower-cased, crudely stemmed words that carry meaning, for overlap scoring."""
    words = set()
    for word in _WORD.findall(text.lower()):
        word = re.sub(r"['’]s$", "", word)
        if len(word) >= 3 and word not in _STOPWORDS:
            words.add(_stem(word))
    return frozenset(words)


def _stem(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in ("ing", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", MARKER.sub("", text).lower()).split())


def _evidence(passage: Passage) -> _Evidence:
    # Candidates come from the chunk text the model saw; verify() later checks them against the stored essay.
    chunk, sentences, blocked = passage.chunk, [], []
    for s, e in sentence_spans(chunk.text):
        s += len(chunk.text[s:e]) - len(chunk.text[s:e].lstrip("# "))
        span = _Span(chunk.start + s, chunk.start + e, chunk.text[s:e], content_words(chunk.text[s:e]))
        if _INSTRUCTION.search(span.text):
            blocked.append((span.start, span.end))
        elif span.words:
            sentences.append(span)
    return _Evidence(tuple(sentences), tuple(blocked))


def _check_markers(
    text: str, passages: Sequence[Passage], evidence: Sequence[_Evidence]
) -> tuple[str, dict[int, list[_Support]]]:
    supports: dict[int, list[_Support]] = {}

    def one_sentence(sentence: str) -> str:
        claim, seen = MARKER.sub("", sentence), set()
        cited = {int(n) for n in MARKER.findall(sentence) if 1 <= int(n) <= len(passages)}

        def keep(m: re.Match[str]) -> str:
            n = int(m.group(1))
            support = None
            if n in cited and n not in seen:
                others = [passages[o - 1] for o in cited if o != n]
                support = _support(claim, passages[n - 1], evidence[n - 1], others=others)
            if support is None or (support.kind == _SENTENCE and support.overlap < 1):
                logger.debug("dropped marker [%d] from %r", n, sentence)
                return ""
            seen.add(n)
            supports.setdefault(n, []).append(support)
            return m.group(0)

        return MARKER.sub(keep, sentence)

    return _rewrite(text, one_sentence), supports


def _attach(
    text: str, passages: Sequence[Passage], evidence: Sequence[_Evidence]
) -> tuple[str, dict[int, list[_Support]]]:
    supports: dict[int, list[_Support]] = {}

    def one_sentence(sentence: str) -> str:
        words = content_words(sentence)
        found = [(s, n) for n, p in enumerate(passages, 1) if (s := _support(sentence, p, evidence[n - 1]))]
        # Without a marker to go on, only a verbatim quote or a solid overlap earns a citation.
        found = [(s, n) for s, n in found if s.kind == _QUOTE or s.overlap >= max(2, 0.3 * len(words))]
        if not found:
            return sentence
        support, n = max(found, key=lambda sn: (sn[0].kind == _QUOTE, sn[0].overlap))
        supports.setdefault(n, []).append(support)
        return _append_marker(sentence, n)

    return _rewrite(text, one_sentence), supports


def _rewrite(text: str, change: Callable[[str], str]) -> str:
    out, last = [], 0
    for s, e in sentence_spans(text):
        out += [text[last:s], change(text[s:e])]
        last = e
    return "".join(out) + text[last:]


def _support(
    claim: str, passage: Passage, evidence: _Evidence, *, others: Sequence[Passage] = ()
) -> _Support | None:
    quotes = [q.strip() for pair in _QUOTED.findall(claim) for q in pair if len(q.strip()) >= 3]
    # A quote from another passage cited in the same sentence says nothing about this one.
    quotes = [q for q in quotes if _find(q, passage) or not any(_find(q, other) for other in others)]
    if quotes:
        return _quote_support(quotes, passage, evidence)
    words = content_words(claim)
    best = max(evidence.sentences, key=lambda span: len(words & span.words), default=None)
    if best is None:
        return None
    return _Support(_SENTENCE, len(words & best.words), best.text, best.start, best.end)


def _quote_support(quotes: list[str], passage: Passage, evidence: _Evidence) -> _Support | None:
    chunk, missing = passage.chunk, None
    for quote in quotes:
        local = _find(quote, passage)
        if local is None:
            missing = missing or quote
            continue
        start, end = chunk.start + local[0], chunk.start + local[1]
        if not any(s < end and start < e for s, e in evidence.blocked):
            return _Support(_QUOTE, len(content_words(quote)), chunk.text[local[0] : local[1]], start, end)
    if missing is None:
        return None  # every quote came from an instruction-like sentence
    # A quote the passage does not contain: kept, pointed at the passage, and flagged unverified.
    return _Support(_MISQUOTE, 0, missing, chunk.start, chunk.end)


def _find(quote: str, passage: Passage) -> tuple[int, int] | None:
    """Offsets of a quote within the passage's text, forgiving punctuation the model added at its ends."""
    text = passage.chunk.text
    return locate(quote, text) or locate(quote.strip(" .,;:!?…"), text)


def _append_marker(sentence: str, n: int) -> str:
    m = re.fullmatch(r"(.*?)([.!?]+)", sentence, re.DOTALL)
    return f"{m.group(1)} [{n}]{m.group(2)}" if m else f"{sentence} [{n}]"


def _citations(
    supports: dict[int, list[_Support]], passages: Sequence[Passage], essay_text: EssayText
) -> tuple[Citation, ...]:
    texts: dict[str, str | None] = {}
    citations = []
    for n in sorted(supports):
        passage = passages[n - 1]
        best = max(supports[n], key=lambda s: (s.kind, s.overlap))
        if passage.essay.id not in texts:
            texts[passage.essay.id] = essay_text(passage.essay.id)
        citation = Citation(
            number=n,
            essay=passage.essay.id,
            title=passage.essay.title,
            quote=best.quote,
            start=best.start,
            end=best.end,
            verified=False,
            passage=passage,
        )
        citations.append(citation if best.kind == _MISQUOTE else verify(citation, texts[passage.essay.id]))
    return tuple(citations)
