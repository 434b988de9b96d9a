"""Uploaded essays saved into the corpus folder: safe names, a size limit, never overwriting another essay."""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import RejectedFile
from ingest.load import DOCUMENT_SUFFIXES, SUPPORTED_SUFFIXES

UPLOAD_FOLDER = "uploads"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 80


@dataclass(frozen=True)
class Saved:
    """An upload written to the corpus; `path` is relative to the corpus folder."""

    name: str
    path: str
    note: str = ""


def safe_name(name: str) -> str:
    """A plain file name from whatever the browser sent: no folders, no hidden files, ASCII only."""
    base = re.split(r"[/\\]", name)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = suffix, ""
    stem = _UNSAFE.sub("-", stem).strip("-._")[:_MAX_STEM].strip("-._") or "essay"
    suffix = _UNSAFE.sub("", suffix).lower()
    return f"{stem}.{suffix}" if suffix else stem


def save_upload(
    corpus_dir: Path, name: str, data: bytes, *, max_bytes: int, max_document_bytes: int | None = None
) -> Saved:
    """Write one upload under corpus_dir/uploads; RejectedFile says why it cannot be kept.

    PDF, EPUB and Word files have their own limit, `max_document_bytes` (else `max_bytes`).
    """
    filename = safe_name(name)
    suffix = Path(filename).suffix
    if suffix not in SUPPORTED_SUFFIXES:
        formats = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise RejectedFile(name, f"not a supported format ({formats}); nothing was saved")
    limit, setting = max_bytes, "MARGINALIA_MAX_FILE_MB"
    if suffix in DOCUMENT_SUFFIXES and max_document_bytes is not None:
        limit, setting = max_document_bytes, "MARGINALIA_MAX_DOCUMENT_MB"
    if len(data) > limit:
        raise RejectedFile(
            name, f"{_size(len(data))} is over the {_size(limit)} limit ({setting}); split or shorten it"
        )
    if not data.strip():
        raise RejectedFile(name, "empty file; nothing to index")
    folder = corpus_dir / UPLOAD_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    target, same = _free_path(folder, filename, data)
    rel = target.relative_to(corpus_dir).as_posix()
    if same:
        return Saved(name, rel, f"already in the corpus as {rel}; nothing changed")
    # Written under a hidden name and renamed, so an ingest never reads a half-written essay.
    partial = folder / f".{target.name}.part"
    partial.write_bytes(data)
    os.replace(partial, target)
    note = ""
    if target.name != filename:
        note = f"another essay is already called {filename}; saved as {rel}"
    elif filename != name:
        note = f"saved as {rel}"
    return Saved(name, rel, note)


def _free_path(folder: Path, filename: str, data: bytes) -> tuple[Path, bool]:
    """Where to write (the name, or name-2, name-3 ...), and whether those very bytes are already there."""
    stem, suffix = Path(filename).stem, Path(filename).suffix
    for n in range(1, 1000):
        candidate = folder / (filename if n == 1 else f"{stem}-{n}{suffix}")
        if not candidate.exists():
            return candidate, False
        if candidate.is_file() and candidate.read_bytes() == data:
            return candidate, True
    raise RejectedFile(filename, "too many uploads share this name; rename the file and upload it again")


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MB" if n >= 104858 else f"{n / 1024:.1f} KB"


def discard(corpus_dir: Path, path: str) -> None:
    """Remove an upload the ingest rejected, so it is not rejected again on every reindex."""
    target = (corpus_dir / path).resolve()
    if target.parent == (corpus_dir / UPLOAD_FOLDER).resolve() and target.is_file():
        target.unlink()
