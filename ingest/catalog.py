"""The catalog: essays' clean text, metadata, hashes and chunk offsets, in one SQLite file.

It is the source of truth for quotes (citations are checked against the text stored here) and
the record of what the vector store holds, committed per essay *after* its vectors are written,
so an interrupted ingest is finished by simply running it again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.essay import Chunk, Essay, page_span

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', '0');
CREATE TABLE IF NOT EXISTS essays (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, author TEXT NOT NULL, year TEXT NOT NULL,
    collection TEXT NOT NULL, source_hash TEXT NOT NULL, text TEXT NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    essay_id TEXT NOT NULL REFERENCES essays(id) ON DELETE CASCADE, ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, heading TEXT NOT NULL,
    PRIMARY KEY (essay_id, ordinal)
);
-- Each essay's sentence vectors (ingest/sentences.py): `counts` the sentences of each chunk in
-- ordinal order (uint16), `vectors` their float32 rows in the same order. Kept here rather than in
-- Chroma: written in the essay's own transaction (no strays, nothing to reconcile), read by essay
-- for the few essays a question is about, and no HNSW to build for four vectors a chunk
-- (Chroma wrote ~1,500 vectors/s here: sentences were four fifths of the indexing time at scale).
CREATE TABLE IF NOT EXISTS sentence_vectors (
    essay_id TEXT PRIMARY KEY REFERENCES essays(id) ON DELETE CASCADE,
    counts BLOB NOT NULL, vectors BLOB NOT NULL
);
-- Where each page starts in a paged essay's text (a JSON list); other essays have no row. Added
-- for PDFs: an index made before it gains the empty table on open, right for its text essays.
CREATE TABLE IF NOT EXISTS pages (
    essay_id TEXT PRIMARY KEY REFERENCES essays(id) ON DELETE CASCADE, starts TEXT NOT NULL
);
"""
_ESSAY = (
    "SELECT e.id, e.title, e.text, e.author, e.year, e.collection, e.source_hash, p.starts"
    " FROM essays e LEFT JOIN pages p ON p.essay_id = e.id"
)
_ESSAY_CHUNKS = _ESSAY.replace(
    " FROM essays e",
    ', (SELECT json_group_array(json_array(c.ordinal, c.start, c."end", c.heading))'
    " FROM chunks c WHERE c.essay_id = e.id) FROM essays e",
)


@dataclass(frozen=True)
class EssayRecord:
    """An indexed essay as the catalog lists it, without its text."""

    id: str
    title: str
    author: str
    year: str
    collection: str
    source_hash: str
    chunks: int
    indexed_at: float


@dataclass(frozen=True)
class SentenceVectors:
    """An essay's sentence vectors: `counts[i]` rows for its chunk of ordinal i, rows in order."""

    counts: np.ndarray  # uint16, one per chunk
    matrix: np.ndarray  # float32, sum(counts) x dimensions

    def blobs(self) -> tuple[bytes, bytes]:
        return (
            np.asarray(self.counts, dtype=np.uint16).tobytes(),
            np.ascontiguousarray(self.matrix, dtype=np.float32).tobytes(),
        )

    @classmethod
    def from_blobs(cls, counts: bytes, vectors: bytes) -> SentenceVectors:
        n = np.frombuffer(counts, dtype=np.uint16)
        rows = np.frombuffer(vectors, dtype=np.float32)
        total = int(n.sum())
        return cls(n, rows.reshape(total, -1) if total else rows.reshape(0, 0))


class Catalog:
    """SQLite-backed record of indexed essays and their chunk offsets."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._read = threading.Lock()  # the connection is shared by the app's sessions

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self, *, bump: bool = True) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if bump:
            self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        self._db.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, values: dict[str, str], *, bump: bool = True) -> None:
        """Store meta values; `bump=False` for bookkeeping that changes nothing a reader sees."""
        with self._tx(bump=bump) as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))

    @property
    def generation(self) -> int:
        """Bumped by every change, so readers know when to reload."""
        return int(self.get_meta("generation") or 0)

    def records(self) -> dict[str, EssayRecord]:
        rows = self._db.execute(
            "SELECT e.id, e.title, e.author, e.year, e.collection, e.source_hash,"
            " (SELECT COUNT(*) FROM chunks c WHERE c.essay_id = e.id), e.indexed_at FROM essays e"
        ).fetchall()
        return {row[0]: EssayRecord(*row) for row in rows}

    def essay(self, essay_id: str) -> Essay | None:
        row = self._db.execute(f"{_ESSAY} WHERE e.id = ?", (essay_id,)).fetchone()
        return _essay(row) if row else None

    def essays(self) -> Iterator[Essay]:
        for row in self._db.execute(f"{_ESSAY} ORDER BY e.id"):
            yield _essay(row)

    def chunks(self) -> Iterator[tuple[Essay, list[Chunk]]]:
        """Every essay with its chunks, texts sliced from the stored essay text.

        One statement reads both, so they come from one version of the catalog even while an
        ingest writes (two reads could pair an essay's old offsets with its new text).
        """
        for row in self._db.execute(f"{_ESSAY_CHUNKS} ORDER BY e.id"):
            essay = _essay(row[:-1])
            yield (
                essay,
                [
                    Chunk(essay.id, o, essay.text[s:e], s, e, h, page_span(essay.page_starts, s, e))
                    for o, s, e, h in sorted(json.loads(row[-1]))
                ],
            )

    def essay_details(self) -> list[tuple[str, str, str, str, str]]:
        """(id, title, author, year, collection) of every essay, by id, without texts."""
        with self._read:
            return self._db.execute(
                "SELECT id, title, author, year, collection FROM essays ORDER BY id"
            ).fetchall()

    def chunk_counts(self) -> dict[str, int]:
        """How many chunks each essay has."""
        with self._read:
            return dict(self._db.execute("SELECT essay_id, COUNT(*) FROM chunks GROUP BY essay_id"))

    def chunks_by_id(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """Some chunks by id (`<essay id>#<ordinal>`), their texts sliced from the essay in SQLite."""
        keys = []
        for cid in dict.fromkeys(chunk_ids):
            essay_id, _, ordinal = cid.rpartition("#")
            if ordinal.isdigit():
                keys += [essay_id, int(ordinal)]
        if not keys:
            return {}
        with self._read:
            rows = self._db.execute(_chunks_by_id_sql(len(keys) // 2), keys).fetchall()
        out = {}
        for essay_id, ordinal, start, end, heading, text, starts in rows:
            pages = page_span(tuple(json.loads(starts)), start, end) if starts else None
            chunk = Chunk(essay_id, ordinal, text, start, end, heading, pages)
            out[chunk.id] = chunk
        return out

    def texts(self, essay_ids: Sequence[str]) -> dict[str, str]:
        """Some essays' clean texts, by id (those the catalog has)."""
        ids = list(dict.fromkeys(essay_ids))
        if not ids:
            return {}
        with self._read:
            return dict(
                self._db.execute(f"SELECT id, text FROM essays WHERE id IN ({','.join('?' * len(ids))})", ids)
            )

    def chunk_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def put(self, essay: Essay, chunks: list[Chunk], sentences: SentenceVectors | None = None) -> None:
        """Record an essay and its chunks, replacing any earlier version, atomically."""
        self.put_many([(essay, chunks, sentences)])

    def put_many(self, essays: Sequence[tuple[Essay, list[Chunk], SentenceVectors | None]]) -> None:
        """Record several essays with their chunks (and sentence vectors) in one transaction."""
        with self._tx() as db:
            db.executemany("DELETE FROM essays WHERE id = ?", [(e.id,) for e, _, _ in essays])
            now = time.time()
            db.executemany(
                "INSERT INTO essays VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (e.id, e.title, e.author, e.year, e.collection, e.source_hash, e.text, now)
                    for e, _, _ in essays
                ],
            )
            db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?)",
                [
                    (c.essay_id, c.ordinal, c.start, c.end, c.heading)
                    for _, chunks, _ in essays
                    for c in chunks
                ],
            )
            db.executemany(
                "INSERT INTO pages VALUES (?, ?)",
                [(e.id, json.dumps(e.page_starts)) for e, _, _ in essays if e.page_starts],
            )
            db.executemany(
                "INSERT INTO sentence_vectors VALUES (?, ?, ?)",
                [(e.id, *v.blobs()) for e, _, v in essays if v is not None],
            )

    def sentence_vectors(self, essay_ids: Sequence[str]) -> dict[str, SentenceVectors]:
        """Some essays' sentence vectors, by id (those the catalog has)."""
        ids = list(dict.fromkeys(essay_ids))
        out: dict[str, SentenceVectors] = {}
        for lo in range(0, len(ids), 500):  # under SQLite's limit of bound parameters
            part = ids[lo : lo + 500]
            with self._read:
                rows = self._db.execute(
                    "SELECT essay_id, counts, vectors FROM sentence_vectors"
                    f" WHERE essay_id IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
            out.update((eid, SentenceVectors.from_blobs(c, v)) for eid, c, v in rows)
        return out

    def sentence_total(self) -> int:
        """How many sentence vectors the catalog holds."""
        rows = self._db.execute("SELECT counts FROM sentence_vectors").fetchall()
        return sum(int(np.frombuffer(c, dtype=np.uint16).sum()) for (c,) in rows)

    def delete(self, essay_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM essays WHERE id = ?", (essay_id,))

    def clear(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM essays")
            db.execute("DELETE FROM meta WHERE key != 'generation'")

    def last_indexed(self) -> float | None:
        return self._db.execute("SELECT MAX(indexed_at) FROM essays").fetchone()[0]


def _chunks_by_id_sql(n: int) -> str:
    """Chunks by (essay id, ordinal) pairs. The pairs are a table joined to chunks' primary key:
    `(essay_id, ordinal) IN (VALUES ...)` made SQLite scan every chunk (30 ms a question at 300k)."""
    pairs = ",".join(["(?, ?)"] * n)
    return (
        f"WITH wanted(essay_id, ordinal) AS (VALUES {pairs})"
        ' SELECT c.essay_id, c.ordinal, c.start, c."end", c.heading,'
        ' substr(e.text, c.start + 1, c."end" - c.start), p.starts'
        " FROM wanted w CROSS JOIN chunks c ON c.essay_id = w.essay_id AND c.ordinal = w.ordinal"
        " JOIN essays e ON e.id = c.essay_id LEFT JOIN pages p ON p.essay_id = c.essay_id"
    )


def _essay(row: tuple) -> Essay:
    essay_id, title, text, author, year, collection, source_hash, starts = row
    pages = tuple(json.loads(starts)) if starts else ()
    return Essay(essay_id, title, text, author, year, collection, source_hash, page_starts=pages)
