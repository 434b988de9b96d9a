"""Exact nearest neighbours for an index small enough to hold its vectors in memory.

Chroma's HNSW search is approximate, and what it returns for the same vector differs between
processes that open the same embedded index (observed, not traced into chromadb's Rust: the graph
is presumably completed differently at load). On the shipped corpus the dense top 60 differed
between two processes for the same question (1 to 3 of 60 passages), which moved the
relative scores of every candidate and so the answer: the load bench's server and the process
checking it disagreed on an answer 12 times in 641 (2026-12-07), and one question of dev.jsonl was
refused or answered depending on the run. Up to EXACT_LIMIT chunks (the shipped corpus has 3,044)
the chunk vectors of one index generation are read once into memory and searched exactly: the
same question gets the same passages in every process, and a query costs under a millisecond
against Chroma's 2-3 ms. Past the limit, Chroma's index answers.

Sentence vectors are not in Chroma (see ingest/catalog.py): SentenceIndex reads them from the
catalog by essay, for the essays a question's other searches found, and searches those exactly.
On the shipped corpus that is about 44 of 159 essays a question, and tune, dev and paraphrased
score exactly as with every sentence searched (2026-12-07); at a million chunks it is the same
few thousand sentences, where a search over every sentence would be four million.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np

from ingest.sentences import essay_sentence_ids
from ingest.store import Hit, VectorStore
from retrieval.snapshot import Snapshot

# Chunk vectors held in memory at most: 60,000 x 384 float32 is 92 MB (the shipped corpus: 3,044
# vectors, 4.7 MB, read from the embedded store in about 0.3 s).
EXACT_LIMIT = 60_000
# Essays whose sentence vectors stay in memory (the shipped corpus: all 159, 18 MB; a synthetic
# essay of 20 chunks: about 120 kB).
SENTENCE_CACHE = 256


_blas_limited = threading.Event()


def _one_blas_thread() -> None:
    """BLAS on one thread in this process, once. A product of 12k x 384 takes 0.25 ms on two
    threads, but the second thread spins waiting for the next call: the app used 8 ms more CPU a
    question (26 against 18) until the products ran on one, and eight sessions felt it. Nothing
    else in the app does large products (the model runs in OpenVINO's own threads)."""
    if not _blas_limited.is_set():
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
        _blas_limited.set()


class ExactVectors:
    """One collection's vectors in id order, each row with its essay's number in the snapshot."""

    def __init__(self, ids: Sequence[str], matrix: np.ndarray, essays: np.ndarray) -> None:
        _one_blas_thread()
        order = sorted(range(len(ids)), key=ids.__getitem__)  # the same rows whatever order Chroma gives
        self.ids = [ids[i] for i in order]
        matrix = np.asarray(matrix, dtype=np.float32)
        self.matrix = np.ascontiguousarray(matrix[order]) if order else matrix.reshape(0, matrix.shape[-1])
        self.essays = np.asarray(essays, dtype=np.int64)[order]
        self.row = {cid: n for n, cid in enumerate(self.ids)}

    @classmethod
    def read(cls, store: VectorStore, snapshot: Snapshot) -> ExactVectors:
        """Every chunk vector; rows of essays the snapshot does not have (written by an ingest
        after it) are kept but never returned."""
        ids, matrix = store.all_vectors()
        essays = np.array([snapshot.number.get(_essay(i), -1) for i in ids], dtype=np.int64)
        return cls(ids, matrix, essays)

    def __len__(self) -> int:
        return len(self.ids)

    def query(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[Hit]:
        """The k rows closest to a unit vector, best first (ties by id), among the allowed essays'
        rows when `allowed` (essay numbers) is given."""
        if not self.ids or k <= 0:
            return []
        sims = self.matrix @ np.asarray(vector, dtype=np.float32)
        keep = self.essays >= 0 if allowed is None else np.isin(self.essays, allowed)
        rows = np.flatnonzero(keep)
        if len(rows) > k:
            # The k-th best score, then every row scoring at least that: ties at the cut stay whole.
            cut = np.partition(sims[rows], len(rows) - k)[len(rows) - k]
            rows = rows[sims[rows] >= cut]
        best = rows[np.lexsort((rows, -sims[rows]))][:k]
        return [Hit(self.ids[r], float(sims[r])) for r in best.tolist()]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The rows of the given ids (those present)."""
        return {i: self.matrix[n] for i in ids if (n := self.row.get(i)) is not None}


def read_exact(store: VectorStore, snapshot: Snapshot) -> ExactVectors | None:
    """Chunk vectors for exact search, or None when there are more than EXACT_LIMIT."""
    if store.count() > EXACT_LIMIT:
        return None
    return ExactVectors.read(store, snapshot)


class SentenceIndex:
    """The sentence vectors of one snapshot's essays, read from the catalog by essay and kept for
    the SENTENCE_CACHE essays used last. Safe to share between threads."""

    def __init__(self, snapshot: Snapshot) -> None:
        _one_blas_thread()
        self.snapshot = snapshot
        self._cache: OrderedDict[str, tuple[list[str], np.ndarray] | None] = OrderedDict()
        self._lock = threading.Lock()

    def among(self, essay_ids: Iterable[str]) -> ExactVectors:
        """The sentences of these essays, to search exactly (ExactVectors.query)."""
        parts = {e: got for e, got in self._essays(essay_ids).items() if got and got[0]}
        ids = [i for got in parts.values() for i in got[0]]
        if not ids:
            return ExactVectors([], np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64))
        number = self.snapshot.number
        essays = np.concatenate([np.full(len(got[0]), number[e], dtype=np.int64) for e, got in parts.items()])
        return ExactVectors(ids, np.concatenate([got[1] for got in parts.values()]), essays)

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors of the given sentence ids (`essay#3/1`; those present)."""
        parts = self._essays(_essay(i) for i in ids)
        rows = {e: dict(zip(got[0], range(len(got[0])), strict=True)) for e, got in parts.items() if got}
        out = {}
        for i in ids:
            e = _essay(i)
            got, row = parts.get(e), rows.get(e, {}).get(i)
            if got is not None and row is not None:
                out[i] = got[1][row]
        return out

    def _essays(self, essay_ids: Iterable[str]) -> dict[str, tuple[list[str], np.ndarray] | None]:
        """Each essay's sentence ids and vectors (None for one the snapshot or catalog lacks, or
        whose chunks changed since the snapshot), sorted by essay id."""
        wanted = sorted({e for e in essay_ids if e in self.snapshot.number})
        with self._lock:
            got = {e: self._cache[e] for e in wanted if e in self._cache}
            for e in got:
                self._cache.move_to_end(e)
        missing = [e for e in wanted if e not in got]
        if missing:
            read = self.snapshot.catalog.sentence_vectors(missing)
            counts = self.snapshot.counts
            for e in missing:
                v = read.get(e)
                if v is None or len(v.counts) != int(counts[self.snapshot.number[e]]):
                    got[e] = None
                else:
                    got[e] = (essay_sentence_ids(e, v.counts.tolist()), v.matrix)
            with self._lock:
                for e in missing:
                    self._cache[e] = got[e]
                while len(self._cache) > SENTENCE_CACHE:
                    self._cache.popitem(last=False)
        return {e: got[e] for e in wanted}


def _essay(vector_id: str) -> str:
    """The essay of a chunk id (`essay#3`) or a sentence id (`essay#3/1`)."""
    return vector_id.rpartition("#")[0]
