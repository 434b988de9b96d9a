"""The vector store: the one module that talks to chromadb (embedded, or a `chroma run` server)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ingest.errors import StoreUnavailable
from ingest.settings import Settings

log = logging.getLogger(__name__)

_ADD_BATCH = 2000  # stay well under Chroma's max batch size


@dataclass(frozen=True)
class Hit:
    """A nearest-neighbour result: chunk id and cosine similarity."""

    id: str
    similarity: float


class VectorStore:
    """A Chroma collection of chunk vectors with essay metadata, cosine space, no embedding function."""

    def __init__(self, settings: Settings) -> None:
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
                self.client = chromadb.PersistentClient(
                    path=str(settings.index_dir / "chroma"),
                    settings=chromadb.Settings(anonymized_telemetry=False),
                )
        except Exception as err:  # chromadb raises many types for an unreachable or refusing server
            raise StoreUnavailable(_unavailable(settings, err)) from err
        self._collection = None

    @property
    def collection(self):
        if self._collection is None:
            self._collection = self._call(
                self.client.get_or_create_collection,
                name=self._settings.collection,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._collection

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if self._settings.chroma_host:
                raise StoreUnavailable(_unavailable(self._settings, err)) from err
            raise

    def version(self) -> dict[str, str]:
        """The model and chunker the stored vectors were made with (empty for a new collection)."""
        meta = self.collection.metadata or {}
        return {k: str(v) for k, v in meta.items() if k in {"embed_model", "chunker"}}

    def reset(self, *, embed_model: str, chunker: str) -> None:
        """Drop every vector and start a collection stamped with the model and chunker versions."""
        try:
            self._call(self.client.delete_collection, self._settings.collection)
        except Exception as err:  # noqa: BLE001 - a missing collection is what we want anyway
            log.debug("no collection to delete: %s", err)
        self._collection = self._call(
            self.client.create_collection,
            name=self._settings.collection,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embed_model": embed_model, "chunker": chunker},
        )

    def count(self) -> int:
        return self._call(self.collection.count)

    def ids(self) -> set[str]:
        out: set[str] = set()
        offset, page = 0, 10_000
        while True:
            got = self._call(self.collection.get, include=[], limit=page, offset=offset)["ids"]
            out.update(got)
            if len(got) < page:
                return out
            offset += page

    def add(
        self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict], documents: Sequence[str]
    ) -> None:
        for lo in range(0, len(ids), _ADD_BATCH):
            hi = lo + _ADD_BATCH
            self._call(
                self.collection.upsert,
                ids=list(ids[lo:hi]),
                embeddings=vectors[lo:hi],
                metadatas=list(metadatas[lo:hi]),
                documents=list(documents[lo:hi]),
            )

    def delete_essay(self, essay_id: str) -> None:
        self._call(self.collection.delete, where={"essay": essay_id})

    def delete_ids(self, ids: Sequence[str]) -> None:
        for lo in range(0, len(ids), _ADD_BATCH):
            self._call(self.collection.delete, ids=list(ids[lo : lo + _ADD_BATCH]))

    def query(self, vector: np.ndarray, k: int, where: dict | None = None) -> list[Hit]:
        """The k nearest chunks to a unit vector, optionally filtered on metadata."""
        n = self.count()
        if n == 0:
            return []
        res = self._call(
            self.collection.query,
            query_embeddings=[vector],
            n_results=min(k, n),
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
