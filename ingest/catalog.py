"""The catalog: essays' clean text, metadata, hashes and chunk offsets, in one SQLite file.

It is the source of truth for quotes (citations are checked against the text stored here) and
the record of what the vector store holds, committed per essay *after* its vectors are written,
so an interrupted ingest is finished by simply running it again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


class Catalog:
    """SQLite-backed record of indexed essays and their chunk offsets."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

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

    def chunk_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def put(self, essay: Essay, chunks: list[Chunk]) -> None:
        """Record an essay and its chunks, replacing any earlier version, atomically."""
        with self._tx() as db:
            db.execute("DELETE FROM essays WHERE id = ?", (essay.id,))
            db.execute(
                "INSERT INTO essays VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    essay.id,
                    essay.title,
                    essay.author,
                    essay.year,
                    essay.collection,
                    essay.source_hash,
                    essay.text,
                    time.time(),
                ),
            )
            db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?)",
                [(c.essay_id, c.ordinal, c.start, c.end, c.heading) for c in chunks],
            )
            if essay.page_starts:
                db.execute("INSERT INTO pages VALUES (?, ?)", (essay.id, json.dumps(essay.page_starts)))

    def delete(self, essay_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM essays WHERE id = ?", (essay_id,))

    def clear(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM essays")
            db.execute("DELETE FROM meta WHERE key != 'generation'")

    def last_indexed(self) -> float | None:
        return self._db.execute("SELECT MAX(indexed_at) FROM essays").fetchone()[0]


def _essay(row: tuple) -> Essay:
    essay_id, title, text, author, year, collection, source_hash, starts = row
    pages = tuple(json.loads(starts)) if starts else ()
    return Essay(essay_id, title, text, author, year, collection, source_hash, page_starts=pages)
