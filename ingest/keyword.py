"""The keyword (BM25) index over chunks, kept in step with the vector store by ingest."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

#: Bump when tokenising changes: the saved keyword index is then rebuilt.
KEYWORD_VERSION = "stem-v3"  # v3: the names the essays use are kept beside the scores

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each build at debug level

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "s",
        "t",
        "d",
        "ll",
        "m",
        "re",
        "ve",
        "say",
        "says",
        "said",
        "does",
        "according",
        "author",
        "essay",
        "no",
        "nos",
    ]
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def _bm25s() -> Any:
    """The bm25s module, quiet: it sets its logger to DEBUG, so each build printed a line."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def tokens_by_digest(texts: Sequence[str]) -> dict[str, list[str]]:
    """Each text's tokens by its digest, as KeywordIndex.build takes them (`known`)."""
    return {_digest(t): [sys.intern(w) for w in tokenize(t)] for t in texts}


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed content words (numbers kept: years and paper numbers matter)."""
    words = [w for w in _WORD.findall(text.lower().replace("’", "'")) if w not in STOPWORDS]
    return _stemmer().stemWords(words)


# A capitalised word not opening a sentence ('the brave Lovejoy', 'the State'), and any lower-case word.
# The capital comes first and the look-behinds after it, so re skips ahead to capitals: about 5x
# faster than looking behind at every position first.
_CAPITALISED = re.compile(r"[A-Z](?<=[^\w\n][A-Z])(?<![.!?:]\s[A-Z])(?<![.!?:]\s[“\"‘(][A-Z])[a-zà-ÿ]+")
_LOWER = re.compile(r"\b[a-zà-ÿ]+\b")
NAME_SHARE = 0.2  # a word written in lower case more than this share of its capitalised uses is no name


def names(texts: Sequence[str]) -> frozenset[str]:
    """The proper names of the texts: words written capitalised mid-sentence and seldom in lower case.

    'Lovejoy' and 'Genoa' are names; 'State' and 'Union', capitalised all through the Federalist
    but also written 'state' and 'union', are not. The answerer asks for one of these when a question
    asks 'who' or 'which town', so that a capitalised common noun does not pass for the answer.
    """
    counts = NameCounts()
    counts.add(texts)
    return counts.names()


class NameCounts:
    """The counts `names` decides from, kept as texts come: an ingest counts each group of chunks
    while its vectors are written, rather than all the chunks again at the end."""

    def __init__(self) -> None:
        self.capitalised: Counter[str] = Counter()
        self.lower: Counter[str] = Counter()

    def add(self, texts: Sequence[str]) -> None:
        for text in texts:  # Counter.update counts in C
            self.capitalised.update(_CAPITALISED.findall(text))
            self.lower.update(_LOWER.findall(text))

    def names(self) -> frozenset[str]:
        lower = self.lower
        return frozenset(w for w, n in self.capitalised.items() if lower.get(w.lower(), 0) <= NAME_SHARE * n)


class KeywordIndex:
    """BM25 over chunk texts; scores every chunk so callers can filter and fuse."""

    def __init__(
        self,
        ids: Sequence[str],
        retriever: object,
        generation: int,
        df: dict[str, int] | None = None,
        names: frozenset[str] = frozenset(),
    ) -> None:
        self.ids = list(ids)
        self.df = df or {}
        #: the proper names the indexed texts use (see `names`)
        self.names = names
        self.position = {cid: i for i, cid in enumerate(self.ids)}
        self._bm25: Any = retriever  # bm25s has no type information
        self.generation = generation
        self._tokens: dict[str, list[str]] = {}  # by text digest, kept by build() for save()

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        texts: Sequence[str],
        generation: int,
        known: dict[str, list[str]] | None = None,
        known_names: frozenset[str] | None = None,
    ) -> KeywordIndex:
        """Index the texts; `known` maps text digests to tokens from an earlier build (see
        saved_tokens), so a re-index only stems the chunks that changed; `known_names`, when
        given, are the texts' `names`, counted as they were written."""
        bm25s = _bm25s()

        known = known or {}
        digests = [_digest(t) for t in texts]
        # Interned: a million chunks repeat the same few tens of thousands of stems.
        tokens = [
            [sys.intern(w) for w in known.get(d) or tokenize(t) or ["∅"]]
            for d, t in zip(digests, texts, strict=True)
        ]
        retriever = None  # an empty corpus: bm25s cannot index nothing (max() of an empty sequence)
        if tokens:
            retriever = bm25s.BM25()
            retriever.index(tokens, show_progress=False)
        df: dict[str, int] = {}
        for doc in tokens:
            for t in set(doc):
                df[t] = df.get(t, 0) + 1
        index = cls(ids, retriever, generation, df, names(texts) if known_names is None else known_names)
        index._tokens = dict(zip(digests, tokens, strict=True))
        return index

    @staticmethod
    def saved_tokens(folder: Path) -> dict[str, list[str]]:
        """Tokens saved by the last build in folder, by text digest (empty when there are none)."""
        try:
            meta = json.loads((folder / "tokens.json").read_text())
        except (OSError, ValueError):
            return {}
        return meta["tokens"] if meta.get("version") == KEYWORD_VERSION else {}

    def idf(self, token: str) -> float:
        """Inverse document frequency of a stemmed token (unknown tokens weigh most)."""
        n = max(1, len(self.ids))
        return math.log(1 + (n - self.df.get(token, 0) + 0.5) / (self.df.get(token, 0) + 0.5))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk (aligned with `ids`) for the query's words."""
        if not self.ids:
            return np.zeros(0, dtype=np.float32)
        tokens = [t for t in tokenize(query) if t in self._vocab]
        if not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def top(
        self, query: str, n: int, keep: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The n best chunks for the query's words: (positions in `ids`, BM25 scores), best first.

        Only the chunks holding a query word are scored, from the words' posting lists, so the
        cost follows how common the words are, not the number of chunks. `keep` maps positions to
        a boolean mask of those allowed (filters); ties go to the earlier position.
        """
        empty = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        if not self.ids:
            return empty
        columns = [self._vocab[t] for t in tokenize(query) if t in self._vocab]  # repeats count, as in bm25s
        if not columns:
            return empty
        matrix = self._bm25.scores
        data, indices, indptr = matrix["data"], matrix["indices"], matrix["indptr"]
        docs = np.concatenate([indices[indptr[c] : indptr[c + 1]] for c in columns])
        values = np.concatenate([data[indptr[c] : indptr[c + 1]] for c in columns])
        positions, inverse = np.unique(docs, return_inverse=True)
        scores = np.bincount(inverse, weights=values.astype(np.float64))
        if keep is not None:
            allowed = keep(positions)
            positions, scores = positions[allowed], scores[allowed]
        if len(scores) > n:  # keep the n best and whatever ties with the last of them
            nth = -np.partition(-scores, n - 1)[n - 1]
            best = scores >= nth
            positions, scores = positions[best], scores[best]
        order = np.lexsort((positions, -scores))[:n]
        return positions[order].astype(np.int64), scores[order]

    @property
    def _vocab(self) -> dict[str, int]:
        return self._bm25.vocab_dict

    def save(self, folder: Path) -> None:
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._bm25 is not None:
            self._bm25.save(str(tmp), show_progress=False)
        (tmp / "ids.json").write_text(
            json.dumps(
                {
                    "version": KEYWORD_VERSION,
                    "generation": self.generation,
                    "ids": self.ids,
                    "df": self.df,
                    "names": sorted(self.names),
                }
            )
        )
        if self._tokens:
            (tmp / "tokens.json").write_text(json.dumps({"version": KEYWORD_VERSION, "tokens": self._tokens}))
        # Swap in whole so a reader never sees half of an index.
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex | None:
        """The saved index, or None when there is none (or it is unreadable)."""
        bm25s = _bm25s()

        try:
            meta = json.loads((folder / "ids.json").read_text())
            if meta.get("version") != KEYWORD_VERSION:
                return None
            retriever = (
                bm25s.BM25.load(str(folder), show_progress=False, verbosity=0, mmap=True)
                if meta["ids"]
                else None
            )
            # An ingest may have swapped in a new index between the two reads: ids of one and
            # scores of the other would rank the wrong chunks, so such a load counts as none.
            if json.loads((folder / "ids.json").read_text()).get("generation") != meta["generation"]:
                return None
        except (OSError, ValueError):
            return None
        return cls(
            meta["ids"],
            retriever,
            int(meta["generation"]),
            meta.get("df", {}),
            frozenset(meta.get("names", ())),
        )
