"""Each installed embedding model builds an index and answers from it; the index records its model."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import copy_essays

from ingest.errors import IndexMismatch, ModelMissing
from ingest.models import MODELS, MPNET
from ingest.pipeline import run_ingest
from ingest.settings import Settings
from retrieval.assistant import Assistant

ESSAYS = ("bacon/50-of-studies.md", "bacon/04-of-revenge.md", "bacon/57-of-anger.md")
DEFAULTS = Settings()


def _installed(name: str) -> bool:
    try:
        MODELS[name].files(DEFAULTS.model_dir)
    except ModelMissing:
        return False
    return True


@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_indexes_and_answers(tmp_path: Path, corpus_dir: Path, name: str) -> None:
    if not _installed(name):
        pytest.skip(f"{name} is not installed in {DEFAULTS.model_dir}; install it with: make install-mpnet")
    settings = Settings.from_env(
        env={}, corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", embed_model=name
    )
    copy_essays(corpus_dir, settings.corpus_dir, ESSAYS)
    summary = run_ingest(settings)
    assert sorted(summary.added) == sorted(ESSAYS) and summary.sentences > summary.chunks
    assistant = Assistant(Settings.from_env(env={}, index_dir=settings.index_dir))  # the index's model
    assert assistant.embedder.name == name and assistant.embedder.dimensions == MODELS[name].dimensions
    answer = assistant.ask("What does Bacon say about anger and how to calm it?")
    assert not answer.refused and answer.citations[0].essay == "bacon/57-of-anger.md"
    assert all(c.verified for c in answer.citations)
    # Asking that index with the other model's embedder says how to rebuild, instead of failing later.
    other = next(m for m in MODELS if m != name)
    if _installed(other):
        from ingest.embed import load_embedder

        wrong = load_embedder(Settings.from_env(env={}, embed_model=other))
        with pytest.raises(IndexMismatch, match=f"python -m ingest --model {other}"):
            Assistant(settings, embedder=wrong)


def test_a_missing_model_names_the_command_that_installs_it(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="make install-mpnet"):
        MPNET.files(tmp_path)
