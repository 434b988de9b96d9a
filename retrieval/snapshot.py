"""A compact view of the catalog: essays' details and where each essay's chunks sit, no texts.

Retrieval numbers chunks 0..n-1 in catalog order (essay id, then ordinal) and keeps only what
ranking needs per essay in memory; texts and offsets are read from the catalog (SQLite) for the
few passages a question shows. Keeping every essay's text and chunk in memory cost about 4.8 MB
per thousand chunks (past 1 GB near 150k chunks); this costs a few bytes per chunk. The snapshot
is reloaded when the catalog's generation moves on (a reindex elsewhere).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ingest.catalog import Catalog
from ingest.essay import Chunk
from retrieval.types import EssayInfo

TEXT_CACHE = 256  # essay texts kept after use: a conversation returns to the same essays


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to some collections, authors or essays (empty means no restriction)."""

    collections: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    essays: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.collections or self.authors or self.essays)

    def where(self) -> dict | None:
        """The same restriction as a Chroma metadata filter."""
        clauses = [
            {key: {"$in": list(values)}}
            for key, values in (
                ("collection", self.collections),
                ("author", self.authors),
                ("essay", self.essays),
            )
            if values
        ]
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class Snapshot:
    """Essays and chunk positions as of one catalog generation; texts read on demand."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.generation = catalog.generation
        self.essays: dict[str, EssayInfo] = {
            row[0]: EssayInfo(*row) for row in catalog.essay_details()
        }  # in catalog order: by id
        self.essay_ids = list(self.essays)
        self.number = {eid: i for i, eid in enumerate(self.essay_ids)}
        counts = catalog.chunk_counts()
        self.counts = np.array([counts.get(eid, 0) for eid in self.essay_ids], dtype=np.int64)
        #: position of each essay's first chunk; chunk `ordinal` of essay e sits at first[e] + ordinal
        self.first = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        self.size = int(self.counts.sum())
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def position(self, chunk_id: str) -> int | None:
        """Where a chunk sits in catalog order, or None when this snapshot does not have it."""
        essay_id, _, ordinal = chunk_id.rpartition("#")
        e = self.number.get(essay_id)
        if e is None or not ordinal.isdigit() or int(ordinal) >= self.counts[e]:
            return None
        return int(self.first[e]) + int(ordinal)

    def chunk_ids_of(self, essay_ids: Iterable[str]) -> list[str]:
        """Every chunk id of some essays."""
        return [
            f"{eid}#{n}"
            for eid in essay_ids
            if (e := self.number.get(eid)) is not None
            for n in range(int(self.counts[e]))
        ]

    def essays_of(self, positions: np.ndarray) -> np.ndarray:
        """The essay number of each chunk position (vectorised)."""
        return np.searchsorted(self.first, positions, side="right") - 1

    def ids_at(self, positions: Sequence[int]) -> list[str]:
        """The chunk ids at some positions."""
        essays = self.essays_of(np.asarray(positions, dtype=np.int64))
        return [
            f"{self.essay_ids[e]}#{p - self.first[e]}"
            for p, e in zip(positions, essays.tolist(), strict=True)
        ]

    def allowed(self, filters: Filters) -> set[str] | None:
        """The essays the filters let through, or None when nothing is filtered."""
        if not filters:
            return None
        return {
            eid
            for eid, info in self.essays.items()
            if (not filters.collections or info.collection in filters.collections)
            and (not filters.authors or info.author in filters.authors)
            and (not filters.essays or eid in filters.essays)
        }

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """The chunks with these ids (those the catalog has), texts sliced in SQLite: one query."""
        return self.catalog.chunks_by_id(chunk_ids)

    def text(self, essay_id: str) -> str | None:
        """An essay's clean text, from a small cache or the catalog."""
        with self._lock:
            if essay_id in self._texts:
                self._texts.move_to_end(essay_id)
                return self._texts[essay_id]
        return self.texts([essay_id]).get(essay_id)

    def texts(self, essay_ids: Iterable[str]) -> dict[str, str]:
        """Several essays' texts, those not cached read in one query."""
        wanted = list(dict.fromkeys(essay_ids))
        with self._lock:
            missing = [eid for eid in wanted if eid not in self._texts]
        got = self.catalog.texts(missing) if missing else {}
        with self._lock:
            for eid, text in got.items():
                self._texts[eid] = text
            while len(self._texts) > TEXT_CACHE:
                self._texts.popitem(last=False)
            return {eid: t for eid in wanted if (t := self._texts.get(eid, got.get(eid))) is not None}
