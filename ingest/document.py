"""Essays kept as documents (PDF, EPUB, Word): what their text extractors share, and the dispatch to them."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field

from ingest.errors import RejectedFile

DOCUMENT_SUFFIXES = frozenset({".pdf", ".epub", ".docx"})
#: Zip archives (EPUB, DOCX) are checked before any parser sees them: a few KB can unpack to gigabytes.
MAX_UNPACKED = 256 * 1024 * 1024
MAX_ENTRIES = 10_000

_JUNK_TITLE = re.compile(
    r"microsoft (?:word|powerpoint) - .*|untitled.*|document\d*|.*\.(?:docx?|pdf|tex|dvi|rtf|odt|indd)",
    re.IGNORECASE,
)
_YEAR = re.compile(r"(1[0-9]{3}|20[0-9]{2})")


@dataclass(frozen=True)
class Part:
    """One essay's text taken from a document, and what the file says about it.

    `page_starts[i]` is the offset in `text` where page i + 1 begins (empty when the format has
    no pages); `key` tells apart the essays of a file that holds several (an EPUB's chapters).
    """

    text: str
    title: str = ""
    author: str = ""
    year: str = ""
    page_starts: tuple[int, ...] = ()
    key: str = ""
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


def read_document(suffix: str, data: bytes, name: str) -> list[Part]:
    """The essays in a PDF, EPUB or DOCX file; RejectedFile says, in one line, why there are none."""
    # Imported here: each parser is loaded only when a corpus holds its format.
    if suffix == ".pdf":
        from ingest import pdf

        return [pdf.extract(data, name)]
    if suffix == ".epub":
        from ingest import epub

        check_zip(data, name, "EPUB")
        return epub.extract(data, name)
    if suffix == ".docx":
        from ingest import word

        check_zip(data, name, "Word document")
        return [word.extract(data, name)]
    raise ValueError(f"{suffix} is not a document format")


def check_zip(data: bytes, name: str, kind: str) -> None:
    """Reject a zip archive whose entry count or declared unpacked size is out of bounds.

    Python's zipfile never returns more than an entry's declared size (a larger stream fails its
    CRC check), so bounding the declared sizes bounds what any parser can unpack.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise RejectedFile(
            name, f"not a valid {kind} (not a readable zip archive); re-save or re-export it"
        ) from err
    if len(entries) > MAX_ENTRIES:
        raise RejectedFile(
            name, f"{kind} holds {len(entries):,} files, over the {MAX_ENTRIES:,} allowed; not read"
        )
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > MAX_UNPACKED:
        raise RejectedFile(
            name,
            f"{kind} would unpack to {unpacked / 2**20:,.0f} MB, over the {MAX_UNPACKED // 2**20} MB "
            "allowed (a zip bomb?); not read",
        )


def clean_title(value: str) -> str:
    """A title from file metadata, or "" when it is a tool's placeholder ("Microsoft Word - x.docx")."""
    value = " ".join(value.split())
    return "" if not value or _JUNK_TITLE.fullmatch(value) else value


def first_line(err: BaseException) -> str:
    """An exception's message cut to one short line, for a rejection reason."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:120]


def year_of(value: str) -> str:
    """The year in a metadata date ("D:20190304…", "2019-03-04", "1841")."""
    found = _YEAR.search(value or "")
    return found.group(1) if found else ""
