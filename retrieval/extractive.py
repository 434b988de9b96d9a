"""The default answerer: quotes the essays' own best sentences, each with a checked citation.

Offline and deterministic: sentences of the retrieved passages are scored by how much of the
question's weighted vocabulary they carry (plus the passage's rank), the best few are quoted
under a one-line lead, and the answer is refused when nothing carries enough of the question.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingest.chunk import sentence_spans
from ingest.keyword import tokenize
from retrieval.conversation import is_follow_up
from retrieval.types import CANNOT_ANSWER, Answer, Citation, Passage, Turn
from retrieval.verify import is_verbatim

MAX_WORDS = 150
SUPPORT_MIN = 0.34  # share of the question's weighted words the best sentence must carry
_LIST_CUES = re.compile(
    r"\b(what|which)\s+(are|were|two|three|four|several|mistakes|missions|methods|ingredients|rules|purposes)\b"
    r"|\b(list|name)\b|\b(two|three|four|five|several|various)\s+\w+s\b",
    re.IGNORECASE,
)
_COUNT = re.compile(r"^\s*how (many|much)\b", re.IGNORECASE)
_WHEN = re.compile(r"^\s*(when\b|in what year|what year|which year|on what date)", re.IGNORECASE)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|dozen)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b\d{3,4}\b|\b(January|February|March|April|May|June|July|August|September|October|November|December|"
    r"century|spring|summer|autumn|winter)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Sentence:
    passage: Passage
    start: int
    end: int
    text: str
    score: float


class ExtractiveAnswerer:
    """Composes answers from verbatim sentences of the retrieved passages."""

    def __init__(
        self,
        *,
        essay_text: Callable[[str], str | None],
        idf: Callable[[str], float],
        known: Callable[[str], bool],
    ) -> None:
        self._essay_text, self._idf, self._known = essay_text, idf, known

    def answer(self, question: str, passages: Sequence[Passage], history: Sequence[Turn] = ()) -> Answer:
        """Quote the best-supported sentences, or refuse with the closest passages."""
        focus = question
        previous = history[-1] if history and is_follow_up(question) else None
        query = (previous.standalone or previous.question) if previous else ""
        terms = _weights(tokenize(focus), self._idf)
        context_terms = _weights(tokenize(query), self._idf) if query else {}
        if not passages or self._names_unknown(question):
            return self._refuse(question, passages)
        sentences = self._score(passages, terms, context_terms)
        if not sentences or not self._supported(question, sentences):
            return self._refuse(question, passages)
        chosen = self._choose(sentences, listing=bool(_LIST_CUES.search(question)))
        return self._compose(question, chosen, passages, listing=bool(_LIST_CUES.search(question)))

    def _names_unknown(self, question: str) -> bool:
        """A capitalised name the corpus never mentions ('Darwin') cannot be answered from it."""
        words = re.findall(r"(?<![.?!]\s)(?<!^)\b([A-Z][a-z]{2,})\b", question.strip())
        return any(not self._known(w) for w in words)

    def _score(
        self, passages: Sequence[Passage], terms: dict[str, float], context: dict[str, float]
    ) -> list[Sentence]:
        total = sum(terms.values()) or 1.0
        ctx_total = sum(context.values()) or 1.0
        out = []
        for p in passages:
            text = self._essay_text(p.chunk.essay_id)
            if text is None:
                continue
            for s, e in sentence_spans(text, p.chunk.start, p.chunk.end):
                words = set(tokenize(text[s:e]))
                own = sum(w for t, w in terms.items() if t in words) / total
                ctx = sum(w for t, w in context.items() if t in words) / ctx_total if context else 0.0
                score = own + 0.3 * ctx + 0.15 / p.rank if p.rank else own + 0.3 * ctx
                out.append(Sentence(p, s, e, text[s:e], score))
        return sorted(out, key=lambda x: -x.score)

    def _supported(self, question: str, sentences: list[Sentence]) -> bool:
        best = sentences[0].score
        if best < SUPPORT_MIN:
            return False
        top = sentences[:3]
        if _COUNT.search(question) and not any(_NUMBER.search(s.text) for s in top):
            return False
        return not (_WHEN.search(question) and not any(_DATE.search(s.text) for s in top))

    def _choose(self, sentences: list[Sentence], *, listing: bool) -> list[Sentence]:
        best = sentences[0].score
        limit = 6 if listing else 4
        chosen: list[Sentence] = []
        words = 0
        for s in sentences:
            if s.score < best * (0.45 if listing else 0.6) or len(chosen) >= limit:
                break
            n = len(s.text.split())
            if chosen and words + n > MAX_WORDS:
                continue
            chosen.append(s)
            words += n
        if listing:  # a list reads in the essay's order
            chosen.sort(key=lambda s: (s.passage.chunk.essay_id, s.start))
        return chosen

    def _compose(
        self, question: str, chosen: list[Sentence], passages: Sequence[Passage], *, listing: bool
    ) -> Answer:
        citations = []
        for n, s in enumerate(chosen, 1):
            text = self._essay_text(s.passage.chunk.essay_id) or ""
            citations.append(
                Citation(
                    n, s.passage.chunk.essay_id, s.passage.essay.title, s.text, s.start, s.end,
                    is_verbatim(s.text, text, s.start, s.end), s.passage,
                )
            )
        titles = list(dict.fromkeys(f"“{c.title}”" for c in citations))
        lead = f"From {_join(titles)}:" if len(titles) <= 2 else f"From {len(titles)} essays:"
        if listing or len(citations) > 2:
            body = "\n".join(f"- {_clean(c.quote)} [{c.number}]" for c in citations)
            text = f"{lead}\n\n{body}"
        else:
            text = f"{lead} " + " ".join(f"{_clean(c.quote)} [{c.number}]" for c in citations)
        return Answer(text, tuple(citations), False, tuple(passages), question=question)

    def _refuse(self, question: str, passages: Sequence[Passage]) -> Answer:
        return Answer(CANNOT_ANSWER, (), True, tuple(passages), question=question)


def _weights(tokens: list[str], idf: Callable[[str], float]) -> dict[str, float]:
    return {t: idf(t) for t in dict.fromkeys(tokens)}


def _clean(quote: str) -> str:
    """A quote as a line of the answer: list markers and line breaks folded away."""
    text = re.sub(r"^\s*(?:[-*•>]|\d{1,3}[.)])\s+", "", quote)
    return re.sub(r"\s*\n\s*(?:>\s*)?", " ", text).strip()


def _join(items: list[str]) -> str:
    return " and ".join(items)
