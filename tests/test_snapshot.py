"""The snapshot keeps positions, not texts: chunks and texts come from the catalog, exactly as stored."""

from __future__ import annotations

from ingest.catalog import Catalog
from ingest.pipeline import catalog_path
from retrieval.snapshot import Filters, Snapshot


def test_positions_ids_and_chunks_read_from_sqlite_match_the_catalog(small_index) -> None:
    catalog = Catalog(catalog_path(small_index))
    try:
        stored = {c.id: (essay, c) for essay, chunks in catalog.chunks() for c in chunks}
        snap = Snapshot(catalog)
        ids = list(stored)  # catalog order: by essay id, then ordinal
        assert snap.size == len(ids) and snap.ids_at(range(snap.size)) == ids
        assert [snap.position(cid) for cid in ids] == list(range(len(ids)))
        assert snap.position("no/such.md#0") is None and snap.position(f"{ids[0].split('#')[0]}#999") is None
        read = snap.chunks([*ids, "no/such.md#0"])
        assert read == {cid: c for cid, (_, c) in stored.items()}
        for cid, (essay, c) in stored.items():
            assert essay.text[c.start : c.end] == read[cid].text
            assert snap.text(essay.id) == essay.text
        assert snap.chunk_ids_of([ids[0].split("#")[0]]) == [
            i for i in ids if i.startswith(ids[0].split("#")[0])
        ]
    finally:
        catalog.close()


def test_filters_name_the_essays_they_let_through(small_index) -> None:
    catalog = Catalog(catalog_path(small_index))
    try:
        snap = Snapshot(catalog)
        assert snap.allowed(Filters()) is None
        bacon = snap.allowed(Filters(authors=("Francis Bacon",)))
        assert bacon == {"bacon/04-of-revenge.md", "bacon/27-of-friendship.md", "bacon/50-of-studies.md"}
        assert snap.allowed(Filters(collections=("federalist",), essays=("bacon/04-of-revenge.md",))) == set()
    finally:
        catalog.close()


def test_chunks_are_read_through_the_primary_key_not_by_scanning(small_index) -> None:
    from ingest.catalog import _chunks_by_id_sql

    catalog = Catalog(catalog_path(small_index))
    try:
        plan = catalog._db.execute(f"EXPLAIN QUERY PLAN {_chunks_by_id_sql(2)}", ["a", 0, "b", 1]).fetchall()
    finally:
        catalog.close()
    steps = [row[-1] for row in plan]
    assert not any(step.startswith("SCAN c") for step in steps), steps
    assert any(step.startswith("SEARCH c USING INDEX") for step in steps), steps
