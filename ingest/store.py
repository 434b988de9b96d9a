"""The vector store: the one module that talks to chromadb (embedded, or a `chroma run` server)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ingest.errors import StoreUnavailable
from ingest.settings import Settings

log = logging.getLogger(__name__)

# Vectors per write, at most (a smaller limit the client reports, get_max_batch_size, wins): the
# pipeline writes groups of about 1,024 chunks. Measured on a server (100k vectors): 1,397/s in
# writes of 256, 1,935/s of 1,000, 1,685/s of 2,000, 1,632/s of 5,000.
_ADD_BATCH = 2048
_VERSION_KEYS = {"embed_model", "chunker", "sentences"}
# Vectors a server adds between saves of its HNSW index (Chroma's default is 1,000). Each save
# rewrites the whole id map, so at the default the cost of a write grows with the collection:
# 100k vectors took 45 s at the start of a million and 98 s at its end (1,470/s overall); with
# saves every 10,000 they took 42-46 s all through 600k (2,319/s against 1,818/s). Writes since
# the last save are in the server's log and replayed when it starts, so nothing is lost. An
# embedded store keeps the default: each process that opens it replays that log.
_SERVER_SYNC = 10_000


@dataclass(frozen=True)
class Hit:
    """A nearest-neighbour result: chunk id and cosine similarity."""

    id: str
    similarity: float


class VectorStore:
    """A Chroma collection of chunk vectors: essay metadata, cosine, no embedding function.

    Sentence vectors live in the catalog (ingest/catalog.py); an index made before that has a
    second collection, `<name>-sentences`, which a reset drops.
    """

    def __init__(self, settings: Settings, *, fresh: bool = False) -> None:
        """`fresh`: read the embedded store from disk again, for what another process wrote to it.

        chromadb keeps one embedded store per folder and process, and its vector index in memory
        does not see another process's writes: asked for a vector written since, it fails with
        "Error finding id". A fresh one is a new instance; one made before stays usable by whoever
        still holds it (a question under way), and is freed with it.
        """
        os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
        import chromadb  # lazy: importing chromadb costs about a second

        self._settings = settings
        self._chromadb = chromadb
        try:
            if settings.chroma_host:
                headers = (
                    {"Authorization": f"Bearer {settings.chroma_token}"} if settings.chroma_token else None
                )
                self.client = chromadb.HttpClient(
                    host=settings.chroma_host,
                    port=settings.chroma_port,
                    headers=headers,
                    settings=chromadb.Settings(anonymized_telemetry=False),
                )
                self.client.heartbeat()
            else:
                settings.index_dir.mkdir(parents=True, exist_ok=True)
                if fresh:
                    from chromadb.api.shared_system_client import SharedSystemClient

                    # Forget the cached instance for this folder (not stop it: it may be in use).
                    SharedSystemClient._identifier_to_system.pop(str(settings.index_dir / "chroma"), None)
                self.client = chromadb.PersistentClient(
                    path=str(settings.index_dir / "chroma"),
                    settings=chromadb.Settings(anonymized_telemetry=False),
                )
        except Exception as err:  # chromadb raises many types for an unreachable or refusing server
            raise StoreUnavailable(_unavailable(settings, err)) from err
        self._collections: dict[str, object] = {}
        self._max_batch: int | None = None

    @property
    def collection(self):
        """Chunk vectors."""
        return self._get(self._settings.collection)

    def _get(self, name: str):
        if name not in self._collections:
            self._collections[name] = self._call(
                self.client.get_or_create_collection,
                name=name,
                embedding_function=None,
                configuration=self._configuration(),
            )
        return self._collections[name]

    def _configuration(self) -> dict:
        """A new collection's index: cosine, and on a server fewer saves (_SERVER_SYNC); an
        existing collection keeps the configuration it was made with."""
        hnsw: dict[str, object] = {"space": "cosine"}
        if self._settings.chroma_host:
            hnsw["sync_threshold"] = _SERVER_SYNC
        return {"hnsw": hnsw}

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if self._settings.chroma_host:
                raise StoreUnavailable(_unavailable(self._settings, err)) from err
            raise

    def version(self) -> dict[str, str]:
        """The model, chunker and sentence units the stored vectors were made with (empty when new)."""
        meta = self.collection.metadata or {}
        return {k: str(v) for k, v in meta.items() if k in _VERSION_KEYS}

    def reset(self, **version: str) -> None:
        """Drop every vector and start collections stamped with the versions they are made with."""
        name = self._settings.collection
        for old in (name, f"{name}-sentences"):
            try:
                self._call(self.client.delete_collection, old)
            except Exception as err:  # noqa: BLE001 - a missing collection is what we want anyway
                log.debug("no collection %s to delete: %s", old, err)
        self._collections = {
            name: self._call(
                self.client.create_collection,
                name=name,
                embedding_function=None,
                configuration=self._configuration(),
                metadata=dict(version),
            )
        }

    def count(self) -> int:
        return self._call(self.collection.count)

    def ids(self) -> set[str]:
        return self._ids(self.collection)

    def _ids(self, collection) -> set[str]:
        return {i for got in self._pages(collection, [], 10_000) for i in got["ids"]}

    def _pages(self, collection, include: list[str], page: int) -> Iterator[dict]:
        """A collection's records, `page` at a time, in the order Chroma keeps them."""
        offset = 0
        while True:
            got = self._call(collection.get, include=include, limit=page, offset=offset)
            yield got
            if len(got["ids"]) < page:
                return
            offset += page

    def all_vectors(self) -> tuple[list[str], np.ndarray]:
        """Every chunk id and vector, read in pages (of 1,000: the app's peak memory grew by 75 MB
        reading 12k vectors in pages of 1,000, 152 MB in pages of 5,000)."""
        ids: list[str] = []
        parts: list[np.ndarray] = []
        for got in self._pages(self.collection, ["embeddings"], 1_000):
            if got["ids"]:
                ids.extend(got["ids"])
                parts.append(np.asarray(got["embeddings"], dtype=np.float32))
        dims = parts[0].shape[1] if parts else 0
        return ids, np.concatenate(parts) if parts else np.zeros((0, dims), dtype=np.float32)

    def add(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict]) -> None:
        """Chunk vectors with their metadata; no documents: texts live in the catalog, and Chroma
        would index every document for full-text search (slower writes, more disk) for nothing."""
        self._upsert(self.collection, ids, vectors, metadatas)

    @property
    def _batch(self) -> int:
        if self._max_batch is None:
            self._max_batch = min(_ADD_BATCH, int(self._call(self.client.get_max_batch_size)))
        return self._max_batch

    def _upsert(self, collection, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict]) -> None:
        for lo in range(0, len(ids), self._batch):
            hi = lo + self._batch
            self._call(
                collection.upsert,
                ids=list(ids[lo:hi]),
                embeddings=vectors[lo:hi],
                metadatas=list(metadatas[lo:hi]),
            )

    def delete_essay(self, essay_id: str) -> None:
        self._call(self.collection.delete, where={"essay": essay_id})

    def delete_ids(self, ids: Sequence[str]) -> None:
        for lo in range(0, len(ids), self._batch):
            self._call(self.collection.delete, ids=list(ids[lo : lo + self._batch]))

    def query(self, vector: np.ndarray, k: int, where: dict | None = None) -> list[Hit]:
        """The k nearest chunks to a unit vector, optionally filtered on metadata."""
        return self._query(self.collection, vector, k, where)

    def _query(self, collection, vector: np.ndarray, k: int, where: dict | None) -> list[Hit]:
        # No count() first: Chroma (1.5) returns fewer hits than asked when it has fewer, and a
        # count cost 4 ms a call at 3k vectors, two calls a question, more through a server.
        res = self._call(
            collection.query,
            query_embeddings=[vector],
            n_results=k,
            where=where or None,
            include=["distances"],
        )
        return [Hit(i, 1.0 - d) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]


def _unavailable(settings: Settings, err: Exception) -> str:
    first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    return (
        f"cannot use the Chroma server at {settings.chroma_host}:{settings.chroma_port} ({first}); "
        "check that it is running (chroma run --host HOST --port PORT --path DIR) and that "
        "MARGINALIA_CHROMA_TOKEN is right, or unset MARGINALIA_CHROMA_HOST to use the embedded store"
    )
