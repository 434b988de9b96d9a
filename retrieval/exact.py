"""Exact nearest neighbours for an index small enough to hold its vectors in memory.

Chroma's HNSW search is approximate, and what it returns for the same vector differs between
processes that open the same embedded index (observed, not traced into chromadb's Rust: the graph
is presumably completed differently at load). On the shipped corpus the dense top 60 differed
between two processes for the same question (1 to 3 of 60 passages), which moved the
relative scores of every candidate and so the answer: the load bench's server and the process
checking it disagreed on an answer 12 times in 641 (2026-12-07), and one question of dev.jsonl was
refused or answered depending on the run. Up to EXACT_LIMIT vectors (the shipped corpus has about
15,000) the vectors of one index generation are read once into memory and searched exactly: the
same question gets the same passages in every process, and a query costs under a millisecond
against Chroma's 2-3 ms. Past the limit, Chroma's index answers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from ingest.store import Hit, VectorStore
from retrieval.snapshot import Snapshot

# Chunk and sentence vectors held in memory at most: 60,000 x 384 float32 is 92 MB (the shipped
# corpus: 15,337 vectors, 24 MB, read from the embedded store in about 1 s).
EXACT_LIMIT = 60_000


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
    def read(cls, store: VectorStore, snapshot: Snapshot, *, sentences: bool) -> ExactVectors:
        """Every vector of the chunk (or sentence) collection; rows of essays the snapshot does not
        have (written by an ingest after it) are kept but never returned."""
        ids, matrix = store.all_vectors(sentences=sentences)
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


def read_exact(store: VectorStore, snapshot: Snapshot) -> tuple[ExactVectors, ExactVectors] | None:
    """Chunk and sentence vectors for exact search, or None when there are more than EXACT_LIMIT."""
    if store.count() + store.sentence_count() > EXACT_LIMIT:
        return None
    chunks = ExactVectors.read(store, snapshot, sentences=False)
    return chunks, ExactVectors.read(store, snapshot, sentences=True)


def _essay(vector_id: str) -> str:
    """The essay of a chunk id (`essay#3`) or a sentence id (`essay#3/1`)."""
    return vector_id.rpartition("#")[0]
