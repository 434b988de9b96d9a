"""The BM25 keyword index: saved and loaded whole, and rebuilt from saved tokens to the same scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ingest import keyword
from ingest.keyword import KeywordIndex

TEXTS = [
    "Of Revenge. Revenge is a kind of wild justice, which the more man's nature runs to.",
    "Of Gardens. God Almighty first planted a garden; it is the purest of human pleasures.",
    "Federalist No. 10: the violence of faction, and the union as a safeguard against it.",
]


def test_saved_index_loads_with_the_same_scores(tmp_path: Path) -> None:
    built = KeywordIndex.build(["a", "b", "c"], TEXTS, generation=4)
    built.save(tmp_path / "kw")
    loaded = KeywordIndex.load(tmp_path / "kw")
    assert loaded is not None and loaded.generation == 4 and loaded.ids == ["a", "b", "c"]
    for query in ("wild justice", "gardens planted", "faction"):
        assert np.allclose(loaded.scores(query), built.scores(query))
    assert int(np.argmax(loaded.scores("planting a garden"))) == 1


def test_a_rebuild_stems_only_new_texts_and_scores_the_same(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "kw"
    KeywordIndex.build(["a", "b"], TEXTS[:2], generation=1).save(folder)
    known = KeywordIndex.saved_tokens(folder)
    assert len(known) == 2

    stemmed: list[str] = []
    real = keyword.tokenize

    def counting(text: str) -> list[str]:
        stemmed.append(text)
        return real(text)

    monkeypatch.setattr(keyword, "tokenize", counting)
    again = KeywordIndex.build(["a", "b", "c"], TEXTS, generation=2, known=known)
    assert stemmed == [TEXTS[2]]  # the two saved texts came from the cache
    fresh = KeywordIndex.build(["a", "b", "c"], TEXTS, generation=2)
    for query in ("revenge", "garden pleasures", "union against faction"):
        assert np.allclose(again.scores(query), fresh.scores(query))


def test_an_empty_index_builds_saves_loads_and_scores_nothing(tmp_path: Path) -> None:
    empty = KeywordIndex.build([], [], generation=3)
    empty.save(tmp_path / "kw")
    loaded = KeywordIndex.load(tmp_path / "kw")
    assert loaded is not None and loaded.ids == [] and loaded.generation == 3
    assert len(loaded.scores("revenge")) == 0 and loaded.idf("revenge") > 0
    KeywordIndex.build(["a"], TEXTS[:1], generation=4).save(tmp_path / "kw")  # and fills again
    again = KeywordIndex.load(tmp_path / "kw")
    assert again is not None and again.scores("revenge")[0] > 0


def test_top_scores_only_chunks_with_a_query_word_and_agrees_with_scoring_every_chunk(
    tmp_path: Path,
) -> None:
    texts = [*TEXTS, "Of Revenge again: revenge, revenge and justice.", "Nothing relevant here at all."]
    ids = [str(i) for i in range(len(texts))]
    KeywordIndex.build(ids, texts, generation=1).save(tmp_path / "kw")
    index = KeywordIndex.load(tmp_path / "kw")  # memory-mapped postings, as the app reads them
    assert index is not None
    for query in ("revenge justice", "garden", "faction union", "revenge revenge"):
        every = index.scores(query)
        expected = [int(i) for i in np.argsort(-every, kind="stable") if every[i] > 0][:2]
        positions, scores = index.top(query, 2)
        assert positions.tolist() == expected
        assert np.allclose(scores, every[expected])
    assert index.top("revenge", 5)[0].tolist() == [3, 0]  # the unrelated text is never scored
    assert index.top("unheard-of words", 5)[0].tolist() == []
    only_odd = index.top("revenge justice", 5, keep=lambda p: p % 2 == 1)
    assert only_odd[0].tolist() == [3]
