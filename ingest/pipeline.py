"""The ingest run: bring the index in step with the corpus folder, incrementally and safely.

Order of writes makes a killed run harmless: an essay's vectors are written first and its
catalog row last, so a re-run sees the essay as not yet indexed and redoes it; stray vectors
left by a kill are found by comparing counts and removed.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ingest.catalog import Catalog, SentenceVectors
from ingest.chunk import CHUNKER_VERSION, chunk_essay, embedding_text
from ingest.embed import Embedder, load_embedder
from ingest.errors import MarginaliaError, RejectedFile
from ingest.essay import Chunk, Essay, content_hash
from ingest.keyword import KEYWORD_VERSION, KeywordIndex, NameCounts, tokens_by_digest
from ingest.load import corpus_files, load_essays
from ingest.lock import index_lock
from ingest.models import spec
from ingest.sentences import SENTENCES_VERSION, sentence_units
from ingest.settings import Settings
from ingest.store import VectorStore

log = logging.getLogger(__name__)

#: progress(stage, done, total): stages are "scan", "model", "embed", "keyword".
Progress = Callable[[str, int, int], None]

_GROUP = 1024  # chunks embedded and written per step: bounds memory and the work a kill loses
# (measured: 1,024 embeds at 164 passages/s against 122 with 256, as batches sort by length
# over more texts and the inference queue drains less often; peak memory the same)
_PREFETCH = 320  # a change of up to this many texts (chunks and sentences) is embedded while the store opens


@dataclass
class Summary:
    """What an ingest run did; paths are relative to the corpus folder."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    chunks: int = 0
    sentences: int = 0
    total_chunks: int = 0
    rebuilt: bool = False
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def catalog_path(settings: Settings) -> Path:
    return settings.index_dir / "catalog.sqlite"


def keyword_path(settings: Settings) -> Path:
    return settings.index_dir / "keyword"


def index_outdated(settings: Settings) -> bool:
    """True when an index exists but was made with other chunks or sentence units than this
    version makes (as after an upgrade that moved sentence vectors into the catalog): it must be
    rebuilt before it is answered from. Its model may differ: questions use the index's own."""
    path = catalog_path(settings)
    if not path.exists():
        return False
    # Read-only and without the catalog's schema script: the app asks on every script run, and
    # must neither write nor wait behind an ingest's write lock.
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as db:
            made = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('chunker', 'sentences')"))
    except sqlite3.Error as err:  # unreadable here: the Assistant opening it will say why
        log.debug("cannot read the catalog's versions: %s", err)
        return False
    now = index_version(settings)
    return any(v != now[k] for k, v in made.items())


def index_version(settings: Settings) -> dict[str, str]:
    """What the index's vectors are made with: a change of any of these rebuilds it."""
    return {"embed_model": settings.embed_model, "chunker": CHUNKER_VERSION, "sentences": SENTENCES_VERSION}


def run_ingest(
    settings: Settings, *, progress: Progress | None = None, embedder: Embedder | None = None
) -> Summary:
    """Index what is new or changed in the corpus, drop what is gone; return what happened."""
    corpus = settings.corpus_dir
    if not corpus.is_dir():
        raise MarginaliaError(f"corpus folder {corpus} does not exist; create it or pass another folder")
    began = time.perf_counter()
    with index_lock(settings.index_dir, timeout=settings.lock_timeout):
        catalog = Catalog(catalog_path(settings))
        try:
            summary = _Run(settings, catalog, progress, embedder).run()
        finally:
            catalog.close()
    summary.seconds = round(time.perf_counter() - began, 3)
    return summary


class _Run:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        progress: Progress | None,
        embedder: Embedder | None,
    ) -> None:
        self.settings, self.catalog = settings, catalog
        self.progress = progress or (lambda stage, done, total: None)
        self._embedder = embedder
        self._store: VectorStore | None = None
        self._early: Future[dict[str, np.ndarray]] | None = None
        self._tokens: dict[str, list[str]] = {}  # BM25 tokens of the chunks written, by digest
        self._names = NameCounts()  # of the chunks written
        self._in_flight: tuple[Future[None], _Batch] | None = None  # a group being stored
        self.summary = Summary()

    @property
    def store(self) -> VectorStore:
        """Opened on first use: a run that finds nothing to do never imports chromadb."""
        if self._store is None:
            self._store = VectorStore(self.settings)
        return self._store

    def run(self) -> Summary:
        records = self.catalog.records()
        if self._in_step():
            todo = self._scan(records, set())
            if not todo and set(records) <= set(self.summary.unchanged):
                self.summary.total_chunks = self.catalog.chunk_count()
                return self.summary
            self._prefetch(todo)
            self.summary = Summary()  # something changed: start over on the careful path
        # A kill from here on leaves the careful path. The writer is noted: an app in another
        # process must then read the embedded store afresh (see VectorStore's `fresh`).
        self.catalog.set_meta({"finished": "", "writer": str(os.getpid())}, bump=False)
        self._check_version()
        redo = self._reconcile()
        records = self.catalog.records()
        scan = _Scan(self, records, redo)
        self._index(scan, records)  # essays are embedded and written as the scan reads them
        for essay_id in sorted(set(records) - set(self.summary.unchanged) - scan.loaded):
            self.store.delete_essay(essay_id)
            self.catalog.delete(essay_id)
            self.summary.removed.append(essay_id)
        self._refresh_keyword()
        self.summary.total_chunks = self.catalog.chunk_count()
        self.catalog.set_meta({"finished": json.dumps(self._fingerprint())}, bump=False)
        return self.summary

    def _in_step(self) -> bool:
        """True when the last run finished cleanly and nothing has touched the index since.

        Then the store, the catalog and the keyword index agree, and a run only needs to compare
        the corpus's hashes with the catalog's. Only the embedded store qualifies: a server can be
        swapped or wiped behind our back, so with one we always check it.
        """
        if self.settings.chroma_host:
            return False
        version = index_version(self.settings)
        if any(self.catalog.get_meta(k) != v for k, v in version.items()):
            return False
        try:
            finished = json.loads(self.catalog.get_meta("finished") or "null")
        except ValueError:
            return False
        return finished is not None and finished == self._fingerprint()

    def _fingerprint(self) -> dict[str, object]:
        """What a clean finish leaves behind: the catalog generation the keyword index was built
        for and its format, and the store's segment folders (a reset or a deleted store changes them)."""
        chroma = self.settings.index_dir / "chroma"
        keyword = keyword_path(self.settings) / "ids.json"
        return {
            "generation": self.catalog.generation,
            # The version too: a keyword index of an older format is rebuilt, without re-embedding.
            "keyword": KEYWORD_VERSION if keyword.is_file() else None,
            # Folders only: the database's journal files come and go with any reader or writer.
            "store": (
                sorted(p.name for p in chroma.iterdir() if p.is_dir())
                if (chroma / "chroma.sqlite3").is_file()
                else None
            ),
        }

    def _prefetch(self, todo: list[Essay]) -> None:
        """Embed a small change in a thread while this one opens the store.

        Opening the store imports chromadb (0.6-0.8 s of Python holding the interpreter), while
        loading and running the model happen mostly in OpenVINO with the interpreter released:
        measured, one changed essay of 17 chunks re-indexes in 2.2 s instead of 2.5 s. A large
        change is embedded in groups, with progress, as usual.
        """
        texts = [t for w in map(_work, todo) for t in (*w.passages, *w.sentences)]
        if not 0 < len(texts) <= _PREFETCH:
            return
        given = self._embedder
        settings = self.settings

        def embed() -> dict[str, np.ndarray]:
            model = given or load_embedder(settings)
            return dict(zip(texts, model.embed(texts), strict=True))

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self._early = pool.submit(embed)
        pool.shutdown(wait=False)

    def _vectors(self, texts: Sequence[str], step: Callable[[int], None]) -> np.ndarray:
        """The texts' vectors: those embedded ahead taken as they are, the rest computed now."""
        ready = self._early.result() if self._early else {}
        self._early = None
        missing = [t for t in dict.fromkeys(texts) if t not in ready]
        if missing:
            ready.update(zip(missing, self.embedder.embed(missing, progress=step), strict=True))
        step(len(texts) - len(missing))
        if not texts:
            return np.zeros((0, spec(self.settings.embed_model).dimensions), dtype=np.float32)
        return np.stack([ready[t] for t in texts])

    def _check_version(self) -> None:
        version = index_version(self.settings)
        stored = {k: self.catalog.get_meta(k) for k in version}
        if stored == version and self.store.version() == version:
            return
        self.summary.rebuilt = bool(self.catalog.records()) or self.store.count() > 0
        if self.summary.rebuilt:
            log.info(
                "index made with %s / store %s; rebuilding for %s", stored, self.store.version(), version
            )
        self.store.reset(**version)
        self.catalog.clear()
        self.catalog.set_meta(version)

    def _reconcile(self) -> set[str]:
        """Repair what a killed run left: stray chunk vectors go; essays missing vectors are redone.

        When the store holds as many chunk vectors as the catalog records, there is nothing to
        repair. Sentence vectors need no repair: the catalog writes them with their essay.
        """
        if self.store.count() == self.catalog.chunk_count():
            return set()
        expected = {c.id: essay.id for essay, chunks in self.catalog.chunks() for c in chunks}
        present = self.store.ids()
        stray = sorted(present - set(expected))
        if stray:
            self.store.delete_ids(stray)
        return {essay_id for cid, essay_id in expected.items() if cid not in present}

    def _scan(self, records: dict, redo: set[str]) -> list[Essay]:
        """Every new or changed essay, read at once (for the quick check of a run in step)."""
        return list(_Scan(self, records, redo))

    def _index(self, scan: _Scan, records: dict) -> None:
        """Embed and write in groups of about _GROUP chunks, with one group's vectors in flight.

        Essays are read, embedded and written as the scan reaches them, so memory holds a few
        groups, not the corpus, and the store is busy from the first group on. A thread sends a
        group's chunk vectors to Chroma while this one reads and embeds the next group and
        tokenizes the last one for BM25. Chroma's inserts (HNSW in Rust, or a server behind HTTP)
        wait with the interpreter released, so both cores work. A group's catalog rows are
        written here once its vectors are stored: the kill order holds (vectors, then catalog).
        """
        done = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="store") as writer:
            try:
                for group in _groups(_work(essay) for essay in scan):
                    scan.texts += sum(w.size for w in group)
                    batch, done = self._embed(group, done, scan, records)
                    self._settle(records, wait=True)
                    self._in_flight = (writer.submit(self._store_vectors, batch, records), batch)
                    self._tokenize(batch)
                self._settle(records, wait=True)
            finally:
                if self._in_flight is not None:  # an error here: let the write end, record nothing
                    self._in_flight[0].exception()
                    self._in_flight = None

    def _embed(self, group: list[_Work], done: int, scan: _Scan, records: dict) -> tuple[_Batch, int]:
        """The group's chunk and sentence vectors, each essay's rows apart. Between the model's
        batches, the group before is recorded as soon as its vectors are stored."""
        texts = [t for w in group for t in (*w.passages, *w.sentences)]
        self.progress("embed", done, scan.total_estimate())

        def step(n: int) -> None:
            nonlocal done
            done += n
            self.progress("embed", done, scan.total_estimate())
            self._settle(records, wait=False)

        vectors = self._vectors(texts, step)
        batch, row = [], 0
        for w in group:
            passages, row = vectors[row : row + len(w.chunks)], row + len(w.chunks)
            sentences, row = vectors[row : row + len(w.sentences)], row + len(w.sentences)
            batch.append((w, passages, sentences))
        return batch, done

    def _store_vectors(self, batch: _Batch, records: dict) -> None:
        """Write a group's chunk vectors (in the writer thread); an essay indexed before has its
        old vectors deleted first, a new one has none (the reconcile removed any strays)."""
        for w, _, _ in batch:
            if w.essay.id in records:
                self.store.delete_essay(w.essay.id)
        chunk_ids = [c.id for w, _, _ in batch for c in w.chunks]
        if chunk_ids:
            self.store.add(
                chunk_ids,
                np.concatenate([p for _, p, _ in batch if len(p)]),
                [_metadata(w.essay) for w, _, _ in batch for _ in w.chunks],
            )

    def _settle(self, records: dict, *, wait: bool) -> None:
        """Once the group in flight has its vectors stored (raising the writer's error if it
        failed), write its catalog rows, sentence vectors included, in one transaction.
        `wait=False` returns at once if the write is still under way.

        A kill before this leaves the group's essays not indexed and the next run redoes them;
        chunk vectors already written are strays its reconcile removes.
        """
        if self._in_flight is None or not (wait or self._in_flight[0].done()):
            return
        (future, batch), self._in_flight = self._in_flight, None
        future.result()
        self.catalog.put_many([(w.essay, w.chunks, _sentence_vectors(w, s)) for w, _, s in batch])
        for w, _, _ in batch:
            (self.summary.updated if w.essay.id in records else self.summary.added).append(w.essay.id)
            self.summary.chunks += len(w.chunks)
            self.summary.sentences += len(w.sentences)

    def _tokenize(self, batch: _Batch) -> None:
        """BM25 tokens of the group's chunks, made while its vectors are written: the keyword
        index built at the end of the run takes them instead of tokenizing every chunk then."""
        texts = [keyword_text(c, w.essay) for w, _, _ in batch for c in w.chunks]
        self._tokens.update(tokens_by_digest(texts))
        self._names.add(texts)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self.progress("model", 0, 1)  # seconds; on first use, a conversion for this machine
            self._embedder = load_embedder(self.settings)
            self.progress("model", 1, 1)
        return self._embedder

    def _refresh_keyword(self) -> None:
        folder = keyword_path(self.settings)
        generation = self.catalog.generation
        saved = KeywordIndex.load(folder) if not self.summary.changed else None
        if saved is not None and saved.generation == generation:
            return
        self.progress("keyword", 0, 1)
        ids, texts = [], []
        for essay, chunks in self.catalog.chunks():
            for c in chunks:
                ids.append(c.id)
                texts.append(keyword_text(c, essay))
        known = {**KeywordIndex.saved_tokens(folder), **self._tokens}
        # Names counted as the chunks were written serve when this run wrote every chunk there is.
        written = len(self.summary.added) + len(self.summary.updated)
        names = self._names.names() if written == len(self.catalog.records()) else None
        self._tokens, self._names = {}, NameCounts()
        KeywordIndex.build(ids, texts, generation, known, names).save(folder)
        self.progress("keyword", 1, 1)


class _Scan:
    """The corpus's new and changed essays, read one file at a time as they are asked for.

    Files whose bytes match the catalog are noted unchanged, and files that cannot be read are
    noted rejected, in the run's summary. `loaded` gathers the ids read. Progress reports the
    "scan" stage until the first essay is handed on; from then on the texts to embed are
    estimated from the share of files read (`total_estimate`), exact once all are read.
    """

    def __init__(self, run: _Run, records: dict, redo: set[str]) -> None:
        self.run, self.records, self.redo = run, records, redo
        self.files = corpus_files(run.settings.corpus_dir)
        self.read = 0  # files read so far
        self.texts = 0  # texts to embed among the essays handed on so far
        self.loaded: set[str] = set()

    def __iter__(self) -> Iterator[Essay]:
        run, corpus = self.run, self.run.settings.corpus_dir
        limits = {
            "max_bytes": run.settings.max_file_bytes,
            "max_document_bytes": run.settings.max_document_bytes,
        }
        chapters = _by_file(self.records)
        for path in self.files:
            self.read += 1
            rel = path.relative_to(corpus).as_posix()
            if not self.loaded:
                run.progress("scan", self.read, len(self.files))
            held = [rel] if rel in self.records else chapters.get(rel, [])  # the essays this file gave
            if (
                held
                and not self.redo.intersection(held)
                and _same_bytes(path, self.records[held[0]].source_hash, max(limits.values()))
            ):
                run.summary.unchanged.extend(held)
                continue
            try:
                essays = load_essays(path, corpus, **limits)
            except RejectedFile as rejected:
                run.summary.rejected.append({"path": rel, "reason": rejected.reason})
                continue
            for essay in essays:
                self.loaded.add(essay.id)
                yield essay

    def total_estimate(self) -> int:
        """The texts the run will embed: those known, scaled by the share of files still unread."""
        if self.read >= len(self.files):
            return self.texts
        return round(self.texts * len(self.files) / max(1, self.read))


def _groups(work: Iterable[_Work]) -> Iterator[list[_Work]]:
    """Essays in groups of at least _GROUP chunks (the last one smaller)."""
    group: list[_Work] = []
    chunks = 0
    for item in work:
        group.append(item)
        chunks += len(item.chunks)
        if chunks >= _GROUP:
            yield group
            group, chunks = [], 0
    if group:
        yield group


@dataclass(frozen=True)
class _Work:
    """An essay to index and what is embedded for it: each chunk with its title, then each of its
    sentences alone; `owners` gives each sentence's chunk (position in `chunks`) and number there."""

    essay: Essay
    chunks: list[Chunk]
    passages: list[str]
    sentences: list[str]
    owners: list[tuple[int, int]]

    @property
    def size(self) -> int:
        return len(self.passages) + len(self.sentences)


#: a group's essays with their chunk vectors and sentence vectors
_Batch = list[tuple[_Work, np.ndarray, np.ndarray]]


def _work(essay: Essay) -> _Work:
    """An essay's chunks, and the passages and sentences to embed for them."""
    chunks = chunk_essay(essay)
    sentences, owners = [], []
    for i, c in enumerate(chunks):
        for n, (s, e) in enumerate(sentence_units(essay.text, c)):
            sentences.append(essay.text[s:e])
            owners.append((i, n))
    return _Work(essay, chunks, [embedding_text(c, essay.title) for c in chunks], sentences, owners)


class Named(Protocol):
    """What keyword_text needs of an essay (an Essay, or retrieval's EssayInfo)."""

    @property
    def title(self) -> str: ...
    @property
    def author(self) -> str: ...
    @property
    def collection(self) -> str: ...


def keyword_text(chunk: Chunk, essay: Named) -> str:
    """What BM25 sees: the chunk plus who wrote it and where it sits, so 'Bacon says' matches."""
    return f"{essay.title} {essay.author} {essay.collection} {chunk.heading}\n{chunk.text}"


def _metadata(essay: Essay) -> dict[str, object]:
    """What a chunk vector carries: only what retrieval filters on (snapshot.Filters.where). Titles
    and offsets are the catalog's; each field more is a metadata index entry Chroma writes."""
    return {"essay": essay.id, "author": essay.author, "collection": essay.collection}


def _sentence_vectors(work: _Work, vectors: np.ndarray) -> SentenceVectors:
    """An essay's sentence vectors as the catalog keeps them: rows in order, counted per chunk."""
    counts = np.zeros(len(work.chunks), dtype=np.uint16)
    for i, _ in work.owners:
        counts[i] += 1
    return SentenceVectors(counts, np.asarray(vectors, dtype=np.float32))  # rows: len(work.owners)


def _by_file(records: dict) -> dict[str, list[str]]:
    """The ids of the essays that came from one file of several (an EPUB's "book.epub#03-title")."""
    out: dict[str, list[str]] = {}
    for essay_id in sorted(records):
        source, mark, _ = essay_id.partition("#")
        if mark and source.lower().endswith(".epub"):
            out.setdefault(source, []).append(essay_id)
    return out


def _same_bytes(path: Path, source_hash: str, max_bytes: int) -> bool:
    try:
        if path.stat().st_size > max_bytes:
            return False
        return content_hash(path.read_bytes()) == source_hash
    except OSError:
        return False
