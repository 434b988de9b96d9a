"""The facade the app and the command line use: Assistant.open(settings).ask(question, history)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from ingest.catalog import Catalog
from ingest.embed import Embedder, load_embedder
from ingest.errors import IndexMismatch, IndexMissing
from ingest.essay import Essay
from ingest.keyword import KeywordIndex
from ingest.lock import index_busy
from ingest.pipeline import catalog_path, keyword_path, keyword_text
from ingest.settings import Settings
from ingest.store import VectorStore
from retrieval.conversation import is_follow_up, standalone
from retrieval.exact import read_exact
from retrieval.factory import make_answerer
from retrieval.search import Searcher
from retrieval.snapshot import Filters, Snapshot
from retrieval.types import Answer, Answerer, Passage, Turn
from retrieval.verify import verify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorpusStats:
    """The corpus at a glance, for the sidebar and the command line."""

    collections: dict[str, int]
    essays: int
    chunks: int
    last_indexed: float | None
    authors: tuple[str, ...]
    titles: dict[str, str]


class View:
    """What questions are answered from, as of one catalog generation: the snapshot, its keyword
    index, a searcher over both and the answerers made for them. Never changed once made."""

    def __init__(
        self,
        settings: Settings,
        snapshot: Snapshot,
        keyword: KeywordIndex,
        searcher: Searcher,
        last_indexed: float | None,
    ) -> None:
        self.settings, self.snapshot, self.keyword, self.searcher = settings, snapshot, keyword, searcher
        self.last_indexed = last_indexed
        self._answerers: dict[str, Answerer] = {}

    def answerer(self, mode: str | None = None) -> Answerer:
        mode = mode or self.settings.answer_mode
        if mode not in self._answerers:  # two sessions may both make one: the same, and either is kept
            self._answerers[mode] = make_answerer(mode, self)
        return self._answerers[mode]

    def essay_text(self, essay_id: str) -> str | None:
        return self.snapshot.text(essay_id)

    def checked(self, answer: Answer) -> Answer:
        """Re-verify every citation against this view's stored text, whoever produced it."""
        citations = tuple(verify(c, self.essay_text(c.essay)) for c in answer.citations)
        return replace(answer, citations=citations)


class Assistant:
    """Retrieves passages and answers questions over one index; safe to share between sessions."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None) -> None:
        if not catalog_path(settings).exists():
            raise IndexMissing(f"no index in {settings.index_dir}; build it with: python -m ingest")
        self.catalog = Catalog(catalog_path(settings))
        # Questions are embedded with the model the index was made with, whatever the setting says.
        model = self.catalog.get_meta("embed_model") or settings.embed_model
        if embedder is not None and embedder.name != model:
            raise IndexMismatch(
                f"the index in {settings.index_dir} was made with {model}, not {embedder.name}; "
                f"rebuild it with: python -m ingest --model {embedder.name}, "
                f"or set MARGINALIA_EMBED_MODEL={model}"
            )
        self.settings = settings = replace(settings, embed_model=model)
        self.store = VectorStore(settings)
        self.embedder = embedder or load_embedder(settings)
        self._lock = threading.Lock()
        self._view = self._load(self.store)

    open = classmethod(lambda cls, settings, **kw: cls(settings, **kw))

    # One catalog generation at a time, swapped whole: a question reads one View from start to
    # end, so a reload by another session can never pair passages of one index with texts of another.
    snapshot = property(lambda self: self._view.snapshot)
    keyword = property(lambda self: self._view.keyword)
    searcher = property(lambda self: self._view.searcher)

    def _load(self, store: VectorStore) -> View:
        snapshot = Snapshot(self.catalog)
        keyword = KeywordIndex.load(keyword_path(self.settings))
        if keyword is None or keyword.generation != snapshot.generation:
            # The saved keyword index lags the catalog (a killed reindex): build one in memory from
            # the catalog's chunks, stemming only those the saved one does not have.
            pairs = [
                (c.id, keyword_text(c, essay)) for essay, chunks in self.catalog.chunks() for c in chunks
            ]
            ids, texts = [i for i, _ in pairs], [t for _, t in pairs]
            known = KeywordIndex.saved_tokens(keyword_path(self.settings))
            keyword = KeywordIndex.build(ids, texts, snapshot.generation, known)
        searcher = Searcher(snapshot, keyword, store, self.embedder, read_exact(store, snapshot))
        return View(self.settings, snapshot, keyword, searcher, self.catalog.last_indexed())

    def refresh(self) -> bool:
        """Pick up a reindex done elsewhere; True when the index read from has changed.

        While an ingest holds the index, questions go on being answered from the last whole one:
        the catalog moves on with every essay it stores, and this process's view of the embedded
        store would not match it (see VectorStore's `fresh`), nor would reloading per essay be
        cheap. Once no ingest holds it (finished, or killed), the new index is loaded before this
        returns, so the next question sees it; sessions asking meanwhile wait for that one load.
        """
        if self.catalog.generation == self._view.snapshot.generation or index_busy(self.settings.index_dir):
            return False
        with self._lock:
            if self.catalog.generation == self._view.snapshot.generation:
                return False  # another session has just loaded it
            self._view = self._load(self._store_now())
            return True

    def _store_now(self) -> VectorStore:
        """The store to read a new index from: the same one, unless another process wrote it."""
        writer = self.catalog.get_meta("writer")
        if not self.settings.chroma_host and writer not in (None, str(os.getpid())):
            self.store = VectorStore(self.settings, fresh=True)
        return self.store

    def answerer(self, mode: str | None = None) -> Answerer:
        return self._view.answerer(mode)

    def essay_text(self, essay_id: str) -> str | None:
        return self._view.essay_text(essay_id)

    def retrieve(
        self,
        query: str,
        *,
        k: int | None = None,
        filters: Filters = Filters(),
        focus: str = "",
        context: Sequence[str] = (),
    ) -> list[Passage]:
        return self._view.searcher.search(
            query, k=k or self.settings.top_k, filters=filters, focus=focus, context=context
        ).passages

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        *,
        filters: Filters = Filters(),
        k: int | None = None,
        mode: str | None = None,
    ) -> Answer:
        """Answer a question in the context of the conversation so far."""
        view = self._view
        question, query, passages = self._prepare(view, question, history, filters, k, mode)
        answer = view.answerer(mode).answer(question, passages, history)
        return view.checked(replace(answer, standalone=query))

    def ask_stream(
        self,
        question: str,
        history: Sequence[Turn] = (),
        *,
        filters: Filters = Filters(),
        k: int | None = None,
        mode: str | None = None,
    ) -> tuple[Iterator[str], Callable[[], Answer]]:
        """Like ask, but text arrives in pieces as an LLM writes it; call the second item for the Answer."""
        view = self._view
        question, query, passages = self._prepare(view, question, history, filters, k, mode)
        answerer = view.answerer(mode)
        if not hasattr(answerer, "stream"):
            answer = answerer.answer(question, passages, history)
            return iter(()), lambda: view.checked(replace(answer, standalone=query))
        stream = answerer.stream(question, passages, history)
        return stream, lambda: view.checked(replace(stream.answer, standalone=query))

    def prepare(
        self,
        question: str,
        history: Sequence[Turn] = (),
        filters: Filters = Filters(),
        k: int | None = None,
        mode: str | None = None,
    ) -> tuple[str, str, list[Passage]]:
        """The question, the query searched with (a follow-up carries the conversation), the passages."""
        return self._prepare(self._view, question, history, filters, k, mode)

    def _prepare(
        self,
        view: View,
        question: str,
        history: Sequence[Turn],
        filters: Filters,
        k: int | None,
        mode: str | None,
    ) -> tuple[str, str, list[Passage]]:
        question = question.strip()
        # An LLM condenses follow-ups better than the rule; without one the rule does it offline.
        llm = (mode or self.settings.answer_mode) != "extractive"
        condense = getattr(view.answerer(mode), "condense", None) if llm and history else None
        query = condense(question, history) if condense else standalone(question, history)
        focus = question if query != question else ""
        # A follow-up stays with the essays the conversation is about, unless it names others.
        context = history[-1].essays if history and is_follow_up(question) else ()
        passages = view.searcher.search(
            query, k=k or self.settings.top_k, filters=filters, focus=focus, context=context
        ).passages
        return question, query, passages

    def checked(self, answer: Answer) -> Answer:
        """Re-verify every citation against the stored text, whoever produced it."""
        return self._view.checked(answer)

    def essay(self, essay_id: str) -> Essay | None:
        return self.catalog.essay(essay_id)

    def stats(self) -> CorpusStats:
        view = self._view
        essays = view.snapshot.essays
        collections: dict[str, int] = {}
        for info in essays.values():
            collections[info.collection or "(top level)"] = (
                collections.get(info.collection or "(top level)", 0) + 1
            )
        return CorpusStats(
            collections=dict(sorted(collections.items())),
            essays=len(essays),
            chunks=view.snapshot.size,
            last_indexed=view.last_indexed,
            authors=tuple(sorted({e.author for e in essays.values() if e.author})),
            titles={eid: e.title for eid, e in sorted(essays.items())},
        )
