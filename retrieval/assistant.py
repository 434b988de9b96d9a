"""The facade the app and the command line use: Assistant.open(settings).ask(question, history)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from ingest.catalog import Catalog
from ingest.embed import Embedder, load_embedder
from ingest.errors import IndexMismatch, IndexMissing
from ingest.essay import Essay
from ingest.keyword import KeywordIndex
from ingest.pipeline import catalog_path, keyword_path, keyword_text
from ingest.settings import Settings
from ingest.store import VectorStore
from retrieval.conversation import is_follow_up, standalone
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
        self._answerers: dict[str, Answerer] = {}
        self._load()

    open = classmethod(lambda cls, settings, **kw: cls(settings, **kw))

    def _load(self) -> None:
        snapshot = Snapshot(self.catalog)
        keyword = KeywordIndex.load(keyword_path(self.settings))
        if keyword is None or keyword.generation != snapshot.generation:
            # The saved keyword index lags the catalog (a reindex is under way): build one in memory.
            pairs = [
                (c.id, keyword_text(c, essay)) for essay, chunks in self.catalog.chunks() for c in chunks
            ]
            keyword = KeywordIndex.build([i for i, _ in pairs], [t for _, t in pairs], snapshot.generation)
        self.snapshot, self.keyword = snapshot, keyword
        self.searcher = Searcher(snapshot, keyword, self.store, self.embedder)
        self._answerers.clear()

    def refresh(self) -> bool:
        """Pick up a reindex done elsewhere; True when something changed."""
        with self._lock:
            if self.catalog.generation == self.snapshot.generation:
                return False
            self._load()
            return True

    def answerer(self, mode: str | None = None) -> Answerer:
        mode = mode or self.settings.answer_mode
        if mode not in self._answerers:
            self._answerers[mode] = make_answerer(mode, self)
        return self._answerers[mode]

    def essay_text(self, essay_id: str) -> str | None:
        return self.snapshot.text(essay_id)

    def retrieve(
        self,
        query: str,
        *,
        k: int | None = None,
        filters: Filters = Filters(),
        focus: str = "",
        context: Sequence[str] = (),
    ) -> list[Passage]:
        return self.searcher.search(
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
        question, query, passages = self.prepare(question, history, filters, k, mode)
        answer = self.answerer(mode).answer(question, passages, history)
        return self.checked(replace(answer, standalone=query))

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
        question, query, passages = self.prepare(question, history, filters, k, mode)
        answerer = self.answerer(mode)
        if not hasattr(answerer, "stream"):
            answer = answerer.answer(question, passages, history)
            return iter(()), lambda: self.checked(replace(answer, standalone=query))
        stream = answerer.stream(question, passages, history)
        return stream, lambda: self.checked(replace(stream.answer, standalone=query))

    def prepare(
        self,
        question: str,
        history: Sequence[Turn] = (),
        filters: Filters = Filters(),
        k: int | None = None,
        mode: str | None = None,
    ) -> tuple[str, str, list[Passage]]:
        """The question, the query searched with (a follow-up carries the conversation), the passages."""
        question = question.strip()
        # An LLM condenses follow-ups better than the rule; without one the rule does it offline.
        llm = (mode or self.settings.answer_mode) != "extractive"
        condense = getattr(self.answerer(mode), "condense", None) if llm and history else None
        query = condense(question, history) if condense else standalone(question, history)
        focus = question if query != question else ""
        # A follow-up stays with the essays the conversation is about, unless it names others.
        context = history[-1].essays if history and is_follow_up(question) else ()
        return question, query, self.retrieve(query, k=k, filters=filters, focus=focus, context=context)

    def checked(self, answer: Answer) -> Answer:
        """Re-verify every citation against the stored text, whoever produced it."""
        citations = tuple(verify(c, self.essay_text(c.essay)) for c in answer.citations)
        return replace(answer, citations=citations)

    def essay(self, essay_id: str) -> Essay | None:
        return self.catalog.essay(essay_id)

    def stats(self) -> CorpusStats:
        essays = self.snapshot.essays
        collections: dict[str, int] = {}
        for info in essays.values():
            collections[info.collection or "(top level)"] = (
                collections.get(info.collection or "(top level)", 0) + 1
            )
        return CorpusStats(
            collections=dict(sorted(collections.items())),
            essays=len(essays),
            chunks=self.snapshot.size,
            last_indexed=self.catalog.last_indexed(),
            authors=tuple(sorted({e.author for e in essays.values() if e.author})),
            titles={eid: e.title for eid, e in sorted(essays.items())},
        )
