"""Answerers chosen by name: 'extractive' (default, offline) or an LLM backend ('openai', 'ollama')."""

from __future__ import annotations

from typing import Protocol

from ingest.errors import SettingsError
from ingest.keyword import KeywordIndex
from ingest.settings import Settings
from retrieval.extractive import ExtractiveAnswerer
from retrieval.support import Model, calibration
from retrieval.types import Answerer

MODES = ("extractive", "openai", "ollama")


class Source(Protocol):
    """What an answerer reads: the settings, the essays' texts and the keyword index's word weights
    (an Assistant, or one View of its index)."""

    settings: Settings
    keyword: KeywordIndex

    def essay_text(self, essay_id: str) -> str | None: ...


def make_answerer(mode: str, assistant: Source) -> Answerer:
    """Build the answerer for a mode; LLM modes fall back to the extractive one on faults."""
    model = Model.load(calibration(assistant.settings.embed_model))
    extractive = ExtractiveAnswerer(
        essay_text=assistant.essay_text,
        idf=assistant.keyword.idf,
        model=model,
        is_name=assistant.keyword.names.__contains__,
        known=lambda t: assistant.keyword.df.get(t, 0) > 0,
    )
    if mode == "extractive":
        return extractive
    if mode in {"openai", "ollama"}:
        from dataclasses import replace

        from retrieval.llm import LLMAnswerer  # lazy: LangChain chat models load only when used

        settings = replace(assistant.settings, answer_mode=mode)
        return LLMAnswerer(settings, essay_text=assistant.essay_text, fallback=extractive)
    raise SettingsError(f"unknown answer mode {mode!r}; use one of {', '.join(MODES)}")
