"""Phases that exercise Marginalia itself: cold index, re-index, and warm serving of the dev questions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.flops import compute_report, model_shape, padded_lengths
from bench.measure import PROJECT_DIR, cpu_seconds, peak_rss_mb, percentiles, timed
from ingest.embed import Embedder
from ingest.pipeline import Summary
from ingest.settings import Settings


class RecordingEmbedder:
    """Passes calls to the real embedder, adding up their time and keeping each call's texts."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dimensions = inner, inner.name, inner.dimensions
        self.calls: list[list[str]] = []
        self.seconds = 0.0

    def embed(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        began = time.perf_counter()
        out = self.inner.embed(texts, progress=progress)
        self.seconds += time.perf_counter() - began
        self.calls.append(list(texts))
        return out


def token_counts(texts: Sequence[str]) -> list[int]:
    """Tokens per text as the model sees them (truncated at its max_seq_length)."""
    from ingest.embed import model_dir, tokenizer
    from ingest.models import spec

    settings = Settings.from_env()
    source = model_dir(spec(settings.embed_model), settings.model_dir)
    return [len(e.ids) for e in tokenizer(source).encode_batch(list(texts))]


def settings_for(spec: dict) -> Settings:
    """Settings for a phase: its corpus and index folders and, for server runs, the Chroma address."""
    return Settings.from_env(
        corpus_dir=spec.get("corpus"),
        index_dir=spec.get("index"),
        chroma_host=spec.get("chroma_host"),
        chroma_port=spec.get("chroma_port"),
        collection=spec.get("collection"),
    )


def cold_index(spec: dict) -> dict:
    """Index a corpus into an empty index: model load plus the whole ingest, imports excluded.

    The model's one-time conversion for OpenVINO (once per machine, like installing it) is done
    before the clock starts and reported on its own.
    """
    import chromadb  # noqa: F401 - imported before the clock starts, as the baseline's are

    from ingest.embed import converted, model_dir, padded_width, resolve_precision
    from ingest.models import spec as model_spec
    from ingest.pipeline import run_ingest

    settings = settings_for(spec)
    conversion_s = 0.0
    if settings.embed_backend == "openvino":
        began = time.perf_counter()
        # One-time work (conversion, and quantizing for int8) is timed apart from the index.
        model = model_spec(settings.embed_model)
        converted(
            model_dir(model, settings.model_dir),
            settings.model_dir,
            int8=resolve_precision(settings.precision) == "int8",
            prefix=model.short,
        )
        conversion_s = time.perf_counter() - began
    from ingest.embed import load_embedder

    began = time.perf_counter()
    inner = load_embedder(settings)
    load_s = time.perf_counter() - began
    embedder = RecordingEmbedder(inner)
    summary = run_ingest(settings, embedder=embedder)
    seconds = time.perf_counter() - began
    peak = peak_rss_mb()  # read before tokenising for the FLOP count adds its own allocations
    lengths: list[int] = []
    padded: list[int] = []
    for texts in embedder.calls:  # batches form within each call, sorted by token count
        counts = token_counts(texts)
        lengths += counts
        widths = padded_lengths(counts, counts, settings.embed_batch)
        if settings.embed_backend == "openvino":
            widths = [padded_width(n) for n in widths]
        padded += widths
    return {
        "seconds": round(seconds, 2),
        "model_load_seconds": round(load_s, 2),
        "one_time_conversion_seconds": round(conversion_s, 2),
        "runtime": settings.embed_backend,
        "embed_model": settings.embed_model,
        "passages": summary.total_chunks,
        "passages_per_s": round(summary.total_chunks / seconds, 1),
        "embed_seconds": round(embedder.seconds, 2),
        "precision": getattr(inner, "precision", "bf16" if getattr(inner, "bf16", False) else "fp32"),
        "peak_rss_mb": peak,
        "cpu_seconds": cpu_seconds(),
        "rejected": len(summary.rejected),
        "lengths": lengths,
        "padded": padded,
    }


def reindex(spec: dict) -> dict:
    """Run ingest on an existing index with nothing changed, as `python -m ingest` would."""
    from ingest.pipeline import run_ingest

    settings = settings_for(spec)
    began = time.perf_counter()
    summary = run_ingest(settings)
    out = {**_summary(summary, time.perf_counter() - began), "peak_rss_mb": peak_rss_mb()}
    # And as a person runs it: a whole `python -m ingest` process, interpreter start included.
    cmd = [sys.executable, "-m", "ingest", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    began = time.perf_counter()
    subprocess.run([*cmd, "--json"], cwd=PROJECT_DIR, check=True, capture_output=True)
    out["command_seconds"] = round(time.perf_counter() - began, 2)
    return out


def reindex_edits(spec: dict) -> dict:
    """Change an essay (fresh process: the model loads), add one, change it again (model warm)."""
    from ingest.embed import load_embedder
    from ingest.pipeline import run_ingest

    settings = settings_for(spec)
    corpus = settings.corpus_dir
    changed, source, added = corpus / spec["change"], corpus / spec["add_from"], corpus / spec["add_as"]
    out: dict[str, dict] = {}
    for step in ("changed", "added", "changed_again"):
        if step == "added":
            added.parent.mkdir(parents=True, exist_ok=True)
            added.write_bytes(source.read_bytes())
        else:
            with changed.open("a", encoding="utf-8") as f:
                f.write(
                    f"\n\nThe benchmark added this paragraph ({step}), so the essay differs from its index.\n"
                )
        began = time.perf_counter()
        load_embedder(settings)  # cached after the first step
        loaded = time.perf_counter()
        summary = run_ingest(settings)
        out[step] = {
            **_summary(summary, time.perf_counter() - began),
            "model_load_seconds": round(loaded - began, 2),
            "essay": (added if step == "added" else changed).relative_to(corpus).as_posix(),
        }
    result = {**out, "peak_rss_mb": peak_rss_mb(), "cpu_seconds": cpu_seconds()}
    # And as a person runs it: change the essay once more, time a whole `python -m ingest`.
    with changed.open("a", encoding="utf-8") as f:
        f.write("\n\nThe benchmark added this paragraph (command), so the essay differs again.\n")
    cmd = [sys.executable, "-m", "ingest", str(corpus), "--index", str(settings.index_dir), "--json"]
    began = time.perf_counter()
    done = subprocess.run(cmd, cwd=PROJECT_DIR, check=True, capture_output=True, text=True)
    summary_json = json.loads(done.stdout)
    result["changed_command"] = {
        "seconds": round(time.perf_counter() - began, 2),
        "updated": len(summary_json["updated"]),
        "chunks_written": summary_json["chunks"],
    }
    return result


def _summary(summary: Summary, seconds: float) -> dict[str, float | int]:
    return {
        "seconds": round(seconds, 2),
        "added": len(summary.added),
        "updated": len(summary.updated),
        "removed": len(summary.removed),
        "chunks_written": summary.chunks,
    }


def serve(spec: dict) -> dict:
    """Open the assistant, answer the first question (start-up), then time warm passes over all questions."""
    from retrieval.__main__ import ask_all
    from retrieval.assistant import Assistant
    from retrieval.evaluate import score

    gold = [json.loads(line) for line in Path(spec["questions"]).read_text().splitlines() if line.strip()]
    began = time.perf_counter()
    assistant = Assistant(settings_for(spec))
    open_s = time.perf_counter() - began
    assistant.ask(gold[0]["question"])
    first_answer_s = time.time() - spec["launched_at"]
    for q in gold[:3]:  # warm-up: kernels, caches and lazily built answerers
        assistant.ask(q["question"])

    sinks: dict[str, list[float]] = {
        name: [] for name in ("retrieve", "embed", "store", "sentences", "keyword", "mentions")
    }
    searcher = assistant.searcher
    # The search itself (answers call the searcher, not Assistant.retrieve).
    searcher.search = timed(searcher.search, sinks["retrieve"])  # type: ignore[method-assign]
    searcher.embedder.embed = timed(searcher.embedder.embed, sinks["embed"])  # type: ignore[method-assign]
    searcher.store.query = timed(searcher.store.query, sinks["store"])  # type: ignore[method-assign]
    # Sentence vectors read from the catalog (or its cache) and gathered for a question's essays.
    searcher.sentences.among = timed(searcher.sentences.among, sinks["sentences"])  # type: ignore[method-assign]
    searcher.sentences.vectors = timed(searcher.sentences.vectors, sinks["sentences"])  # type: ignore[method-assign]
    searcher.keyword.top = timed(searcher.keyword.top, sinks["keyword"])  # type: ignore[method-assign]
    searcher.mentions.find = timed(searcher.mentions.find, sinks["mentions"])  # type: ignore[method-assign]
    answer_ms: list[float] = []
    rows: list[dict] = []
    slowest: dict[str, float] = {}
    for _ in range(int(spec.get("passes", 3))):
        rows = ask_all(assistant, gold)
        answer_ms.extend(float(r["latency_ms"]) for r in rows)
        for r in rows:
            slowest[r["id"]] = max(slowest.get(r["id"], 0.0), float(r["latency_ms"]))
    metrics = score(gold, {r["id"]: r for r in rows})
    asks = max(1, len(answer_ms))
    return {
        "open_seconds": round(open_s, 2),
        "first_answer_seconds": round(first_answer_s, 2),
        "retrieval_ms": percentiles(sinks["retrieve"]),
        "answer_ms": percentiles(answer_ms),
        # Mean ms per question for each part of retrieval: where the time goes as the index grows.
        "retrieval_parts_ms": {
            **{name: round(sum(values) / asks, 2) for name, values in sinks.items() if name != "retrieve"},
            "rest": round((2 * sum(sinks["retrieve"]) - sum(map(sum, sinks.values()))) / asks, 2),
        },
        # The tail: which questions were slowest to answer, so a p95 can be traced to its cause.
        "slowest_ms": dict(sorted(slowest.items(), key=lambda kv: -kv[1])[:3]),
        "quality": metrics,
        "chunks": assistant.snapshot.size,
        "peak_rss_mb": peak_rss_mb(),
    }


def machine(spec: dict) -> dict:
    """Matmul rates (int8: operations/s) at fp32 and at the precision ours runs; the CPU's features."""
    import torch

    from bench.flops import matmul_rate
    from ingest.embed import cpu_features, cpu_has_bf16, resolve_precision
    from ingest.settings import Settings

    sizes = (1024, 2048) if spec.get("quick") else (2048, 4096)
    repeats = 2 if spec.get("quick") else 5
    # Only the precisions this run computes in: bf16 without native support (or under an
    # instruction-set cap) is emulated so slowly that one 4096^2 product takes minutes.
    wanted = sorted({"fp32", resolve_precision(Settings.from_env().precision)})
    return {
        "matmul_tflops": {p: round(matmul_rate(p, sizes=sizes, repeats=repeats) / 1e12, 4) for p in wanted},
        "cpu_has_bf16": cpu_has_bf16(),
        "cpu_features": sorted(cpu_features()),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "model": model_shape().to_dict(),
    }


def compute(index: dict, machine_info: dict) -> dict:
    """The compute-limit report for a cold index, at the precision the index actually ran."""
    peak = machine_info["matmul_tflops"][index["precision"]] * 1e12
    # The baseline always embeds with the packaged MiniLM, whatever model ours uses.
    report = compute_report(
        model_shape(index.get("embed_model", "all-MiniLM-L6-v2")),
        index["lengths"],
        index["padded"],
        embed_seconds=index["embed_seconds"],
        peak_flops=peak,
    )
    return {"precision": index["precision"], "matmul_tflops": peak / 1e12, **report}
