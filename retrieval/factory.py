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


def extractive_answerer(source: Source, model: Model) -> ExtractiveAnswerer:
    """The extractive answerer over a source's essays and keyword index, scoring with `model`."""
    keyword = source.keyword
    return ExtractiveAnswerer(
        essay_text=source.essay_text,
        idf=keyword.idf,
        model=model,
        is_name=keyword.names.__contains__,
        known=lambda t: keyword.df.get(t, 0) > 0,
    )


def make_answerer(mode: str, assistant: Source) -> Answerer:
    """Build the answerer for a mode; LLM modes fall back to the extractive one on faults."""
    extractive = extractive_answerer(assistant, Model.load(calibration(assistant.settings.embed_model)))
    if mode == "extractive":
        return extractive
    if mode in {"openai", "ollama"}:
        from dataclasses import replace

        from retrieval.llm import LLMAnswerer  # lazy: LangChain chat models load only when used

        settings = replace(assistant.settings, answer_mode=mode)
        return LLMAnswerer(settings, essay_text=assistant.essay_text, fallback=extractive)
    raise SettingsError(f"unknown answer mode {mode!r}; use one of {', '.join(MODES)}")
