"""The retriever as a LangChain BaseRetriever, so it composes with chains and agents."""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from retrieval.assistant import Assistant
from retrieval.snapshot import Filters


class EssayRetriever(BaseRetriever):
    """Hybrid essay search; each Document carries essay id, title, author and exact offsets."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    assistant: Assistant
    k: int = 5
    filters: Filters = Filters()

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        passages = self.assistant.retrieve(query, k=self.k, filters=self.filters)
        return [
            Document(
                page_content=p.chunk.text,
                id=p.chunk.id,
                metadata={
                    "essay": p.chunk.essay_id,
                    "title": p.essay.title,
                    "author": p.essay.author,
                    "collection": p.essay.collection,
                    "start": p.chunk.start,
                    "end": p.chunk.end,
                    "score": p.score,
                    "rank": p.rank,
                },
            )
            for p in passages
        ]
