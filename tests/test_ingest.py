"""The ingest pipeline with the real model and real Chroma: incremental, safe to kill, honest summaries."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_DIR, copy_essays

from ingest import pipeline
from ingest.catalog import Catalog
from ingest.chunk import chunk_essay
from ingest.errors import IndexLocked, StoreUnavailable
from ingest.keyword import KeywordIndex
from ingest.lock import index_lock
from ingest.pipeline import catalog_path, run_ingest
from ingest.sentences import essay_sentence_ids, sentence_units
from ingest.settings import Settings
from ingest.store import VectorStore

FEW = (
    "bacon/50-of-studies.md",
    "bacon/04-of-revenge.md",
    "sahel/could-malis-coup-have-been-avoided-part-two.txt",
)


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings.from_env(env={}, corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", **kw)


def _state(settings: Settings) -> tuple[list[str], list[str]]:
    """(catalog chunk and sentence ids, stored ids), sorted: equal lists mean the index is consistent."""
    catalog = Catalog(catalog_path(settings))
    ids = [c.id for _, chunks in catalog.chunks() for c in chunks]
    # Every sentence of every chunk has its vector too, and nothing else does.
    ids += [
        f"{c.id}/{n}"
        for essay, chunks in catalog.chunks()
        for c in chunks
        for n in range(len(sentence_units(essay.text, c)))
    ]
    stored = catalog.sentence_vectors(list(catalog.records()))
    sentences = [i for eid, v in stored.items() for i in essay_sentence_ids(eid, v.counts.tolist())]
    assert all(len(v.matrix) == int(v.counts.sum()) for v in stored.values())
    catalog.close()
    return sorted(ids), sorted(VectorStore(settings).ids() | set(sentences))


def _keyword_as_built_afresh(settings: Settings) -> None:
    """The saved keyword index holds what a build from the catalog's texts alone would."""
    catalog = Catalog(catalog_path(settings))
    ids = [c.id for _, chunks in catalog.chunks() for c in chunks]
    texts = [pipeline.keyword_text(c, essay) for essay, chunks in catalog.chunks() for c in chunks]
    catalog.close()
    fresh = KeywordIndex.build(ids, texts, generation=0)
    saved = KeywordIndex.load(pipeline.keyword_path(settings))
    assert saved is not None and saved.ids == fresh.ids
    assert saved.names == fresh.names and saved.df == fresh.df
    assert saved.names  # the essays do name people and places


def test_add_modify_delete_rename_cycle(tmp_path: Path, corpus_dir: Path, embedder) -> None:
    settings = _settings(tmp_path)
    corpus = copy_essays(corpus_dir, settings.corpus_dir, FEW)
    first = run_ingest(settings, embedder=embedder)
    assert sorted(first.added) == sorted(FEW) and not first.rejected
    ids, vectors = _state(settings)
    assert ids == vectors and first.total_chunks == first.chunks
    assert len(ids) == first.chunks + first.sentences and first.sentences > first.chunks
    _keyword_as_built_afresh(settings)  # tokens and names made while writing

    again = run_ingest(settings, embedder=embedder)
    assert sorted(again.unchanged) == sorted(FEW) and again.chunks == 0 and not again.changed

    studies = corpus / "bacon/50-of-studies.md"
    studies.write_text(studies.read_text().replace("STUDIES serve for delight", "STUDIES serve for joy"))
    (corpus / "bacon/04-of-revenge.md").unlink()
    (corpus / "sahel" / "could-malis-coup-have-been-avoided-part-two.txt").rename(
        corpus / "sahel" / "renamed.txt"
    )
    third = run_ingest(settings, embedder=embedder)
    assert third.updated == ["bacon/50-of-studies.md"]
    assert third.added == ["sahel/renamed.txt"]
    assert sorted(third.removed) == [
        "bacon/04-of-revenge.md",
        "sahel/could-malis-coup-have-been-avoided-part-two.txt",
    ]
    ids, vectors = _state(settings)
    assert ids == vectors
    assert not any(i.startswith(("bacon/04", "sahel/could")) for i in ids)
    _keyword_as_built_afresh(settings)  # names counted again over every chunk
    catalog = Catalog(catalog_path(settings))
    assert "STUDIES serve for joy" in catalog.essay("bacon/50-of-studies.md").text
    catalog.close()


def test_unchanged_rerun_never_loads_the_model(
    tmp_path: Path, corpus_dir: Path, embedder, monkeypatch
) -> None:
    settings = _settings(tmp_path)
    copy_essays(corpus_dir, settings.corpus_dir, FEW[:1])
    run_ingest(settings, embedder=embedder)

    def no_model(*a: object, **k: object) -> None:
        raise AssertionError("the model was loaded for an unchanged corpus")

    def no_store(*a: object, **k: object) -> None:
        raise AssertionError("the vector store was opened for an unchanged corpus")

    monkeypatch.setattr(pipeline, "load_embedder", no_model)
    monkeypatch.setattr(pipeline, "VectorStore", no_store)
    summary = run_ingest(settings)
    assert summary.unchanged == list(FEW[:1]) and summary.total_chunks > 0 and not summary.changed


class _Recording:
    """The real model, noting which thread asked for which texts (or failing, when told to)."""

    name, dimensions = "all-MiniLM-L6-v2", 384

    def __init__(self, inner, *, fail: bool = False) -> None:
        self.inner, self.fail = inner, fail
        self.calls: list[tuple[str, list[str]]] = []

    def embed(self, texts, *, progress=None):
        import threading

        self.calls.append((threading.current_thread().name, list(texts)))
        if self.fail:
            raise RuntimeError("model failed on purpose")
        return self.inner.embed(texts, progress=progress)


def test_a_small_change_is_embedded_while_the_store_opens(tmp_path: Path, corpus_dir: Path, embedder) -> None:
    settings = _settings(tmp_path)
    corpus = copy_essays(corpus_dir, settings.corpus_dir, FEW)
    run_ingest(settings, embedder=embedder)
    studies = corpus / "bacon/50-of-studies.md"
    studies.write_text(studies.read_text() + "\n\nA paragraph added so the essay changes.\n")

    recording = _Recording(embedder)
    summary = run_ingest(settings, embedder=recording)
    assert summary.updated == ["bacon/50-of-studies.md"] and summary.chunks > 0
    [(thread, texts)] = recording.calls  # one call, made ahead, on the prefetch thread
    assert thread.startswith("prefetch") and len(texts) == summary.chunks + summary.sentences
    assert summary.sentences > summary.chunks
    ids, stored = _state(settings)
    assert ids == stored
    # What the store holds for the changed essay is what the model gives for its texts now:
    # its passages (with the title) first, then each sentence alone.
    store = VectorStore(settings)
    got = store.collection.get(where={"essay": "bacon/50-of-studies.md"}, include=["embeddings"])
    order = np.argsort([int(i.rpartition("#")[2]) for i in got["ids"]])
    passages = embedder.embed(texts[: summary.chunks])
    np.testing.assert_allclose(np.asarray(got["embeddings"])[order], passages, atol=1e-5)
    catalog = Catalog(catalog_path(settings))
    sentences = catalog.sentence_vectors(["bacon/50-of-studies.md"])["bacon/50-of-studies.md"]
    catalog.close()
    assert len(sentences.matrix) == summary.sentences
    by_id = dict(
        zip(
            essay_sentence_ids("bacon/50-of-studies.md", sentences.counts.tolist()),
            sentences.matrix,
            strict=True,
        )
    )
    essay = Catalog(catalog_path(settings)).essay("bacon/50-of-studies.md")
    assert essay is not None
    expected = [
        (f"{c.id}/{n}", essay.text[s:e])
        for c in chunk_essay(essay)
        for n, (s, e) in enumerate(sentence_units(essay.text, c))
    ]
    assert [t for _, t in expected] == texts[summary.chunks :]
    np.testing.assert_allclose(
        np.stack([by_id[i] for i, _ in expected]), embedder.embed(texts[summary.chunks :]), atol=1e-5
    )


def test_a_failed_prefetch_stops_the_run_and_a_rerun_redoes_the_essay(
    tmp_path: Path, corpus_dir: Path, embedder
) -> None:
    settings = _settings(tmp_path)
    corpus = copy_essays(corpus_dir, settings.corpus_dir, FEW[:2])
    run_ingest(settings, embedder=embedder)
    clean = _state(settings)
    revenge = corpus / "bacon/04-of-revenge.md"
    revenge.write_text(revenge.read_text() + "\n\nA paragraph added so the essay changes.\n")
    with pytest.raises(RuntimeError, match="on purpose"):
        run_ingest(settings, embedder=_Recording(embedder, fail=True))
    assert _state(settings) == clean  # nothing written for the essay
    again = run_ingest(settings, embedder=embedder)
    assert again.updated == ["bacon/04-of-revenge.md"]
    ids, stored = _state(settings)
    assert ids == stored


def test_a_deleted_store_is_noticed_and_rebuilt(tmp_path: Path, corpus_dir: Path, embedder) -> None:
    settings = _settings(tmp_path)
    copy_essays(corpus_dir, settings.corpus_dir, FEW[:2])
    first = run_ingest(settings, embedder=embedder)
    shutil.rmtree(settings.index_dir / "chroma")
    # In a new process, as a user would: chromadb keeps a deleted store's files open in this one.
    again = _cli(settings)
    assert sorted(again["added"]) == sorted(FEW[:2]) and again["chunks"] == first.chunks
    assert again["rebuilt"]


def _cli(settings: Settings) -> dict:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    cmd = [sys.executable, "-m", "ingest", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    done = subprocess.run([*cmd, "--json"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_model_or_chunker_change_rebuilds(tmp_path: Path, corpus_dir: Path, embedder, monkeypatch) -> None:
    settings = _settings(tmp_path)
    copy_essays(corpus_dir, settings.corpus_dir, FEW[:2])
    before = run_ingest(settings, embedder=embedder)
    monkeypatch.setattr(pipeline, "CHUNKER_VERSION", "blocks-test")
    after = run_ingest(settings, embedder=embedder)
    assert (
        after.rebuilt and sorted(after.added) == sorted(FEW[:2]) and after.total_chunks == before.total_chunks
    )
    assert VectorStore(settings).version()["chunker"] == "blocks-test"
    ids, vectors = _state(settings)
    assert ids == vectors


def test_leftovers_of_an_interrupted_write_are_repaired(tmp_path: Path, corpus_dir: Path, embedder) -> None:
    settings = _settings(tmp_path)
    copy_essays(corpus_dir, settings.corpus_dir, FEW[:2])
    run_ingest(settings, embedder=embedder)
    clean = _state(settings)
    # As if killed after writing vectors but before the catalog row: a stray vector and a lost row.
    _as_if_killed_after_a_vector(settings)
    with sqlite3.connect(catalog_path(settings)) as db:
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("DELETE FROM essays WHERE id = ?", (FEW[0],))
    summary = run_ingest(settings, embedder=embedder)
    assert summary.added == [FEW[0]]
    assert _state(settings) == clean


def test_stray_vectors_of_a_killed_run_are_removed(tmp_path: Path, corpus_dir: Path, embedder) -> None:
    settings = _settings(tmp_path)
    copy_essays(corpus_dir, settings.corpus_dir, FEW[:1])
    run_ingest(settings, embedder=embedder)
    clean = _state(settings)
    _as_if_killed_after_a_vector(settings)
    summary = run_ingest(settings, embedder=embedder)
    assert not summary.changed and _state(settings) == clean


def _as_if_killed_after_a_vector(settings: Settings) -> None:
    """What a run killed just after writing a vector leaves: its "finished" mark cleared (every
    writing run clears it first) and a vector the catalog does not know."""
    catalog = Catalog(catalog_path(settings))
    catalog.set_meta({"finished": ""}, bump=False)
    catalog.close()
    VectorStore(settings).add(
        ["ghost.md#0"], np.ones((1, 384), dtype=np.float32) / np.sqrt(384), [{"essay": "ghost.md"}]
    )


def test_killed_ingest_converges_to_a_clean_build(tmp_path: Path, corpus_dir: Path, embedder) -> None:
    # Groups of chunks are recorded whole, so the corpus spans two: one-chunk notes, each its own
    # words, short so that the real model embeds them quickly.
    corpus = tmp_path / "corpus"
    words = (corpus_dir / "bacon" / "01-of-truth.md").read_text(encoding="utf-8").split()
    essays = _notes(corpus, pipeline._GROUP + pipeline._GROUP // 3, words)
    killed = Settings.from_env(env={}, corpus_dir=corpus, index_dir=tmp_path / "killed")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    cmd = [sys.executable, "-m", "ingest", str(corpus), "--index", str(killed.index_dir), "--json"]
    proc = subprocess.Popen(cmd, cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if catalog_path(killed).exists() and _essays_in(killed) > 0:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _essays_in(killed)
    assert 0 < partial < len(essays)

    resumed = subprocess.run(cmd, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert len(summary["added"]) == len(essays) - partial and len(summary["unchanged"]) == partial

    clean = Settings.from_env(env={}, corpus_dir=corpus, index_dir=tmp_path / "clean")
    run_ingest(clean, embedder=embedder)
    assert _state(killed) == _state(clean)


def test_a_failed_write_stops_the_run_after_the_groups_before_it(
    tmp_path: Path, corpus_dir: Path, embedder, monkeypatch
) -> None:
    # The store fails on the second group's vectors (as a server going away would), which are
    # written in a thread while the run goes on: the run stops with that error, the first group
    # stays recorded, and a rerun indexes the rest and matches a clean build.
    settings = _settings(tmp_path)
    words = (corpus_dir / "bacon" / "01-of-truth.md").read_text(encoding="utf-8").split()
    essays = _notes(settings.corpus_dir, pipeline._GROUP + 40, words)
    real_add, calls = VectorStore.add, []

    def failing_add(self, ids, vectors, metadatas):
        calls.append(len(ids))
        if len(calls) == 2:
            raise StoreUnavailable("the server went away (on purpose)")
        real_add(self, ids, vectors, metadatas)

    monkeypatch.setattr(VectorStore, "add", failing_add)
    with pytest.raises(StoreUnavailable, match="on purpose"):
        run_ingest(settings, embedder=embedder)
    monkeypatch.setattr(VectorStore, "add", real_add)
    recorded = _essays_in(settings)
    assert recorded == calls[0] and 0 < recorded < len(essays)  # one chunk an essay

    again = run_ingest(settings, embedder=embedder)
    assert len(again.added) == len(essays) - recorded and len(again.unchanged) == recorded
    clean = _settings(tmp_path / "clean")
    shutil.copytree(settings.corpus_dir, clean.corpus_dir)
    run_ingest(clean, embedder=embedder)
    assert _state(settings) == _state(clean)


def test_progress_reads_then_embeds_and_ends_exact(tmp_path: Path, corpus_dir: Path, embedder) -> None:
    # Essays are read as they are embedded: the scan is reported until the first essay is handed
    # on, then the texts to embed are estimated and, once every file is read, exact.
    settings = _settings(tmp_path)
    words = (corpus_dir / "bacon" / "01-of-truth.md").read_text(encoding="utf-8").split()
    _notes(settings.corpus_dir, pipeline._GROUP + 300, words)
    events: list[tuple[str, int, int]] = []
    summary = run_ingest(settings, embedder=embedder, progress=lambda *e: events.append(e))
    stages = [stage for stage, _, _ in events]
    first_embed = stages.index("embed")
    assert stages[0] == "scan" and "scan" not in stages[first_embed:]
    assert stages[-1] == "keyword" and events[-1][1:] == (1, 1)
    embeds = [(done, total) for stage, done, total in events if stage == "embed"]
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(embeds))
    assert embeds[-1] == (summary.chunks + summary.sentences,) * 2
    assert len({total for _, total in embeds}) > 1  # estimated first, exact at the end


def _notes(folder: Path, count: int, vocabulary: list[str]) -> list[str]:
    """`count` one-chunk essays of one to three sentences of words drawn from `vocabulary`; their paths."""
    rng = random.Random(5)
    words = sorted({w.lower() for w in vocabulary if w.isalpha()})
    folder.mkdir(parents=True)
    paths = []
    for n in range(count):
        text = " ".join(
            " ".join(rng.choice(words) for _ in range(9)).capitalize() + "." for _ in range(rng.randint(1, 3))
        )
        (folder / f"note-{n:04d}.md").write_text(f"# Note {n}\n\n{text}\n", encoding="utf-8")
        paths.append(f"note-{n:04d}.md")
    return paths


def _essays_in(settings: Settings) -> int:
    try:
        with sqlite3.connect(catalog_path(settings), timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM essays").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_second_ingest_waits_then_stops_with_a_clear_message(tmp_path: Path, corpus_dir: Path) -> None:
    settings = _settings(tmp_path, lock_timeout=0.3)
    copy_essays(corpus_dir, settings.corpus_dir, FEW[:1])
    with index_lock(settings.index_dir, timeout=1), pytest.raises(IndexLocked, match="another ingest"):
        run_ingest(settings)


def test_messy_files_are_indexed_or_rejected_with_a_reason(tmp_path: Path, messy_corpus, embedder) -> None:
    folder, expected = messy_corpus
    settings = Settings.from_env(env={}, corpus_dir=folder, index_dir=tmp_path / "index")
    summary = run_ingest(settings, embedder=embedder)
    rejected = {r["path"]: r["reason"] for r in summary.rejected}
    for name, exp in expected.items():
        if exp.handling in {"reject", "skip"}:
            assert name in rejected and rejected[name] and "\n" not in rejected[name], name
        else:
            assert name in summary.added, name
    ids, vectors = _state(settings)
    assert (
        ids == vectors and len(ids) == summary.total_chunks + summary.sentences and summary.total_chunks > 0
    )


def test_cli_json_summary_and_exit_status(tmp_path: Path, corpus_dir: Path) -> None:
    corpus = copy_essays(corpus_dir, tmp_path / "corpus", FEW[:1])
    (corpus / "notes.odt").write_bytes(b"PK\x03\x04")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    cmd = [sys.executable, "-m", "ingest", str(corpus), "--index", str(tmp_path / "index"), "--json"]
    done = subprocess.run(cmd, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert {"added", "updated", "removed", "unchanged", "rejected", "chunks"} <= set(summary)
    assert summary["added"] == list(FEW[:1]) and summary["rejected"][0]["path"] == "notes.odt"
    assert "not a supported format" in summary["rejected"][0]["reason"]
    missing = subprocess.run(
        [sys.executable, "-m", "ingest", str(tmp_path / "nope"), "--index", str(tmp_path / "i2")],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        missing.returncode == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_chroma(folder: Path, port: int) -> subprocess.Popen:
    """A real `chroma run` server on 127.0.0.1:port keeping its data in folder, once it answers."""
    import urllib.request

    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    proc = subprocess.Popen(
        [chroma, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("chroma server did not start")


@pytest.fixture
def chroma_server(tmp_path: Path):
    """A real `chroma run` server on 127.0.0.1, stopped after the test."""
    port = _free_port()
    proc = _start_chroma(tmp_path / "server", port)
    yield port
    proc.terminate()
    proc.wait(timeout=20)


@pytest.mark.server
def test_a_server_killed_before_saving_its_index_keeps_every_vector(
    tmp_path: Path, corpus_dir: Path, embedder
) -> None:
    """A server saves its HNSW index every _SERVER_SYNC vectors, not Chroma's 1,000; what it holds
    between saves is in its log. Killed with fewer written than that, it must still have them all."""
    from ingest.store import _SERVER_SYNC

    port = _free_port()
    corpus = copy_essays(corpus_dir, tmp_path / "corpus", FEW)
    words = (corpus_dir / "bacon" / "01-of-truth.md").read_text(encoding="utf-8").split()
    _notes(corpus / "notes", 1_200, words)
    settings = _settings(tmp_path, chroma_host="127.0.0.1", chroma_port=port)
    proc = _start_chroma(tmp_path / "server", port)
    try:
        summary = run_ingest(settings, embedder=embedder)
        assert 1_000 < summary.total_chunks < _SERVER_SYNC  # past Chroma's own save point, short of ours
        store = VectorStore(settings)
        assert store.collection.configuration["hnsw"]["sync_threshold"] == _SERVER_SYNC
        before = _state(settings)
        proc.kill()  # no chance to save anything
        proc.wait(timeout=20)
        proc = _start_chroma(tmp_path / "server", port)
        assert _state(settings) == before and before[0] == before[1]
        assert run_ingest(settings, embedder=embedder).changed is False
        from retrieval.assistant import Assistant

        top = Assistant(settings, embedder=embedder).retrieve("Revenge is a kind of wild justice", k=1)
        assert top[0].chunk.essay_id == FEW[1]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.server
def test_chroma_server_behaves_like_the_embedded_store(
    tmp_path: Path, corpus_dir: Path, embedder, chroma_server
) -> None:
    corpus = copy_essays(corpus_dir, tmp_path / "corpus", FEW[:2])
    served = Settings.from_env(
        env={},
        corpus_dir=corpus,
        index_dir=tmp_path / "served",
        chroma_host="127.0.0.1",
        chroma_port=chroma_server,
    )
    local = Settings.from_env(env={}, corpus_dir=corpus, index_dir=tmp_path / "local")
    a, b = run_ingest(served, embedder=embedder), run_ingest(local, embedder=embedder)
    assert a.added == b.added and a.total_chunks == b.total_chunks
    assert _state(served) == _state(local)
    (corpus / FEW[0]).unlink()
    assert run_ingest(served, embedder=embedder).removed == [FEW[0]]
    ids, vectors = _state(served)
    assert ids == vectors

    from retrieval.assistant import Assistant

    top = Assistant(served, embedder=embedder).retrieve("Revenge is a kind of wild justice", k=1)
    assert top[0].chunk.essay_id == FEW[1]


def test_unreachable_server_is_one_clear_line(tmp_path: Path) -> None:
    port = _free_port()
    settings = _settings(tmp_path, chroma_host="127.0.0.1", chroma_port=port)
    settings.corpus_dir.mkdir(parents=True)
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}") as info:
        run_ingest(settings)
    assert "\n" not in str(info.value)
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_DIR),
        "MARGINALIA_CHROMA_HOST": "127.0.0.1",
        "MARGINALIA_CHROMA_PORT": str(port),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ingest", str(settings.corpus_dir), "--index", str(settings.index_dir)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in done.stderr


# --- an empty index: no essays, only rejected files, every essay removed (issue 17) -----------------


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.server)])
def store_options(request: pytest.FixtureRequest) -> dict[str, object]:
    """Settings for the embedded store, or for a real `chroma run` server."""
    if request.param == "embedded":
        return {}
    return {"chroma_host": "127.0.0.1", "chroma_port": request.getfixturevalue("chroma_server")}


def _cli_with(settings: Settings) -> dict:
    """The JSON summary of `python -m ingest` on these settings (exit status 0 asserted)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    cmd = [sys.executable, "-m", "ingest", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    if settings.chroma_host:
        cmd += ["--chroma-host", settings.chroma_host, "--chroma-port", str(settings.chroma_port)]
    done = subprocess.run([*cmd, "--json"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def _assert_empty_and_answering(settings: Settings, embedder) -> None:
    """The index holds nothing, opens, and refuses every question with the fixed phrase."""
    from ingest.keyword import KeywordIndex
    from ingest.pipeline import keyword_path
    from retrieval.assistant import Assistant
    from retrieval.types import CANNOT_ANSWER

    assert _state(settings) == ([], [])
    keyword = KeywordIndex.load(keyword_path(settings))
    assert keyword is not None and keyword.ids == [] and len(keyword.scores("revenge")) == 0
    assistant = Assistant(settings, embedder=embedder)
    assert assistant.stats().essays == 0 and assistant.stats().chunks == 0
    for question in ("What is revenge?", "What mistakes did the author attribute to France?"):
        answer = assistant.ask(question)
        assert answer.refused and answer.text == CANNOT_ANSWER and not answer.passages


def test_an_empty_folder_makes_an_empty_working_index(tmp_path: Path, store_options, embedder) -> None:
    settings = _settings(tmp_path, **store_options)
    settings.corpus_dir.mkdir(parents=True)
    summary = _cli_with(settings)
    assert summary["added"] == [] and summary["rejected"] == [] and summary["total_chunks"] == 0
    _assert_empty_and_answering(settings, embedder)
    assert _cli_with(settings)["unchanged"] == []  # a re-run is as quiet


def test_a_folder_of_rejected_files_lists_them_and_indexes_nothing(
    tmp_path: Path, store_options, embedder
) -> None:
    settings = _settings(tmp_path, **store_options)
    settings.corpus_dir.mkdir(parents=True)
    (settings.corpus_dir / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    summary = _cli_with(settings)
    assert summary["added"] == [] and summary["chunks"] == 0
    assert summary["rejected"] == [{"path": "photo.txt", "reason": "not a text file (binary data)"}]
    _assert_empty_and_answering(settings, embedder)


def test_removing_every_essay_leaves_an_empty_working_index(
    tmp_path: Path, corpus_dir: Path, store_options, embedder
) -> None:
    from retrieval.assistant import Assistant

    settings = _settings(tmp_path, **store_options)
    copy_essays(corpus_dir, settings.corpus_dir, FEW[:2])
    run_ingest(settings, embedder=embedder)
    before = Assistant(settings, embedder=embedder)
    assert before.retrieve("Revenge is a kind of wild justice", k=1)
    for rel in FEW[:2]:
        (settings.corpus_dir / rel).unlink()
    summary = _cli_with(settings)
    assert sorted(summary["removed"]) == sorted(FEW[:2]) and summary["total_chunks"] == 0
    assert before.refresh() and before.retrieve("Revenge is a kind of wild justice") == []
    _assert_empty_and_answering(settings, embedder)


def test_a_server_run_that_changes_nothing_compares_totals_not_every_sentence(
    tmp_path: Path, corpus_dir: Path, embedder, chroma_server, monkeypatch
) -> None:
    corpus = copy_essays(corpus_dir, tmp_path / "corpus", FEW[:2])
    served = Settings.from_env(
        env={},
        corpus_dir=corpus,
        index_dir=tmp_path / "served",
        chroma_host="127.0.0.1",
        chroma_port=chroma_server,
    )
    first = run_ingest(served, embedder=embedder)
    catalog = Catalog(catalog_path(served))
    assert catalog.sentence_total() == first.sentences > 0
    catalog.close()

    spans: list[str] = []
    real = pipeline.sentence_units
    monkeypatch.setattr(pipeline, "sentence_units", lambda text, c: spans.append(c.id) or real(text, c))
    again = run_ingest(served, embedder=embedder)
    assert not again.changed and spans == []  # the totals agreed: no chunk's sentences recomputed

    # A stray chunk vector (a killed run) makes the totals disagree: the careful path removes it,
    # and still recomputes no sentences (the catalog writes them with their essay).
    _as_if_killed_after_a_vector(served)
    repaired = run_ingest(served, embedder=embedder)
    ids, vectors = _state(served)
    assert not repaired.changed and spans == [] and ids == vectors
    assert "ghost.md#0" not in VectorStore(served).ids()


def test_an_index_with_sentence_vectors_in_chroma_is_rebuilt(
    tmp_path: Path, corpus_dir: Path, embedder
) -> None:
    """Before 2026-12-07 sentence vectors were a second Chroma collection: such an index is made
    again (its version says so) and the old collection goes."""
    settings = _settings(tmp_path)
    copy_essays(corpus_dir, settings.corpus_dir, FEW[:2])
    run_ingest(settings, embedder=embedder)
    clean = _state(settings)
    store = VectorStore(settings)
    old = store.client.create_collection(f"{settings.collection}-sentences", embedding_function=None)
    old.add(ids=["bacon/50-of-studies.md#0/0"], embeddings=np.ones((1, 384), dtype=np.float32))
    store.collection.modify(metadata={**store.version(), "sentences": "plain-v1"})
    catalog = Catalog(catalog_path(settings))
    catalog.set_meta({"sentences": "plain-v1"})
    catalog.close()

    summary = run_ingest(settings, embedder=embedder)
    assert summary.rebuilt and sorted(summary.added) == sorted(FEW[:2])
    assert _state(settings) == clean
    names = {c.name for c in VectorStore(settings).client.list_collections()}
    assert names == {settings.collection}
