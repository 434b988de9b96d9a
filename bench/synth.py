"""A larger corpus, made deterministically by recombining paragraphs of the shipped essays.

Embedding 100k chunks with the real model would take about half an hour on two cores, so scale
runs embed each shipped chunk once with the real model and give a recombined chunk the vector
of the paragraph it repeats; any chunk that is not such a paragraph is embedded for real.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ingest.chunk import MAX_CHARS, MIN_CHARS, blocks, chunk_essay, embedding_text
from ingest.essay import Chunk, Essay
from ingest.load import corpus_files, load_essay

UNITS_PER_ESSAY = 20
FOLDER = "miscellany"  # also the synthetic essays' collection
AUTHORS = 40


def shipped_chunks(corpus: Path) -> list[tuple[Essay, Chunk]]:
    """Every chunk of the shipped corpus with its essay, as ingest cuts them."""
    out: list[tuple[Essay, Chunk]] = []
    for path in corpus_files(corpus):
        try:
            essay = load_essay(path, corpus, max_bytes=5 * 1024 * 1024)
        except Exception:  # noqa: BLE001 - files ingest rejects (SOURCES.md, manifest) are not essays
            continue
        out.extend((essay, c) for c in chunk_essay(essay))
    return out


def unit_pool(chunks: Sequence[tuple[Essay, Chunk]]) -> list[str]:
    """Chunks that are one whole prose paragraph, so they stay one chunk wherever they are placed."""
    pool = []
    for _, c in chunks:
        if MIN_CHARS <= len(c.text) <= MAX_CHARS and [b.kind for b in blocks(c.text)] == ["prose"]:
            pool.append(c.text)
    return sorted(set(pool))


def synthesise(corpus: Path, out: Path, target_chunks: int, *, seed: int = 7) -> dict[str, int]:
    """Copy the shipped corpus to `out` and add essays of recombined paragraphs up to ~target_chunks."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(corpus, out)
    chunks = shipped_chunks(corpus)
    pool = unit_pool(chunks)
    rng = random.Random(seed)
    extra = max(0, target_chunks - len(chunks))
    (out / FOLDER).mkdir(exist_ok=True)
    essays = 0
    for lo in range(0, extra, UNITS_PER_ESSAY):
        units = [pool[i] for i in rng.sample(range(len(pool)), min(UNITS_PER_ESSAY, extra - lo))]
        front = f'---\ntitle: "Miscellany {essays:05d}"\nauthor: "Compiler {essays % AUTHORS}"\n---\n'
        (out / FOLDER / f"{essays:05d}.md").write_text(front + "\n\n".join(units) + "\n", encoding="utf-8")
        essays += 1
    return {
        "shipped_chunks": len(chunks),
        "pool": len(pool),
        "synthetic_essays": essays,
        "target": target_chunks,
    }


def make_vectors(spec: dict) -> dict:
    """Phase: embed every shipped chunk once with the real model and save the vectors by text."""
    from ingest.embed import load_embedder

    chunks = shipped_chunks(Path(spec["corpus"]))
    texts = [embedding_text(c, essay.title) for essay, c in chunks]
    embedder = load_embedder()
    began = time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - began
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "vectors.npy", vectors)
    (out / "texts.json").write_text(json.dumps({"texts": texts, "bodies": [c.text for _, c in chunks]}))
    return {
        "passages": len(texts),
        "embed_seconds": round(seconds, 2),
        "passages_per_s": round(len(texts) / seconds, 1),
    }


class ReusingEmbedder:
    """Looks vectors up by exact embedding text, then by paragraph; embeds the rest with the real model."""

    def __init__(self, folder: Path) -> None:
        from ingest.models import MINILM

        # The vectors are this model's, so the index version stays the same.
        self.name, self.dimensions = MINILM.name, MINILM.dimensions
        self.vectors = np.load(folder / "vectors.npy")
        keys = json.loads((folder / "texts.json").read_text())
        self.by_text = {t: i for i, t in enumerate(keys["texts"])}
        self.by_body = {b: i for i, b in enumerate(keys["bodies"])}
        self.made: dict[str, np.ndarray] = {}  # texts embedded during the run
        self.reused = self.embedded = 0
        self.embed_seconds = 0.0

    def embed(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.vectors.shape[1]), dtype=np.float32)
        missing = []
        for i, text in enumerate(texts):
            row = self.by_text.get(text)
            if row is None:
                row = self.by_body.get(text.split("\n", 1)[-1])
            if row is not None:
                out[i] = self.vectors[row]
            elif text in self.made:
                out[i] = self.made[text]
            else:
                missing.append(i)
        if missing:
            from ingest.embed import load_embedder

            began = time.perf_counter()
            unique = list(dict.fromkeys(texts[i] for i in missing))
            # Recombined chunks repeat the essays' sentences: each distinct one is embedded once.
            self.made.update(zip(unique, load_embedder().embed(unique), strict=True))
            out[missing] = np.stack([self.made[texts[i]] for i in missing])
            self.embed_seconds += time.perf_counter() - began
        self.reused += len(texts) - len(missing)
        self.embedded += len(missing)
        if progress:
            progress(len(texts))
        return out


def index_reusing(spec: dict) -> dict:
    """Phase: cold-index a synthetic corpus with reused vectors; the time left is everything but the model."""
    from bench.measure import cpu_seconds, peak_rss_mb
    from bench.ours import settings_for
    from ingest.pipeline import run_ingest

    embedder = ReusingEmbedder(Path(spec["vectors"]))
    began = time.perf_counter()
    summary = run_ingest(settings_for(spec), embedder=embedder)
    seconds = time.perf_counter() - began
    return {
        "seconds": round(seconds, 2),
        "passages": summary.total_chunks,
        "reused": embedder.reused,
        "embedded": embedder.embedded,
        "embed_seconds": round(embedder.embed_seconds, 2),
        "passages_per_s_without_model": round(
            summary.total_chunks / max(1e-9, seconds - embedder.embed_seconds), 1
        ),
        "peak_rss_mb": peak_rss_mb(),
        "cpu_seconds": cpu_seconds(),
    }
