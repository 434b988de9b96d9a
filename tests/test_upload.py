"""Uploaded files land under corpus/uploads with safe names, never outside it, never over another essay."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import RejectedFile
from ui.upload import discard, safe_name, save_upload

LIMIT = 1024


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("essay.md", "essay.md"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\evil.TXT", "evil.txt"),
        ("/abs/path/On Studies (1625).md", "On-Studies-1625.md"),
        (".hidden.md", "hidden.md"),
        ("...", "essay"),
        ("Émile – ou de l’éducation.html", "Emile-ou-de-leducation.html"),
        ("a" * 300 + ".txt", "a" * 80 + ".txt"),
        ("no-suffix", "no-suffix"),
    ],
)
def test_safe_name(sent: str, kept: str) -> None:
    assert safe_name(sent) == kept


def test_saved_under_uploads_whatever_the_name(tmp_path: Path) -> None:
    saved = save_upload(tmp_path, "../../outside.md", b"# Title\n\nText.", max_bytes=LIMIT)
    assert saved.path == "uploads/outside.md"
    assert (tmp_path / "uploads/outside.md").read_bytes() == b"# Title\n\nText."
    assert not (tmp_path.parent / "outside.md").exists()
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == ["outside.md"], "no partial file is left"


def test_a_taken_name_gets_a_new_one_and_the_same_bytes_change_nothing(tmp_path: Path) -> None:
    first = save_upload(tmp_path, "essay.md", b"one", max_bytes=LIMIT)
    second = save_upload(tmp_path, "essay.md", b"two", max_bytes=LIMIT)
    again = save_upload(tmp_path, "essay.md", b"two", max_bytes=LIMIT)
    assert (first.path, second.path, again.path) == (
        "uploads/essay.md",
        "uploads/essay-2.md",
        "uploads/essay-2.md",
    )
    assert "saved as uploads/essay-2.md" in second.note
    assert again.note == "already in the corpus as uploads/essay-2.md; nothing changed"
    assert (tmp_path / "uploads/essay.md").read_bytes() == b"one"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.odt", b"PK\x03\x04", "not a supported format"),
        ("big.txt", b"x" * (LIMIT + 1), "1.0 KB is over the 1.0 KB limit (MARGINALIA_MAX_FILE_MB)"),
        ("blank.md", b" \n\t\n", "empty file; nothing to index"),
    ],
)
def test_rejections_say_why_and_save_nothing(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    with pytest.raises(RejectedFile) as err:
        save_upload(tmp_path, name, data, max_bytes=LIMIT)
    assert reason in err.value.reason
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


def test_discard_only_touches_uploads(tmp_path: Path) -> None:
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads/bad.txt").write_bytes(b"\x00")
    (tmp_path / "keep.txt").write_text("essay")
    discard(tmp_path, "uploads/bad.txt")
    discard(tmp_path, "keep.txt")
    discard(tmp_path, "uploads/../keep.txt")
    assert not (tmp_path / "uploads/bad.txt").exists()
    assert (tmp_path / "keep.txt").exists()
