"""All settings in one typed object, read from MARGINALIA_* environment variables and CLI flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ingest.errors import SettingsError

PROJECT_DIR = Path(__file__).resolve().parent.parent
_CHOICES = {
    "embed_backend": ("openvino", "torch"),
    "precision": ("auto", "bf16", "fp32", "int8"),
    "embed_model": ("all-MiniLM-L6-v2", "all-mpnet-base-v2"),
}


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Where the corpus and index live, which store and answerer to use, and their limits."""

    corpus_dir: Path = _setting(PROJECT_DIR / "corpus", "Folder of essays to index.")
    index_dir: Path = _setting(
        PROJECT_DIR / ".marginalia" / "index", "Folder for the catalog, keyword index and embedded Chroma."
    )
    chroma_host: str = _setting("", "Chroma server host; empty means the embedded store in index_dir.")
    chroma_port: int = _setting(8000, "Chroma server port.")
    chroma_token: str = _setting("", "Bearer token sent to the Chroma server, if it requires one.")
    collection: str = _setting("marginalia", "Chroma collection name.")
    max_file_mb: float = _setting(
        5.0, "Text files larger than this are rejected, as are documents with more text."
    )
    max_document_mb: float = _setting(50.0, "PDF, EPUB and Word files larger than this are rejected.")
    embed_model: str = _setting(
        "all-MiniLM-L6-v2",
        "Embedding model: all-MiniLM-L6-v2 (packaged) or all-mpnet-base-v2 (make install-mpnet first). "
        "Changing it rebuilds the index.",
    )
    embed_backend: str = _setting(
        "openvino", "Embedding runtime: openvino (fast, converted once) or torch (sentence-transformers)."
    )
    embed_batch: int = _setting(16, "Passages embedded per model call.")
    precision: str = _setting(
        "auto",
        "Embedding precision: auto (bf16 where the CPU has it, else int8 with AVX-512 or VNNI, else fp32), "
        "bf16, fp32 or int8.",
    )
    model_dir: Path = _setting(
        PROJECT_DIR / ".marginalia" / "models",
        "Folder for installed embedding models and their copies converted for OpenVINO.",
    )
    lock_timeout: float = _setting(30.0, "Seconds an ingest waits for another ingest to finish.")
    top_k: int = _setting(5, "Passages retrieved per question.")
    answer_mode: str = _setting("extractive", "extractive, openai (any OpenAI-compatible server) or ollama.")
    llm_base_url: str = _setting("", "Base URL of the LLM endpoint, e.g. http://127.0.0.1:11434 for Ollama.")
    llm_model: str = _setting("", "Model name the LLM endpoint serves.")
    llm_api_key: str = _setting("", "API key for the LLM endpoint; local servers need none.")
    llm_timeout: float = _setting(60.0, "Seconds to wait for the LLM before falling back to extractive.")
    read_only: bool = _setting(False, "Hide upload and reindex in the app, for shared deployments.")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then MARGINALIA_<NAME> variables, then explicit overrides (None is ignored)."""
        source: Mapping[str, str] = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = source.get(f"MARGINALIA_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw, f.default)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("corpus_dir", "index_dir", "model_dir"):
            if key in values:
                values[key] = Path(str(values[key])).expanduser()
        for key, allowed in _CHOICES.items():
            if key in values and values[key] not in allowed:
                choices = ", ".join(allowed)
                raise SettingsError(
                    f"MARGINALIA_{key.upper()}={values[key]!r} is not one of {choices}; fix or unset it"
                )
        return replace(cls(), **values)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def max_document_bytes(self) -> int:
        return int(self.max_document_mb * 1024 * 1024)

    @property
    def store_label(self) -> str:
        if self.chroma_host:
            return f"Chroma server {self.chroma_host}:{self.chroma_port}"
        return f"embedded Chroma in {self.index_dir}"


def describe() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for the README's settings table."""
    rows = []
    for f in fields(Settings):
        default = f.default
        if isinstance(default, Path):
            default = default.relative_to(PROJECT_DIR)
        rows.append((f"MARGINALIA_{f.name.upper()}", str(default), f.metadata["help"]))
    return rows


def _parse(name: str, raw: str, default: object) -> object:
    try:
        if isinstance(default, bool):
            if raw.lower() not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return raw.lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as err:
        raise SettingsError(
            f"MARGINALIA_{name.upper()}={raw!r} is not a valid {type(default).__name__}; fix or unset it"
        ) from err
    return raw
