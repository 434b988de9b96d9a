"""Readers and a writer at once: what a question reads while an ingest rewrites the index.

The app serves every browser session from one shared Assistant, and `python -m ingest` (or
another session's Reindex) writes the index meanwhile. These pin down the races found while
driving eight sessions against one server (bench/load.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, copy_essays

from ingest.catalog import Catalog
from ingest.essay import Chunk, Essay
from ingest.keyword import KeywordIndex
from ingest.lock import index_lock
from ingest.pipeline import catalog_path, run_ingest
from ingest.settings import Settings
from retrieval.assistant import Assistant

FRANCE = "What mistakes did the author attribute to France?"
SAHEL = "sahel/could-malis-coup-have-been-avoided-part-two.txt"
REVENGE = "bacon/04-of-revenge.md"
FRIENDSHIP = "bacon/27-of-friendship.md"


def _essay(text: str) -> tuple[Essay, list[Chunk]]:
    essay = Essay("b", "B", text)
    cut = text.index(" ", len(text) // 2)
    return essay, [Chunk("b", 0, text[:cut], 0, cut), Chunk("b", 1, text[cut:], cut, len(text))]


def test_chunks_pair_each_essay_with_its_own_offsets_while_an_ingest_writes(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    reader, writer = Catalog(path), Catalog(path)
    reader.put(Essay("a", "A", "Alpha text."), [Chunk("a", 0, "Alpha text.", 0, 11)])
    reader.put(*_essay("An old version of the essay, short."))
    new_text = "A preface moves every offset. " + "The essay has been rewritten at length since then. " * 3

    # The writer commits its new version of "b" as the reader starts its next statement: between
    # reading the offsets and reading the texts, when those were two statements.
    wrote = []

    def write_once(sql: str) -> None:
        if not wrote and sql.lstrip().upper().startswith("SELECT E.ID"):
            wrote.append(sql)
            writer.put(*_essay(new_text))

    reader._db.set_trace_callback(write_once)
    read = dict(reader.chunks())
    reader._db.set_trace_callback(None)
    assert wrote, "the write happened while the reader read"
    for essay, chunks in read.items():
        assert all(c.text == essay.text[c.start : c.end] for c in chunks)
        assert chunks[-1].end == len(essay.text), f"{essay.id}: offsets of another version of the text"


def test_a_keyword_index_saved_while_it_loads_is_not_mixed_with_the_one_before(
    tmp_path: Path, monkeypatch
) -> None:
    import bm25s

    folder = tmp_path / "keyword"
    KeywordIndex.build(["a#0", "b#0"], ["revenge is wild justice", "studies serve for delight"], 1).save(
        folder
    )
    newer = KeywordIndex.build(["c#0"], ["a third essay about friendship"], 2)
    load = bm25s.BM25.load

    def load_as_an_ingest_saves(*args, **kwargs):
        newer.save(folder)  # the ingest swaps its index in after the reader has read ids.json
        return load(*args, **kwargs)

    monkeypatch.setattr(bm25s.BM25, "load", load_as_an_ingest_saves)
    assert KeywordIndex.load(folder) is None, "ids of one index, scores of another"
    monkeypatch.setattr(bm25s.BM25, "load", load)
    loaded = KeywordIndex.load(folder)
    assert loaded is not None and loaded.ids == ["c#0"] and loaded.generation == 2


@pytest.fixture
def two_essays(tmp_path: Path, corpus_dir: Path, embedder) -> Settings:
    settings = Settings.from_env(
        env={},
        corpus_dir=copy_essays(corpus_dir, tmp_path / "corpus", (SAHEL, REVENGE)),
        index_dir=tmp_path / "index",
    )
    run_ingest(settings, embedder=embedder)
    return settings


def test_an_answer_is_checked_against_the_index_it_was_found_in(two_essays: Settings, embedder) -> None:
    assistant = Assistant(two_essays, embedder=embedder)
    searcher = assistant.searcher
    search = searcher.search

    def search_then_reindex(*args, **kwargs):
        # Another session reindexes between this question's search and its answer: the quoted
        # essay gains a preface, so every offset moves.
        found = search(*args, **kwargs)
        path = two_essays.corpus_dir / SAHEL
        path.write_text("A preface added meanwhile.\n\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
        run_ingest(two_essays, embedder=embedder)
        assert assistant.refresh()
        return found

    searcher.search = search_then_reindex  # type: ignore[method-assign]
    answer = assistant.ask(FRANCE)
    assert answer.citations and all(c.verified for c in answer.citations)
    for c in answer.citations:  # each quote sits in its card's passage, where the card highlights it
        chunk = c.passage.chunk
        assert chunk.text[c.start - chunk.start : c.end - chunk.start] == c.quote
    assert assistant.essay_text(SAHEL).startswith("A preface added meanwhile.")
    assert all(c.verified for c in assistant.ask(FRANCE).citations), "the next question reads the new index"


def test_while_an_ingest_holds_the_index_questions_are_answered_from_the_last_whole_one(
    two_essays: Settings, embedder
) -> None:
    assistant = Assistant(two_essays, embedder=embedder)
    loaded = assistant.snapshot.generation
    writer = Catalog(catalog_path(two_essays))
    with index_lock(two_essays.index_dir, timeout=1):  # as an ingest holds it while it writes
        writer.set_meta({"probe": "1"})  # and the generation moves on with each essay it stores
        began = time.perf_counter()
        assert not assistant.refresh(), "a reader neither reloads nor waits while an ingest writes"
        assert time.perf_counter() - began < 0.2
        assert assistant.snapshot.generation == loaded
        assert assistant.ask(FRANCE).citations
    assert assistant.refresh(), "once no ingest holds the index, the next question reads the new one"
    assert assistant.snapshot.generation == writer.generation


def test_an_essay_another_process_added_is_answered_with_its_own_vectors(
    two_essays: Settings, embedder, corpus_dir: Path
) -> None:
    assistant = Assistant(two_essays, embedder=embedder)
    assert assistant.ask(FRANCE).citations  # this process has the store open, and in use
    copy_essays(corpus_dir, two_essays.corpus_dir, (FRIENDSHIP,))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARGINALIA_")}
    command = [
        sys.executable,
        "-m",
        "ingest",
        str(two_essays.corpus_dir),
        "--index",
        str(two_essays.index_dir),
    ]
    subprocess.run(command, cwd=PROJECT_DIR, env=env, check=True, capture_output=True, timeout=300)
    assert assistant.refresh()
    # Its sentences' vectors are read from the store: from a stale one, "Error finding id".
    answer = assistant.ask("What does Bacon say about friendship?")
    found = [p for p in answer.passages if p.chunk.essay_id == FRIENDSHIP]
    assert found and all(s.closeness > 0 for p in found for s in p.sentences)


def test_sessions_asking_at_once_while_the_index_reloads_each_get_their_own_answer(
    two_essays: Settings, embedder
) -> None:
    assistant = Assistant(two_essays, embedder=embedder)
    questions = [FRANCE, "How does Bacon characterize revenge?"] * 4
    expected = {q: assistant.ask(q).text for q in questions}
    writer = Catalog(catalog_path(two_essays))
    got: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def session(n: int) -> None:
        try:
            for _ in range(5):
                assistant.refresh()
                answer = assistant.ask(questions[n])
                assert all(c.verified for c in answer.citations)
                got.setdefault(n, []).append(answer.text)
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            errors.append(err)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(len(questions))]
    for t in threads:
        t.start()
    for _ in range(5):  # the catalog moves on meanwhile: every refresh reloads
        writer.set_meta({"probe": str(time.monotonic())})
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert {n: set(texts) for n, texts in got.items()} == {n: {expected[q]} for n, q in enumerate(questions)}


def test_questions_embedded_from_many_threads_at_once_get_their_own_vectors(embedder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    questions = [f"What does essay number {n} say about {w}?" for n, w in enumerate("abcdefghijklmnop")]
    alone = np.stack([embedder.embed([q])[0] for q in questions])
    with ThreadPoolExecutor(8) as pool:  # as eight sessions asking at once
        together = np.stack(list(pool.map(lambda q: embedder.embed([q])[0], questions * 4)))
    assert np.allclose(together, np.concatenate([alone] * 4), atol=1e-5)
