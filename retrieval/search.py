"""Hybrid search: dense vectors from Chroma and BM25, fused by relative score, then diversified."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ingest.embed import Embedder
from ingest.essay import Chunk
from ingest.keyword import KeywordIndex, tokenize
from ingest.sentences import chunk_of, sentence_id, sentence_units
from ingest.store import Hit, VectorStore
from retrieval.exact import ExactVectors, SentenceIndex
from retrieval.mentions import MentionFinder, _norm
from retrieval.query import meaning
from retrieval.snapshot import Filters, Snapshot
from retrieval.types import Passage, Sentence

log = logging.getLogger(__name__)
R = TypeVar("R")

CANDIDATES = 60  # from each ranker before fusion
SENTENCE_CANDIDATES = 100  # nearest sentences, scoring their passages by the best of them
SENTENCE_ESSAYS = 64  # essays whose sentences are searched for a question (see _essays_about)
# Fusion weights, chosen on eval/tune.jsonl: questions in a reader's words are found by meaning
# (passage and sentence vectors) more than by the essay's own words (BM25).
DENSE_WEIGHT = 0.45
KEYWORD_WEIGHT = 0.55
SENTENCE_WEIGHT = 0.3
MENTION_BONUS = 0.3  # a named essay outranks what merely sounds alike
CONTEXT_BONUS = 0.1  # a follow-up's passages from the essays the conversation is about
AUTHOR_BONUS = 0.1
PHRASE_BONUS = 0.6
ESSAY_WEIGHT = 0.1  # an essay whose many passages match is likelier the one meant
# A candidate list filled with copies (one paragraph in many essays: equal scores) is asked again
# for more, up to this many times its size, so that it holds about as many different passages as
# it would without them. The 30k synthetic corpus repeats each paragraph ~10 times: dev recall@5
# 0.886 with plain lists of 60 and 100, 0.913 widened (0.917 on the shipped corpus); answers p95
# 36 -> 84 ms there (74 ms at 4 times, 109 ms at 16). Without copies nothing changes.
MAX_WIDEN = 8


@dataclass(frozen=True)
class Ranked:
    """Fused candidates in order, with the signals the answerer uses to judge support."""

    passages: list[Passage]
    dense: dict[str, float]


class Searcher:
    """Ranks chunks of one snapshot for a query.

    Fusion works over the candidates only (the dense, sentence and keyword hits, and the chunks of
    the essays a question names or a conversation is about), never over every chunk: at 100k
    chunks the per-question arrays over all of them were the fastest-growing cost.
    """

    def __init__(
        self,
        snapshot: Snapshot,
        keyword: KeywordIndex,
        store: VectorStore,
        embedder: Embedder,
        exact: ExactVectors | None = None,
    ) -> None:
        """`exact`: the chunk vectors in memory, searched instead of Chroma (exact.py)."""
        self.snapshot, self.keyword, self.store, self.embedder = snapshot, keyword, store, embedder
        self.exact = exact
        self.sentences = SentenceIndex(snapshot)
        self.mentions = MentionFinder(snapshot.essays)
        # Keyword positions are catalog order, as the snapshot's, unless the two disagree (a
        # keyword index of another generation): then map each once, not per question.
        n = snapshot.size
        if len(keyword.ids) == n and keyword.ids == snapshot.ids_at(range(n)):
            self._kw_to_snap = None
        else:
            self._kw_to_snap = np.array(
                [p if (p := snapshot.position(cid)) is not None else -1 for cid in keyword.ids],
                dtype=np.int64,
            )

    def search(
        self,
        query: str,
        *,
        k: int = 5,
        filters: Filters = Filters(),
        focus: str = "",
        context: Sequence[str] = (),
    ) -> Ranked:
        """Top-k passages for the query.

        `focus` is the latest question when the query has the conversation added; `context` the
        essays the conversation is about, which a follow-up favours unless it names essays itself.
        """
        snap = self.snapshot
        if snap.size == 0:
            return Ranked([], {})
        allowed = snap.allowed(filters)
        fused: dict[int, float] = {}  # chunk position -> score, candidates only

        found = self.mentions.find(query)
        # Searched by meaning without 'according to Hamilton' and the like (see retrieval/query.py).
        subject = meaning(query, found.authors)
        vectors = self.embedder.embed([subject, query] if subject != query else [query])
        vector, whole = vectors[0], vectors[-1]
        hits = _widened(lambda n: _scored(self._nearest(vector, n, filters, allowed)), CANDIDATES)
        dense = {hit.id: hit.similarity for hit in hits}
        self._add_relative(fused, dense, DENSE_WEIGHT)
        for text, weight in ((query, 1.0), (focus, 0.5)) if focus and focus != query else ((query, 1.0),):
            self._add_keyword(fused, text, weight * KEYWORD_WEIGHT, allowed)

        best: dict[str, float] = {}  # each passage's closest sentence
        # Sentences are searched among the essays the other searches found (exact.SentenceIndex).
        about = self._essays_about(fused) | set(found.essays) | set(context)
        among = self.sentences.among(about if allowed is None else about & allowed)
        near = _widened(lambda n: _scored(among.query(vector, n)), SENTENCE_CANDIDATES)
        for hit in near:
            cid = chunk_of(hit.id)
            best[cid] = max(best.get(cid, -1.0), hit.similarity)
        self._add_relative(fused, best, SENTENCE_WEIGHT)

        if found.essays:
            self._add_to_essays(fused, found.essays, MENTION_BONUS)
        if context and not (found.essays or (focus and self.mentions.authors(focus))):
            self._add_to_essays(fused, context, CONTEXT_BONUS)
        if found.authors:
            # Among the candidates: an author may have written a good part of a large corpus.
            for pos, essay in zip(list(fused), self._essays(list(fused)), strict=True):
                if snap.essays[essay].author in found.authors:
                    fused[pos] += AUTHOR_BONUS
        if found.phrases:
            # A quoted phrase shares its words with the passage, so look only among the candidates.
            positive = [pos for pos, score in fused.items() if score > 0]
            chunks = snap.chunks(snap.ids_at(positive))
            for pos, cid in zip(positive, snap.ids_at(positive), strict=True):
                text = _norm(chunks[cid].text) if cid in chunks else ""
                fused[pos] += PHRASE_BONUS * sum(phrase in text for phrase in found.phrases)
        if allowed is not None:
            essays = self._essays(list(fused))
            fused = {p: s for (p, s), e in zip(fused.items(), essays, strict=True) if e in allowed}
        _add_essay_strength(fused, snap)
        ranked = sorted((p for p, s in fused.items() if s > 0), key=lambda p: (-fused[p], p))
        groups = _groups(found.essays, found.authors, snap)
        # The best k*6 are read and the near-copies among them skipped; where copies leave fewer
        # than k (a paragraph repeated across many essays: 10 copies each in the 30k synthetic
        # corpus left dev's France question four passages), the next candidates are read too.
        order: list[str] = []
        chunks = {}
        score: dict[str, float] = {}
        read, window = 0, k * 6
        while True:
            part = ranked[read : read + window]
            ids = snap.ids_at(part)
            score.update(zip(ids, (fused[p] for p in part), strict=True))
            chunks.update(snap.chunks(ids))
            order += [cid for cid in ids if cid in chunks]  # gone from the catalog since the snapshot
            read += window
            chosen = _diverse(_interleave(order, groups) if len(groups) > 1 else order, chunks, k)
            if len(chosen) >= k or read >= len(ranked):
                break
            window *= 2
        closeness = self._closeness([chunks[cid] for cid in chosen], whole)
        passages = [
            Passage(
                chunks[cid],
                snap.essays[chunks[cid].essay_id],
                score[cid],
                rank,
                dense.get(cid, 0.0),
                closeness[cid],
            )
            for rank, cid in enumerate(chosen, 1)
        ]
        return Ranked(passages, dense)

    def _nearest(self, vector: np.ndarray, k: int, filters: Filters, allowed: set[str] | None) -> list[Hit]:
        """The k chunks closest in meaning: exactly in memory, else from Chroma."""
        if self.exact is not None:
            numbers = None
            if allowed is not None:
                numbers = np.array([self.snapshot.number[e] for e in allowed if e in self.snapshot.number])
            return self.exact.query(vector, k, numbers)
        return self.store.query(vector, k, filters.where())

    def _essays_about(self, fused: dict[int, float]) -> set[str]:
        """The SENTENCE_ESSAYS essays whose best candidate scores highest so far.

        On the shipped corpus the dense and keyword candidates come from 5 to 73 essays (median
        45); capped at 48 or 64 tune, dev and paraphrased score as with all, at 32 dev loses 0.018.
        Past a million chunks, lists widened past copies can span hundreds of essays.
        """
        best: dict[str, float] = {}
        for (_, score), essay in zip(fused.items(), self._essays(list(fused)), strict=True):
            best[essay] = max(best.get(essay, 0.0), score)
        return set(sorted(best, key=lambda e: (-best[e], e))[:SENTENCE_ESSAYS])

    def _essays(self, positions: list[int]) -> list[str]:
        numbers = self.snapshot.essays_of(np.asarray(positions, dtype=np.int64)).tolist()
        return [self.snapshot.essay_ids[e] for e in numbers]

    def _add_to_essays(self, fused: dict[int, float], essay_ids: Iterable[str], bonus: float) -> None:
        """Every chunk of some essays gains the bonus (and so becomes a candidate)."""
        snap = self.snapshot
        for eid in essay_ids:
            e = snap.number.get(eid)
            if e is None:
                continue
            for pos in range(int(snap.first[e]), int(snap.first[e] + snap.counts[e])):
                fused[pos] = fused.get(pos, 0.0) + bonus

    def _add_relative(self, fused: dict[int, float], sims: dict[str, float], weight: float) -> None:
        """Relative-score fusion: a ranker's confidence counts, not only its order."""
        if not sims:
            return
        lo, hi = min(sims.values()), max(sims.values())
        for cid, sim in sims.items():
            pos = self.snapshot.position(cid)
            if pos is not None:
                fused[pos] = fused.get(pos, 0.0) + weight * (sim - lo) / (hi - lo + 1e-9)

    def _closeness(self, chunks: list[Chunk], vector: np.ndarray) -> dict[str, tuple[Sentence, ...]]:
        """Every sentence of the chosen passages with its cosine to the query, from stored vectors."""
        texts = self.snapshot.texts(c.essay_id for c in chunks)
        units = {c.id: sentence_units(texts[c.essay_id], c) for c in chunks if c.essay_id in texts}
        ids = [sentence_id(cid, n) for cid, spans in units.items() for n in range(len(spans))]
        vectors = self.sentences.vectors(ids)
        return {
            c.id: tuple(
                Sentence(
                    s, e, float(vectors[sid] @ vector) if (sid := sentence_id(c.id, n)) in vectors else 0.0
                )
                for n, (s, e) in enumerate(units.get(c.id, ()))
            )
            for c in chunks
        }

    def _add_keyword(
        self, fused: dict[int, float], text: str, weight: float, allowed: set[str] | None
    ) -> None:
        snap, to_snap = self.snapshot, self._kw_to_snap

        def keep(kw_positions: np.ndarray) -> np.ndarray:
            pos = kw_positions if to_snap is None else to_snap[kw_positions]
            ok = pos >= 0
            if allowed is not None:
                numbers = [snap.number[eid] for eid in allowed if eid in snap.number]
                ok &= np.isin(snap.essays_of(pos), numbers)
            return ok

        mask = keep if allowed is not None or to_snap is not None else None

        def fetch(n: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
            best = self.keyword.top(text, n, mask)
            return best, best[1]

        kw_positions, scores = _widened(fetch, CANDIDATES)
        if not len(scores) or scores[0] <= 0:
            return
        top = float(scores[0])
        positions = kw_positions if to_snap is None else to_snap[kw_positions]
        for pos, score in zip(positions.tolist(), scores.tolist(), strict=True):
            if score > 0:
                fused[pos] = fused.get(pos, 0.0) + weight * score / top


def _widened(fetch: Callable[[int], tuple[R, Sequence[float] | np.ndarray]], k: int) -> R:
    """What fetch(n) finds for the k asked, asked again for more while copies fill it: stops when at
    least half of what came back scores differently, or at MAX_WIDEN times k."""
    n = k
    while True:
        result, scores = fetch(n)
        distinct = len(set(np.round(np.asarray(scores, dtype=np.float64), 6).tolist()))
        if len(scores) < n or 2 * distinct >= k or n >= k * MAX_WIDEN:
            return result
        n = min(k * MAX_WIDEN, n * max(2, -(-k // max(1, distinct))))


def _scored(hits: list[Hit]) -> tuple[list[Hit], list[float]]:
    return hits, [h.similarity for h in hits]


def _add_essay_strength(fused: dict[int, float], snap: Snapshot, top: int = 3) -> None:
    """Each candidate gains its essay's mean score over the essay's best few candidates."""
    if not fused:
        return
    best = sorted(fused, key=lambda p: (-fused[p], p))[:200]
    essays = snap.essays_of(np.asarray(best, dtype=np.int64)).tolist()
    strength: dict[int, float] = {}
    taken: dict[int, int] = {}
    for pos, e in zip(best, essays, strict=True):
        if fused[pos] <= 0:
            break
        if taken.get(e, 0) < top:
            strength[e] = strength.get(e, 0.0) + fused[pos] / top
            taken[e] = taken.get(e, 0) + 1
    positions = list(fused)
    for pos, e in zip(positions, snap.essays_of(np.asarray(positions, dtype=np.int64)).tolist(), strict=True):
        fused[pos] += ESSAY_WEIGHT * strength.get(e, 0.0)


def _groups(essays: frozenset[str], authors: frozenset[str], snap: Snapshot) -> list[set[str]]:
    """Essay groups a comparison question names: one per named essay, else one per named author."""
    if len(essays) > 1:
        return [{e} for e in sorted(essays)]
    if len(authors) > 1:
        return [{eid for eid, e in snap.essays.items() if e.author == a} for a in sorted(authors)]
    return []


def _interleave(order: list[str], groups: list[set[str]]) -> list[str]:
    """Alternate between the named groups so a comparison sees both sides, best first."""
    queues = [[cid for cid in order if _essay_of(cid) in g] for g in groups]
    rest = [cid for cid in order if not any(_essay_of(cid) in g for g in groups)]
    out: list[str] = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out + rest


def _essay_of(chunk_id: str) -> str:
    return chunk_id.rpartition("#")[0]


def _diverse(order: list[str], chunks: dict[str, Chunk], k: int) -> list[str]:
    """Skip near-copies (same words, largely) so k passages say k different things."""
    chosen: list[str] = []
    seen: list[set[str]] = []
    for cid in order:
        words = set(tokenize(chunks[cid].text))
        if any(len(words & s) / max(1, min(len(words), len(s))) > 0.8 for s in seen):
            continue
        chosen.append(cid)
        seen.append(words)
        if len(chosen) == k:
            break
    return chosen


def content_words(text: str) -> list[str]:
    """Stemmed content words, shared with the answerer's sentence scoring."""
    return tokenize(re.sub(r"\[\d+\]", " ", text))
