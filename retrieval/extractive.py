"""The default answerer: quotes the essays' own best sentences, each with a checked citation.

Offline and deterministic: every quotable span of the retrieved passages gets a score for how
likely it answers the question (support.py: closeness in meaning of its sentences, from vectors
stored at index time, and the question's weighted words it carries), the likeliest few are quoted
under a one-line lead, and the answer is refused when none scores enough, when the question names
something no passage mentions, or when it asks for a name, number or date that no span gives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ingest.chunk import clause_spans, sentence_spans
from ingest.keyword import tokenize
from retrieval.conversation import is_follow_up
from retrieval.support import KIND_WINDOW, Model, Span, any_word, features, missing_kind, wanted
from retrieval.types import CANNOT_ANSWER, Answer, Citation, Passage, Turn
from retrieval.verify import is_verbatim

SHORT_WORDS = 20  # shorter sentences say too little alone: quote them with a neighbour
# A span longer than this is also offered clause by clause, so that the part of a long sentence that
# answers can be quoted where the whole would overrun the answer's words (a Federalist sentence
# often runs to 60-90 words; the gold quotes of the eval sets have a median of 20). On tune,
# coverage 0.318 -> 0.344 at 30 words (0.336 at 40), paraphrased 0.210 -> 0.242. A first span
# longer than the whole budget (a 120-word opening sentence) gives way to its best clause: the same
# coverage on tune, paraphrased and dev, medians 78 -> 75 and 87.5 -> 86 words.
CLAUSE_WORDS = 30
ESSAY_SHARE = 0.5  # an essay is quoted when its passages score at least this share of the best essay's
# Spans quoted at most, how far below the best span's score a further one may be (a softmax
# over spans: a margin of 0.7 is half the best span's chance), and the words of quotes an answer
# stops adding at: chosen on eval/tune.jsonl for coverage at a median answer under 90 words.
LIMIT, LIST_LIMIT = 3, 5
MARGIN, LIST_MARGIN = 1.5, 2.0
WORDS, LIST_WORDS = 80, 130
_LIST_CUES = re.compile(
    r"\b(what|which)\s+(are|were|two|three|four|several|mistakes|missions|methods|ingredients|rules|purposes"
    r"|reasons|ways|things|kinds|steps|examples|features|flaws|errors|problems|signs|dangers|advantages)\b"
    r"|\b(list|name)\b|\b(two|three|four|five|several|various)\s+\w+s\b",
    re.IGNORECASE,
)
# 'What new ideas...', 'which feelings...': what/which asking for things in the plural (not a verb).
_PLURAL_OBJECT = re.compile(
    r"\b(?:what|which)\s+(?:[a-z]+\s+){0,2}?([a-z]{3,}s)\b(?!\s+(?:is|was)\b)", re.IGNORECASE
)
_NOT_PLURAL = frozenset(
    re.findall(
        r"\w+",
        "does is was has this thus its his hers ours yours theirs us as various always perhaps less unless "
        "across whereas news means makes happens remains seems goes comes gives takes keeps leads causes",
    )
)
_POINTS_BACK = re.compile(r"(Hence|Thus|Therefore|This|These|Those|Such)\b")


class ExtractiveAnswerer:
    """Composes answers from verbatim sentences of the retrieved passages."""

    def __init__(
        self,
        *,
        essay_text: Callable[[str], str | None],
        idf: Callable[[str], float],
        model: Model,
        is_name: Callable[[str], bool] = any_word,
        known: Callable[[str], bool] = lambda _: False,
    ) -> None:
        """`is_name` tells the essays' proper names from capitalised common nouns (KeywordIndex.names);
        `known` whether the essays use a stemmed word at all."""
        self._essay_text, self._idf, self.model = essay_text, idf, model
        self.is_name = is_name
        self.known = known

    def answer(self, question: str, passages: Sequence[Passage], history: Sequence[Turn] = ()) -> Answer:
        """Quote the spans likeliest to answer, or refuse with the closest passages."""
        if not passages or self.names_unknown(question, passages):
            return self._refuse(question, passages)
        spans = self.spans(question, passages, history)
        if not spans or spans[0].score < self.model.threshold:
            return self._refuse(question, passages)
        kinds = wanted(question, self.is_name)
        named = self.authors_named(question, passages)
        window = self.kind_window(spans, named)
        if missing_kind(question, window, self.is_name):
            return self._refuse(question, passages)
        if kinds:  # spans that give what the question asks for (a date, a name) lead
            fitting = [s for s in window if any(gives(s) for gives in kinds.values())]
            spans = fitting + [s for s in spans if s not in fitting]
        focused, firsts = _focused(spans, passages), []
        if named:  # 'What does Bacon say...' is answered from Bacon; a comparison from each side
            sides = [_focused(*_by_author(a, spans, passages)) for a in named]
            if any(sides):
                order = {id(s): n for n, s in enumerate(spans)}
                firsts = sorted((side[0] for side in sides if side), key=lambda s: order[id(s)])
                rest = sorted((s for side in sides for s in side[1:]), key=lambda s: order[id(s)])
                focused = firsts + rest
        if not focused:
            return self._refuse(question, passages)
        # Both sides of a comparison are quoted whatever the words: dev's 'How does Emerson's view of
        # travelling differ from Bacon's advice?' lost Emerson to a 65-word Bacon sentence.
        required = firsts if len(firsts) > 1 else []
        listing = asks_for_a_list(question)
        return self._compose(question, self._choose(focused, listing=listing, required=required), passages)

    def spans(self, question: str, passages: Sequence[Passage], history: Sequence[Turn] = ()) -> list[Span]:
        """Every quotable span of the passages with its score, likeliest to answer first."""
        previous = history[-1] if history and is_follow_up(question) else None
        query = (previous.standalone or previous.question) if previous else ""
        terms = _weights(tokenize(question), self._idf)
        context = _weights(tokenize(query), self._idf) if query else {}
        names = set(tokenize(" ".join(re.findall(r"\b[A-Z][a-z]+\b|\b\d+\b", question))))
        total, ctx_total = sum(terms.values()) or 1.0, sum(context.values()) or 1.0
        out = []
        for p, s, e, closeness, text, have in (c for q in passages for c in self._candidates(q, names)):
            x = features(
                closeness=closeness,
                words=sum(w for t, w in terms.items() if t in have) / total,
                context=sum(w for t, w in context.items() if t in have) / ctx_total if context else 0.0,
                rank=p.rank,
                similarity=p.similarity,
                size=len(text.split()),
            )
            out.append(Span(p, s, e, text, x, self.model.score(x)))
        return sorted(out, key=lambda span: -span.score)

    def names_unknown(self, question: str, passages: Sequence[Passage]) -> bool:
        """A name the question uses ('Darwin') that no passage mentions cannot be answered from them.

        When the question also names an author ('Emerson'), the name must occur in that author's
        passages. Without one, a name the essays use somewhere (`known`: 'Paris', 'Western') is left to
        the scores: that the five passages lack it says more about the search than about the essays
        (on tune, 3 answerable questions of 95 were refused so, and no unanswerable one).
        """
        names = re.findall(r"(?<![.?!]\s)(?<!^)\b([A-Z][a-z]{3,})\b", question.strip())
        surnames = _surnames(passages)
        authors = {surnames[n] for n in names if n in surnames}
        # A collection or title named beside an author ('Bacon and Federalist No. 78') is a source too.
        sources = set(tokenize(" ".join(f"{p.essay.title} {p.essay.collection}" for p in passages)))
        for name in names:
            stems = set(tokenize(name))
            if name in surnames or (stems and stems <= sources):
                continue
            if not authors and stems and all(self.known(t) for t in stems):
                continue  # the essays use it: whether they answer is for the scores to say
            scope = [p for p in passages if not authors or p.essay.author in authors]
            if stems and not any(all(_mentioned(t, self._words(p)) for t in stems) for p in scope):
                return True
        return False

    def kind_window(self, spans: list[Span], named: Sequence[str] = ()) -> list[Span]:
        """The spans among which what the question asks for (a name, a number, a date) must be: those
        the answer could quote, i.e. of the likeliest few, those within MARGIN of the best, and of the
        authors the question names if it names any. On tune this refused 8 of 14 near misses against 5
        with no answerable question lost: the likeliest five alone let a span scoring 0.67 against the
        best's 4.55 give the date a question asked for."""
        window = [s for s in spans if not named or s.passage.essay.author in named][:KIND_WINDOW]
        return [s for s in window if s.score >= window[0].score - MARGIN] if window else []

    def authors_named(self, question: str, passages: Sequence[Passage]) -> list[str]:
        """The authors of the passages whose surnames the question uses, in the question's order."""
        surnames = _surnames(passages)
        words = re.findall(r"\b[A-Z][a-z]+\b", question)
        return list(dict.fromkeys(surnames[w] for w in words if w in surnames))

    def _words(self, passage: Passage) -> set[str]:
        """A passage's words, with its essay's title, author and collection counted as its own."""
        e = passage.essay
        return set(tokenize(f"{passage.chunk.text} {e.title} {e.author} {e.collection}"))

    def _candidates(
        self, p: Passage, names: set[str]
    ) -> list[tuple[Passage, int, int, float, str, set[str]]]:
        """Quotable spans of a passage: its sentences, a short one joined with its neighbour, each
        with the closeness in meaning of its closest sentence."""
        text = self._essay_text(p.chunk.essay_id)
        if text is None:
            return []
        spans = sentence_spans(text, p.chunk.start, p.chunk.end)
        close = {(x.start, x.end): x.closeness for x in p.sentences}
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
            closeness = max((c for (a, b), c in close.items() if s <= a and b <= e), default=0.0)
            out.append((p, s, e, closeness, text[s:e], set(tokenize(text[s:e])) | meta))
            if len(text[s:e].split()) <= CLAUSE_WORDS:
                continue
            clauses = clause_spans(text, s, e)
            for cs, ce in clauses if len(clauses) > 1 else ():
                # A clause has no vector of its own: the closeness of the sentences it is part of.
                near = max((c for (a, b), c in close.items() if a < ce and cs < b), default=0.0)
                out.append((p, cs, ce, near, text[cs:ce], set(tokenize(text[cs:ce])) | meta))
        return out

    def _choose(self, spans: list[Span], *, listing: bool, required: Sequence[Span] = ()) -> list[Span]:
        best = spans[0].score
        limit, budget, margin = (LIST_LIMIT, LIST_WORDS, LIST_MARGIN) if listing else (LIMIT, WORDS, MARGIN)
        chosen: list[Span] = []
        for r in required:  # each side of a comparison, within its share of the words when it can be
            chosen.append(_clause_of(r, spans) if len(r.text.split()) > budget // len(required) else r)
        words = sum(len(c.text.split()) for c in chosen)
        for s in spans:
            if s.score < best - margin or len(chosen) >= limit:
                break
            n = len(s.text.split())
            if not chosen and n > budget:  # a first span longer than the whole budget: its best clause
                s = _clause_of(s, spans)
                n = len(s.text.split())
            overlaps = any(
                c.passage.chunk.essay_id == s.passage.chunk.essay_id and c.start < s.end and s.start < c.end
                for c in chosen
            )
            if overlaps or (chosen and words + n > budget):
                continue
            chosen.append(s)
            words += n
        if listing:  # a list reads in the essay's order
            chosen.sort(key=lambda s: (s.passage.chunk.essay_id, s.start))
        return chosen

    def _compose(self, question: str, chosen: list[Span], passages: Sequence[Passage]) -> Answer:
        citations, shown = [], []
        for n, s in enumerate(chosen, 1):
            text = self._essay_text(s.passage.chunk.essay_id) or ""
            shown.append(
                _clean(
                    s.text, before=text[: s.start].rstrip(" \t")[-1:], after=text[s.end :].lstrip(" \t")[:1]
                )
            )
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
        if len(citations) > 1:  # one claim a bullet
            body = "\n".join(f"- {line} [{c.number}]" for line, c in zip(shown, citations, strict=True))
            text = f"{lead}\n\n{body}"
        else:
            text = f"{lead} {shown[0]} [{citations[0].number}]"
        return Answer(text, tuple(citations), False, tuple(passages), question=question)

    def _refuse(self, question: str, passages: Sequence[Passage]) -> Answer:
        return Answer(CANNOT_ANSWER, (), True, tuple(passages), question=question)


def asks_for_a_list(question: str) -> bool:
    """A question whose answer is several things: 'what are the reasons', 'which feelings', 'list'."""
    if _LIST_CUES.search(question):
        return True
    plural = _PLURAL_OBJECT.search(question)
    word = plural.group(1).lower() if plural else ""
    return bool(word) and word not in _NOT_PLURAL and not word.endswith("ss")


def _focused(spans: list[Span], passages: Sequence[Passage]) -> list[Span]:
    """Quote only essays that carry a fair share of the retrieved evidence, not a stray match."""
    weight: dict[str, float] = {}
    for p in passages:
        weight[p.chunk.essay_id] = weight.get(p.chunk.essay_id, 0.0) + p.score
    top = max(weight.values(), default=0.0)
    keep = {eid for eid, w in weight.items() if w >= ESSAY_SHARE * top}
    return [s for s in spans if s.passage.chunk.essay_id in keep]


def _surnames(passages: Sequence[Passage]) -> dict[str, str]:
    """The passages' authors by surname: 'Bacon' -> 'Francis Bacon'."""
    return {p.essay.author.split()[-1]: p.essay.author for p in passages if p.essay.author}


def _clause_of(span: Span, spans: list[Span]) -> Span:
    """The best-scoring clause of a span among the candidates (the span itself if it has none)."""
    inner = [
        c
        for c in spans
        if c is not span and c.passage is span.passage and span.start <= c.start <= c.end <= span.end
    ]
    return max(inner, key=lambda c: c.score) if inner else span


def _by_author(
    author: str, spans: list[Span], passages: Sequence[Passage]
) -> tuple[list[Span], list[Passage]]:
    """An author's spans and passages, for quoting each side of a comparison."""
    mine = [p for p in passages if p.essay.author == author]
    return [s for s in spans if s.passage.essay.author == author], mine


def _mentioned(stem: str, words: set[str]) -> bool:
    """A name counts as mentioned in another form of it too: Arab in 'Arabian', Malians in 'Mali',
    New Yorkers in 'New York' (one stem of four letters or more begins the other), Algeria in
    'Algerian' (a shared start of five letters)."""
    return stem in words or any(_same_name(stem, w) for w in words)


def _same_name(a: str, b: str) -> bool:
    short, long = sorted((a, b), key=len)
    return len(short) >= 4 and (long.startswith(short) or (len(short) >= 5 and a[:5] == b[:5]))


def _weights(tokens: list[str], idf: Callable[[str], float]) -> dict[str, float]:
    return {t: idf(t) for t in dict.fromkeys(tokens)}


def _clean(quote: str, *, before: str = "", after: str = "") -> str:
    """A quote as a line of the answer: list markers and line breaks folded away, and an ellipsis on
    a side where it was cut from its sentence at a clause (the essay's character `before` or `after`
    it is a comma, semicolon, colon or dash)."""
    text = re.sub(r"^\s*(?:[-*•>]|\d{1,3}[.)])\s+", "", quote)
    text = re.sub(r"\s*\n\s*(?:>\s*)?", " ", text).strip()
    if before and before in _CLAUSE_MARKS:
        text = "…" + text
    if after and after in _CLAUSE_MARKS:
        text += "…"
    return text


_CLAUSE_MARKS = ",;:—–-"


def _join(items: list[str]) -> str:
    return " and ".join(items)
