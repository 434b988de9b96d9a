"""An in-memory view of the catalog: every chunk, its essay's details and the essays' texts.

Retrieval reads chunks from here, never from the corpus folder, so a question costs no file
reads; the snapshot is reloaded when the catalog's generation moves on (a reindex elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.catalog import Catalog
from ingest.essay import Chunk
from retrieval.types import EssayInfo


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
    """Chunks and essays as of one catalog generation."""

    def __init__(self, catalog: Catalog) -> None:
        self.generation = catalog.generation
        self.chunks: list[Chunk] = []
        self.essays: dict[str, EssayInfo] = {}
        self.texts: dict[str, str] = {}
        for essay, chunks in catalog.chunks():
            self.essays[essay.id] = EssayInfo(
                essay.id, essay.title, essay.author, essay.year, essay.collection
            )
            self.texts[essay.id] = essay.text
            self.chunks.extend(chunks)
        self.position = {c.id: i for i, c in enumerate(self.chunks)}
        self.essay_ids = list(self.essays)
        number = {eid: i for i, eid in enumerate(self.essay_ids)}
        #: essay number of every chunk, for per-essay arithmetic without Python loops
        self.essay_index = np.array([number[c.essay_id] for c in self.chunks], dtype=np.int64)

    def mask(self, filters: Filters) -> np.ndarray | None:
        """Boolean mask over chunks for the filters, or None when nothing is filtered."""
        if not filters:
            return None
        allowed = {
            eid
            for eid, info in self.essays.items()
            if (not filters.collections or info.collection in filters.collections)
            and (not filters.authors or info.author in filters.authors)
            and (not filters.essays or eid in filters.essays)
        }
        return self.chunks_of(allowed)

    def chunks_of(self, essay_ids: set[str]) -> np.ndarray:
        """Boolean mask of the chunks of some essays (vectorised: it runs per question)."""
        wanted = [i for i, eid in enumerate(self.essay_ids) if eid in essay_ids]
        return np.isin(self.essay_index, wanted)
