"""Answerers chosen by name: 'extractive' (default, offline) or an LLM backend ('openai', 'ollama')."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.errors import SettingsError
from retrieval.extractive import ExtractiveAnswerer
from retrieval.support import Model, calibration
from retrieval.types import Answerer

if TYPE_CHECKING:
    from retrieval.assistant import Assistant

MODES = ("extractive", "openai", "ollama")


def make_answerer(mode: str, assistant: Assistant) -> Answerer:
    """Build the answerer for a mode; LLM modes fall back to the extractive one on faults."""
    model = Model.load(calibration(assistant.settings.embed_model))
    extractive = ExtractiveAnswerer(
        essay_text=assistant.essay_text,
        idf=assistant.keyword.idf,
        model=model,
        is_name=assistant.keyword.names.__contains__,
    )
    if mode == "extractive":
        return extractive
    if mode in {"openai", "ollama"}:
        from dataclasses import replace

        from retrieval.llm import LLMAnswerer  # lazy: LangChain chat models load only when used

        settings = replace(assistant.settings, answer_mode=mode)
        return LLMAnswerer(settings, essay_text=assistant.essay_text, fallback=extractive)
    raise SettingsError(f"unknown answer mode {mode!r}; use one of {', '.join(MODES)}")
