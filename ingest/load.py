"""Find the corpus files and turn one of them into an Essay: read, decode, clean, and read its metadata."""

from __future__ import annotations

import codecs
import fnmatch
import logging
import os
import re
from pathlib import Path

from ingest import html
from ingest.clean import normalise, rejoin_wrapped, repair_mojibake, strip_remnants, unmark
from ingest.document import DOCUMENT_SUFFIXES, Part, read_document
from ingest.errors import RejectedFile, SkippedFile
from ingest.essay import Essay, content_hash
from ingest.frontmatter import split_front_matter

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm"}) | DOCUMENT_SUFFIXES
IGNORE_FILE = ".marginaliaignore"
_FORMATS = ".txt, .md, .markdown, .html, .htm, .pdf, .epub, .docx"
_MB = 1024 * 1024

_BINARY_MAGIC = (
    b"\x89PNG",
    b"%PDF-",
    b"PK\x03\x04",
    b"\xff\xd8\xff",
    b"GIF8",
    b"\x7fELF",
    b"Rar!",
    b"7z\xbc\xaf",
)
# UTF-32's little-endian mark starts with UTF-16's, so it is tried first.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (codecs.BOM_UTF8, "utf-8-sig"),
)
_TEXT_CONTROLS = frozenset(b"\t\n\r\x0c\x1b")
# The other C0 controls, which text seldom holds: counted with bytes.translate, in C.
_OTHER_CONTROLS = bytes(b for b in range(32) if b not in _TEXT_CONTROLS)
# Windows-1252 leaves five bytes undefined; they decode as their Latin-1 code points instead of failing.
_CP1252 = {b: bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(0x80, 0xA0)}
_HEADING = re.compile(r"#{1,6}\s+(.*?)(?:\s+#+)?")
_ITEM = re.compile(r"\s*(?:[-*+•]|\d{1,3}[.)])\s")


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every regular file under corpus_dir, sorted, leaving out hidden names and .marginaliaignore matches."""
    patterns = _ignore_patterns(corpus_dir / IGNORE_FILE)
    found: list[Path] = []
    for root, dirs, files in os.walk(corpus_dir):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        for name in files:
            path = Path(root, name)
            rel = path.relative_to(corpus_dir).as_posix()
            if not name.startswith(".") and path.is_file() and not _ignored(rel, patterns):
                found.append(path)
    return sorted(found)


def _ignore_patterns(ignore_file: Path) -> list[str]:
    if not ignore_file.is_file():
        return []
    lines = (line.strip() for line in ignore_file.read_text(encoding="utf-8-sig").splitlines())
    return [line.lstrip("/").rstrip("/") for line in lines if line and not line.startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    """True when the path, or a folder it is in, matches a pattern (so "drafts" ignores drafts/*)."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(prefix, pattern) for pattern in patterns for prefix in prefixes)


def load_essays(
    path: Path, corpus_dir: Path, *, max_bytes: int, max_document_bytes: int | None = None
) -> list[Essay]:
    """The essays in one corpus file: one, or an EPUB's chapters; RejectedFile says why there are none.

    `max_bytes` limits a text file and the text taken from a document; `max_document_bytes` limits
    a PDF, EPUB or Word file itself (they carry fonts and images: far more bytes than text).
    """
    suffix = path.suffix.lower()
    if suffix not in DOCUMENT_SUFFIXES:
        return [load_essay(path, corpus_dir, max_bytes=max_bytes)]
    essay_id = _essay_id(path, corpus_dir)
    limit = max_bytes if max_document_bytes is None else max_document_bytes
    raw = _read(path, essay_id, limit, setting="MARGINALIA_MAX_DOCUMENT_MB")
    if not raw:
        raise SkippedFile(essay_id, "empty file; nothing to index")
    essays = [_document_essay(part, path, essay_id, raw) for part in read_document(suffix, raw, essay_id)]
    text_bytes = sum(len(e.text.encode("utf-8")) for e in essays)
    if text_bytes > max_bytes:
        raise RejectedFile(
            essay_id,
            f"its text is {_size(text_bytes)}, over the {_size(max_bytes)} limit (MARGINALIA_MAX_FILE_MB); "
            "split it",
        )
    return essays


def _document_essay(part: Part, path: Path, essay_id: str, raw: bytes) -> Essay:
    # A PDF's text is final (its page offsets point into it); other documents get the usual cleaning.
    text = part.text if part.page_starts else strip_remnants(normalise(part.text))
    if not text.strip():
        raise SkippedFile(essay_id, "no text in this document; nothing to index")
    folder = essay_id.split("/")[0] if "/" in essay_id else ""
    return Essay(
        id=f"{essay_id}#{part.key}" if part.key else essay_id,
        title=part.title or _first_line_title(text) or _pretty(path),
        text=text,
        author=part.author,
        year=part.year,
        # A book's chapters are a collection of their own, unless a folder already makes one.
        collection=folder or part.meta.get("book", ""),
        source_hash=content_hash(raw),
        meta=dict(part.meta),
        page_starts=part.page_starts,
    )


def load_essay(
    path: Path, corpus_dir: Path, *, max_bytes: int, max_document_bytes: int | None = None
) -> Essay:
    """Read one corpus file into a clean Essay; RejectedFile or SkippedFile say why it cannot be.

    A file that holds several essays (an EPUB's chapters) needs load_essays.
    """
    essay_id = _essay_id(path, corpus_dir)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise RejectedFile(essay_id, f"not a supported format ({_FORMATS}); skipped")
    if suffix in DOCUMENT_SUFFIXES:
        essays = load_essays(path, corpus_dir, max_bytes=max_bytes, max_document_bytes=max_document_bytes)
        if len(essays) != 1:
            raise ValueError(f"{essay_id} holds {len(essays)} essays; read it with load_essays")
        return essays[0]
    raw = _read(path, essay_id, max_bytes)
    if not raw:
        raise SkippedFile(essay_id, "empty file; nothing to index")
    text, encoding = decode(raw, essay_id)
    text = normalise(repair_mojibake(text))
    if not text.strip():
        raise SkippedFile(essay_id, "only whitespace; nothing to index")
    text, meta = _body(suffix, text, essay_id)
    text = strip_remnants(normalise(text))
    if not text.strip():
        raise SkippedFile(essay_id, "no essay text left after cleaning; nothing to index")
    return Essay(
        id=essay_id,
        title=meta.pop("title", "") or _first_line_title(text) or _pretty(path),
        text=text,
        author=meta.pop("author", "") or meta.pop("authors", ""),
        year=_year(meta.pop("year", "") or meta.get("date", "")),
        collection=essay_id.split("/")[0] if "/" in essay_id else "",
        source_hash=content_hash(raw),
        meta={**meta, "source_encoding": encoding},
    )


def _body(suffix: str, text: str, essay_id: str) -> tuple[str, dict[str, str]]:
    """The essay text with block markers, and the metadata the file itself states."""
    if suffix in (".html", ".htm"):
        try:
            page = html.extract(text)
        except RecursionError as err:
            reason = "HTML nested too deeply to read; save the article as plain text or Markdown"
            raise RejectedFile(essay_id, reason) from err
        return page.text, {"title": page.title, "author": page.author, "year": page.year}
    if suffix == ".txt":
        return rejoin_wrapped(text), {}
    meta, body = split_front_matter(text, name=essay_id)
    return unmark(body), meta


def _essay_id(path: Path, corpus_dir: Path) -> str:
    try:
        return path.relative_to(corpus_dir).as_posix()
    except ValueError:
        try:
            return path.resolve().relative_to(corpus_dir.resolve()).as_posix()
        except ValueError:
            return path.name


def _read(path: Path, essay_id: str, max_bytes: int, *, setting: str = "MARGINALIA_MAX_FILE_MB") -> bytes:
    # Size is checked before reading so a huge file never lands in memory; the bounded read
    # catches a file that grows between the two calls.
    try:
        size = path.stat().st_size
        if size <= max_bytes:
            with path.open("rb") as handle:
                raw = handle.read(max_bytes + 1)
            if len(raw) <= max_bytes:
                return raw
            size = max(size, len(raw))
    except OSError as err:
        raise RejectedFile(
            essay_id, f"cannot be read ({err.strerror or err}); check it exists and is readable"
        ) from err
    raise RejectedFile(
        essay_id,
        f"{_size(size)} is over the {_size(max_bytes)} limit ({setting}); split or shorten it",
    )


def _size(n: int) -> str:
    if n >= _MB / 10:
        return f"{n / _MB:.1f} MB"
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} bytes"


def decode(raw: bytes, name: str = "") -> tuple[str, str]:
    """Text and the encoding it was read as: BOMs, UTF-8 (even cut short), else Windows-1252."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return _strict(raw, encoding, name), encoding
    if raw.startswith(b"\x1f\x8b"):
        raise RejectedFile(name, "gzip-compressed; decompress it first")
    if wide := _bomless_utf16(raw[:4096]):
        return _strict(raw, wide, name), wide
    if raw.startswith(_BINARY_MAGIC) or _looks_binary(raw[:8192]):
        raise RejectedFile(name, "not a text file (binary data)")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as err:
        # An interrupted download ends inside a multi-byte character: keep what arrived whole.
        if err.end == len(raw) and err.reason == "unexpected end of data":
            log.warning("%s: ends inside a UTF-8 character (cut short?); indexing the complete part", name)
            return raw[: err.start].decode("utf-8"), "utf-8 (truncated)"
    log.info("%s: not UTF-8; read as Windows-1252", name)
    return raw.decode("latin-1").translate(_CP1252), "cp1252"


def _strict(raw: bytes, encoding: str, name: str) -> str:
    if encoding.startswith("utf-16") and len(raw) % 2:
        raw = raw[:-1]  # an odd byte count is a cut-short file; the last half character is lost anyway
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise RejectedFile(name, f"not valid {encoding} text ({err.reason}); re-save it as UTF-8") from err


def _bomless_utf16(sample: bytes) -> str | None:
    """UTF-16 without a byte-order mark: ASCII text with a NUL in every other byte."""
    half = len(sample) // 2
    if half < 8:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > 0.9 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.9 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def _looks_binary(sample: bytes) -> bool:
    controls = len(sample) - len(sample.translate(None, _OTHER_CONTROLS))
    return b"\x00" in sample or controls > len(sample) * 0.02


def _first_line_title(text: str) -> str:
    """The first line when it reads as a title: a Markdown heading, or short with no closing full stop."""
    first = text.lstrip().split("\n", 1)[0].strip()
    if heading := _HEADING.fullmatch(first):
        return heading.group(1).strip()
    if first == text.strip() or len(first) > 150 or len(first.split()) > 25 or _ITEM.match(first):
        return ""
    # A sentence ends in a full stop or runs on; a title does neither ("...Avoided? Part Two" is fine).
    return "" if first.endswith((".", ",", ";", ":")) else first.strip("*_ ")


def _pretty(path: Path) -> str:
    """A title made from a file name: "01-of-truth.md" becomes "Of truth"."""
    words = re.sub(r"^[\d\s._-]+(?=\D)", "", path.stem)
    words = re.sub(r"[-_.\s]+", " ", words).strip() or path.stem
    return words[:1].upper() + words[1:]


def _year(value: str) -> str:
    found = re.search(r"\b(1[0-9]{3}|20[0-9]{2})\b", value)
    return found.group(1) if found else ""
