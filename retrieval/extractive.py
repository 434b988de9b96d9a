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
SHORT_WORDS = 20  # shorter sentences say too little alone: quote them with a neighbour
ESSAY_SHARE = 0.5  # an essay is quoted when its passages score at least this share of the best essay's
LIMIT, LIST_LIMIT = 4, 6  # sentences quoted at most
RATIO, LIST_RATIO = 0.6, 0.45  # a quoted sentence scores at least this share of the best one
SUPPORT_MIN = 0.39  # share of the question's weighted words the best sentence must carry
# ... or this lower share when a passage is this close in meaning to the question (cosine), as a
# question in other words than the essay's is: measured on questions phrased away from the text.
CLOSE_SUPPORT_MIN, CLOSE_SIMILARITY = 0.28, 0.5
SIMILARITY_WEIGHT = 0.2  # a sentence from a passage closer in meaning ranks higher, at equal support
_LIST_CUES = re.compile(
    r"\b(what|which)\s+(are|were|two|three|four|several|mistakes|missions|methods|ingredients|rules|purposes)\b"
    r"|\b(list|name)\b|\b(two|three|four|five|several|various)\s+\w+s\b",
    re.IGNORECASE,
)
_POINTS_BACK = re.compile(r"(Hence|Thus|Therefore|This|These|Those|Such)\b")
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
    score: float  # what ranks the sentences: support, plus its passage's closeness in meaning
    support: float  # the share of the question's words it carries, length-weighted, plus rank


class ExtractiveAnswerer:
    """Composes answers from verbatim sentences of the retrieved passages."""

    def __init__(
        self,
        *,
        essay_text: Callable[[str], str | None],
        idf: Callable[[str], float],
    ) -> None:
        self._essay_text, self._idf = essay_text, idf

    def answer(self, question: str, passages: Sequence[Passage], history: Sequence[Turn] = ()) -> Answer:
        """Quote the best-supported sentences, or refuse with the closest passages."""
        focus = question
        previous = history[-1] if history and is_follow_up(question) else None
        query = (previous.standalone or previous.question) if previous else ""
        terms = _weights(tokenize(focus), self._idf)
        context_terms = _weights(tokenize(query), self._idf) if query else {}
        if not passages or self._names_unknown(question, passages):
            return self._refuse(question, passages)
        names = set(tokenize(" ".join(re.findall(r"\b[A-Z][a-z]+\b|\b\d+\b", question))))
        sentences = self._score(passages, terms, context_terms, names)
        if not sentences or not self._supported(question, sentences, passages):
            return self._refuse(question, passages)
        chosen = self._choose(_focused(sentences, passages), listing=bool(_LIST_CUES.search(question)))
        return self._compose(question, chosen, passages, listing=bool(_LIST_CUES.search(question)))

    def _names_unknown(self, question: str, passages: Sequence[Passage]) -> bool:
        """A name the question uses ('Darwin') that no passage mentions cannot be answered from them.

        When the question also names an author ('Emerson'), the name must occur in that author's passages.
        """
        names = re.findall(r"(?<![.?!]\s)(?<!^)\b([A-Z][a-z]{3,})\b", question.strip())
        surnames = {p.essay.author.split()[-1]: p.essay.author for p in passages if p.essay.author}
        authors = {surnames[n] for n in names if n in surnames}
        for name in names:
            if name in surnames:
                continue
            stems = set(tokenize(name))
            scope = [p for p in passages if not authors or p.essay.author in authors]
            if stems and not any(stems <= self._words(p) for p in scope):
                return True
        return False

    def _words(self, passage: Passage) -> set[str]:
        """A passage's words, with its essay's title, author and collection counted as its own."""
        e = passage.essay
        return set(tokenize(f"{passage.chunk.text} {e.title} {e.author} {e.collection}"))

    def _score(
        self, passages: Sequence[Passage], terms: dict[str, float], context: dict[str, float], names: set[str]
    ) -> list[Sentence]:
        spans = [cand for p in passages for cand in self._candidates(p, names)]
        if not spans:
            return []
        total = sum(terms.values()) or 1.0
        ctx_total = sum(context.values()) or 1.0
        out = []
        for p, s, e, j, size, text, have in spans:
            own = sum(w for t, w in terms.items() if t in have) / total
            ctx = sum(w for t, w in context.items() if t in have) / ctx_total if context else 0.0
            # Long sentences match more words by chance; the passage's rank is evidence too.
            length = 1.0 / (1.0 + max(0, size - 25) / 50)
            lead = 0.05 if j == 0 else 0.0
            support = (own + 0.3 * ctx) * length + 0.12 / max(1, p.rank) + lead
            out.append(Sentence(p, s, e, text, support + SIMILARITY_WEIGHT * p.similarity, support))
        return sorted(out, key=lambda x: -x.score)

    def _candidates(
        self, p: Passage, names: set[str]
    ) -> list[tuple[Passage, int, int, int, int, str, set[str]]]:
        """Quotable spans of a passage: its sentences, a short one joined with its neighbour."""
        text = self._essay_text(p.chunk.essay_id)
        if text is None:
            return []
        spans = sentence_spans(text, p.chunk.start, p.chunk.end)
        # The essay's title and author answer for the names the question uses ('Bacon', 'Federalist').
        meta = names & set(tokenize(f"{p.essay.title} {p.essay.author} {p.essay.collection}"))
        out = []
        for j, (s, e) in enumerate(spans):
            if j and _POINTS_BACK.match(text, s):  # 'Hence a double security...' needs what came before
                s = spans[j - 1][0]
            if j + 1 < len(spans) and (text[e - 1] == ":" or len(text[s:e].split()) < SHORT_WORDS):
                e = spans[j + 1][1]
            elif j and len(text[s:e].split()) < SHORT_WORDS:
                s = spans[j - 1][0]
            words = tokenize(text[s:e])
            out.append((p, s, e, j, len(words), text[s:e], set(words) | meta))
        return out

    def _supported(self, question: str, sentences: list[Sentence], passages: Sequence[Passage]) -> bool:
        close = max((p.similarity for p in passages), default=0.0) >= CLOSE_SIMILARITY
        if max(s.support for s in sentences) < (CLOSE_SUPPORT_MIN if close else SUPPORT_MIN):
            return False
        top = [s.text for s in sentences[:3]]
        count = _COUNT.search(question)
        if count:
            units = _units(question[count.end() :])
            if units & _TIME_UNITS:  # 'how many years' is answered by dates
                return any(_DATE.search(t) for t in top)
            return any(_counts(t, units) for t in top)
        return not (_WHEN.search(question) and not any(_DATE.search(t) for t in top))

    def _choose(self, sentences: list[Sentence], *, listing: bool) -> list[Sentence]:
        best = sentences[0].score
        limit = LIST_LIMIT if listing else LIMIT
        chosen: list[Sentence] = []
        words = 0
        for s in sentences:
            if s.score < best * (LIST_RATIO if listing else RATIO) or len(chosen) >= limit:
                break
            n = len(s.text.split())
            overlaps = any(
                c.passage.chunk.essay_id == s.passage.chunk.essay_id and c.start < s.end and s.start < c.end
                for c in chosen
            )
            if overlaps or (chosen and words + n > MAX_WORDS):
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
                    n,
                    s.passage.chunk.essay_id,
                    s.passage.essay.title,
                    s.text,
                    s.start,
                    s.end,
                    is_verbatim(s.text, text, s.start, s.end),
                    s.passage,
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


_TIME_UNITS = {"year", "month", "day", "decad", "centuri", "week", "time"}


def _units(rest: str) -> set[str]:
    """The stemmed words a 'how many' question counts: 'French troops were...' gives french, troop."""
    return set(tokenize(rest)[:2])


def _counts(text: str, units: set[str]) -> bool:
    """True when a number stands within a few words before one of the counted words."""
    tokens = re.findall(r"[^\W_]+", text.lower())
    for i, t in enumerate(tokens):
        if (t.isdigit() or _NUMBER.fullmatch(t)) and units & set(tokenize(" ".join(tokens[i + 1 : i + 5]))):
            return True
    return False


def _focused(sentences: list[Sentence], passages: Sequence[Passage]) -> list[Sentence]:
    """Quote only essays that carry a fair share of the retrieved evidence, not a stray match."""
    weight: dict[str, float] = {}
    for p in passages:
        weight[p.chunk.essay_id] = weight.get(p.chunk.essay_id, 0.0) + p.score
    top = max(weight.values(), default=0.0)
    keep = {eid for eid, w in weight.items() if w >= ESSAY_SHARE * top}
    return [s for s in sentences if s.passage.chunk.essay_id in keep]


def _weights(tokens: list[str], idf: Callable[[str], float]) -> dict[str, float]:
    return {t: idf(t) for t in dict.fromkeys(tokens)}


def _clean(quote: str) -> str:
    """A quote as a line of the answer: list markers and line breaks folded away."""
    text = re.sub(r"^\s*(?:[-*•>]|\d{1,3}[.)])\s+", "", quote)
    return re.sub(r"\s*\n\s*(?:>\s*)?", " ", text).strip()


def _join(items: list[str]) -> str:
    return " and ".join(items)
