"""Hybrid search: dense vectors from Chroma and BM25, fused by relative score, then diversified."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ingest.embed import Embedder
from ingest.essay import Chunk
from ingest.keyword import KeywordIndex, tokenize
from ingest.sentences import chunk_of, sentence_id, sentence_units
from ingest.store import VectorStore
from retrieval.mentions import MentionFinder, _norm
from retrieval.query import meaning
from retrieval.snapshot import Filters, Snapshot
from retrieval.types import Passage, Sentence

log = logging.getLogger(__name__)

CANDIDATES = 60  # from each ranker before fusion
SENTENCE_CANDIDATES = 100  # nearest sentences, scoring their passages by the best of them
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


@dataclass(frozen=True)
class Ranked:
    """Fused candidates in order, with the signals the answerer uses to judge support."""

    passages: list[Passage]
    dense: dict[str, float]


class Searcher:
    """Ranks chunks of one snapshot for a query."""

    def __init__(
        self, snapshot: Snapshot, keyword: KeywordIndex, store: VectorStore, embedder: Embedder
    ) -> None:
        self.snapshot, self.keyword, self.store, self.embedder = snapshot, keyword, store, embedder
        self.mentions = MentionFinder(snapshot.essays)
        # Map keyword positions onto snapshot positions once, not per question.
        self._kw_to_snap = np.array([snapshot.position.get(cid, -1) for cid in keyword.ids], dtype=np.int64)

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
        n = len(snap.chunks)
        if n == 0:
            return Ranked([], {})
        mask = snap.mask(filters)
        fused = np.zeros(n, dtype=np.float64)

        found = self.mentions.find(query)
        # Searched by meaning without 'according to Hamilton' and the like (see retrieval/query.py).
        subject = meaning(query, found.authors)
        vectors = self.embedder.embed([subject, query] if subject != query else [query])
        vector, whole = vectors[0], vectors[-1]
        hits = self.store.query(vector, CANDIDATES, filters.where())
        dense = {hit.id: hit.similarity for hit in hits}
        self._add_relative(fused, dense, DENSE_WEIGHT)
        best: dict[str, float] = {}  # each passage's closest sentence
        for hit in self.store.query_sentences(vector, SENTENCE_CANDIDATES, filters.where()):
            cid = chunk_of(hit.id)
            best[cid] = max(best.get(cid, -1.0), hit.similarity)
        self._add_relative(fused, best, SENTENCE_WEIGHT)

        for text, weight in ((query, 1.0), (focus, 0.5)) if focus and focus != query else ((query, 1.0),):
            self._add_keyword(fused, text, weight * KEYWORD_WEIGHT, mask)

        if found.essays:
            fused[snap.chunks_of(set(found.essays))] += MENTION_BONUS
        if context and not (found.essays or (focus and self.mentions.authors(focus))):
            fused[snap.chunks_of(set(context))] += CONTEXT_BONUS
        if found.authors:
            authored = {eid for eid, e in snap.essays.items() if e.author in found.authors}
            fused[snap.chunks_of(authored)] += AUTHOR_BONUS
        if found.phrases:
            # A quoted phrase shares its words with the passage, so look only among the candidates.
            for i in np.flatnonzero(fused > 0):
                text = _norm(snap.chunks[i].text)
                fused[i] += PHRASE_BONUS * sum(phrase in text for phrase in found.phrases)
        if mask is not None:
            fused[~mask] = 0.0
        fused += ESSAY_WEIGHT * _essay_strength(fused, snap)
        if mask is not None:
            fused[~mask] = 0.0
        order = [int(i) for i in np.argsort(-fused, kind="stable")[: k * 6] if fused[i] > 0]
        groups = _groups(found.essays, found.authors, snap)
        chosen = _diverse(_interleave(order, groups, snap) if len(groups) > 1 else order, snap, k)
        closeness = self._closeness([snap.chunks[i] for i in chosen], whole)
        passages = [
            Passage(
                snap.chunks[i],
                snap.essays[snap.chunks[i].essay_id],
                float(fused[i]),
                rank,
                dense.get(snap.chunks[i].id, 0.0),
                closeness[snap.chunks[i].id],
            )
            for rank, i in enumerate(chosen, 1)
        ]
        return Ranked(passages, dense)

    def _add_relative(self, fused: np.ndarray, sims: dict[str, float], weight: float) -> None:
        """Relative-score fusion: a ranker's confidence counts, not only its order."""
        if not sims:
            return
        lo, hi = min(sims.values()), max(sims.values())
        for cid, sim in sims.items():
            pos = self.snapshot.position.get(cid)
            if pos is not None:
                fused[pos] += weight * (sim - lo) / (hi - lo + 1e-9)

    def _closeness(self, chunks: list[Chunk], vector: np.ndarray) -> dict[str, tuple[Sentence, ...]]:
        """Every sentence of the chosen passages with its cosine to the query, from stored vectors."""
        units = {c.id: sentence_units(self.snapshot.texts[c.essay_id], c) for c in chunks}
        ids = [sentence_id(cid, n) for cid, spans in units.items() for n in range(len(spans))]
        vectors = self.store.sentence_vectors(ids)
        return {
            cid: tuple(
                Sentence(
                    s, e, float(vectors[sid] @ vector) if (sid := sentence_id(cid, n)) in vectors else 0.0
                )
                for n, (s, e) in enumerate(spans)
            )
            for cid, spans in units.items()
        }

    def _add_keyword(self, fused: np.ndarray, text: str, weight: float, mask: np.ndarray | None) -> None:
        scores = self.keyword.scores(text)
        if mask is not None:
            keep = np.zeros(len(scores), dtype=bool)
            valid = self._kw_to_snap >= 0
            keep[valid] = mask[self._kw_to_snap[valid]]
            scores = np.where(keep, scores, 0.0)
        top = float(scores.max()) if len(scores) else 0.0
        if top <= 0:
            return
        for kw_pos in np.argsort(-scores)[:CANDIDATES]:
            pos = self._kw_to_snap[kw_pos]
            if scores[kw_pos] > 0 and pos >= 0:
                fused[pos] += weight * scores[kw_pos] / top


def _essay_strength(fused: np.ndarray, snap: Snapshot, top: int = 3) -> np.ndarray:
    """Each chunk gets its essay's mean score over the essay's best few chunks."""
    strength = np.zeros(len(snap.essay_ids))
    taken = np.zeros(len(snap.essay_ids), dtype=np.int64)
    for i in np.argsort(-fused)[:200]:
        e = snap.essay_index[i]
        if fused[i] <= 0:
            break
        if taken[e] < top:
            strength[e] += fused[i] / top
            taken[e] += 1
    return strength[snap.essay_index]


def _groups(essays: frozenset[str], authors: frozenset[str], snap: Snapshot) -> list[set[str]]:
    """Essay groups a comparison question names: one per named essay, else one per named author."""
    if len(essays) > 1:
        return [{e} for e in sorted(essays)]
    if len(authors) > 1:
        return [{eid for eid, e in snap.essays.items() if e.author == a} for a in sorted(authors)]
    return []


def _interleave(order: list[int], groups: list[set[str]], snap: Snapshot) -> list[int]:
    """Alternate between the named groups so a comparison sees both sides, best first."""
    queues = [[i for i in order if snap.chunks[i].essay_id in g] for g in groups]
    rest = [i for i in order if not any(snap.chunks[i].essay_id in g for g in groups)]
    out: list[int] = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out + rest


def _diverse(order: list[int], snap: Snapshot, k: int) -> list[int]:
    """Skip near-copies (same words, largely) so k passages say k different things."""
    chosen: list[int] = []
    seen: list[set[str]] = []
    for i in order:
        words = set(tokenize(snap.chunks[i].text))
        if any(len(words & s) / max(1, min(len(words), len(s))) > 0.8 for s in seen):
            continue
        chosen.append(i)
        seen.append(words)
        if len(chosen) == k:
            break
    return chosen


def content_words(text: str) -> list[str]:
    """Stemmed content words, shared with the answerer's sentence scoring."""
    return tokenize(re.sub(r"\[\d+\]", " ", text))
