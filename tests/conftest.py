"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from messy import Expected, write_messy

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shipped corpus (read only: tests that write use tmp_path)."""
    return PROJECT_DIR / "corpus"


@pytest.fixture(scope="session")
def messy_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Expected]]:
    """Our hostile files, written once per session, with how each must be handled."""
    out_dir = tmp_path_factory.mktemp("messy")
    return out_dir, write_messy(out_dir)


# --- index fixtures (real model, real Chroma in tmp folders) ---------------------------------

SMALL_ESSAYS = (
    "sahel/could-malis-coup-have-been-avoided-part-two.txt",
    "bacon/50-of-studies.md",
    "bacon/04-of-revenge.md",
    "bacon/27-of-friendship.md",
    "emerson/02-self-reliance.md",
    "federalist/10-the-same-subject-continued-the-union-as-a-safeguard-against.md",
    "federalist/51-the-structure-of-the-government-must-furnish-the-proper.md",
)


def copy_essays(src: Path, dst: Path, essays: tuple[str, ...] = SMALL_ESSAYS) -> Path:
    """Copy some shipped essays into dst, keeping their collection folders."""
    import shutil

    for rel in essays:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dst / rel)
    return dst


@pytest.fixture(scope="session")
def embedder():
    """The packaged MiniLM model, loaded once per test session."""
    from ingest.embed import load_embedder

    return load_embedder()


@pytest.fixture(scope="session")
def small_index(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, embedder):
    """Settings of a real index over seven shipped essays (built once per session)."""
    from ingest.pipeline import run_ingest
    from ingest.settings import Settings

    root = tmp_path_factory.mktemp("small")
    settings = Settings.from_env(
        env={}, corpus_dir=copy_essays(corpus_dir, root / "corpus"), index_dir=root / "index"
    )
    run_ingest(settings, embedder=embedder)
    return settings


@pytest.fixture(scope="session")
def shipped_index(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path):
    """Settings of a real index over the whole shipped corpus.

    Kept between runs in pytest's cache folder and brought up to date by an incremental ingest
    (about a minute the first time, seconds after). Built by a separate process, so the index is
    complete and closed on disk before tests read or copy it. Tests must not write to it.
    """
    import os
    import subprocess
    import sys

    from ingest.settings import Settings

    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    folder = cache.mkdir("marginalia-shipped-index") if cache else tmp_path_factory.mktemp("shipped")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARGINALIA_")}
    subprocess.run(
        [sys.executable, "-m", "ingest", str(corpus_dir), "--index", str(folder / "index"), "--json"],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
        capture_output=True,
        timeout=1800,
    )
    return Settings.from_env(env={}, corpus_dir=corpus_dir, index_dir=folder / "index")


@pytest.fixture(scope="session")
def shipped_assistant(shipped_index, embedder):
    """An Assistant over the shipped corpus index."""
    from retrieval.assistant import Assistant

    return Assistant(shipped_index, embedder=embedder)
