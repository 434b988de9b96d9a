"""Settings: environment parsing, clear errors, and docs/settings.md kept in step."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PROJECT_DIR

from ingest.errors import SettingsError
from ingest.settings import Settings, describe


def test_environment_then_overrides() -> None:
    env = {"MARGINALIA_TOP_K": "7", "MARGINALIA_READ_ONLY": "yes", "MARGINALIA_INDEX_DIR": "/tmp/x"}
    s = Settings.from_env(env=env, top_k=None, chroma_port=9000)
    assert (s.top_k, s.read_only, s.index_dir, s.chroma_port) == (7, True, Path("/tmp/x"), 9000)


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="MARGINALIA_TOP_K='many'"):
        Settings.from_env(env={"MARGINALIA_TOP_K": "many"})


def test_unknown_choice_lists_the_allowed_ones() -> None:
    with pytest.raises(SettingsError, match="MARGINALIA_EMBED_BACKEND='onnx' is not one of openvino, torch"):
        Settings.from_env(env={"MARGINALIA_EMBED_BACKEND": "onnx"})


def test_docs_list_every_setting_with_its_default() -> None:
    page = (PROJECT_DIR / "docs" / "settings.md").read_text()
    for name, default, _ in describe():
        assert f"| `{name}` | `{default}` |" in page, name
