"""The chat in session state: earlier answers as Turns for follow-ups, and the Markdown download."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

import streamlit as st

from ingest.embed import BackgroundEmbedder
from retrieval.assistant import Assistant
from retrieval.record import answer_markdown
from retrieval.snapshot import Filters
from retrieval.types import Answer, Turn, turn_of
from ui.markup import escape


def turns(answers: Sequence[Answer]) -> list[Turn]:
    """The conversation so far, as the assistant reads it for a follow-up question."""
    return [turn_of(a) for a in answers]


def transcript(answers: Sequence[Answer]) -> str:
    """The whole chat as Markdown: each question, its answer and its numbered sources."""
    parts = [f"# Marginalia conversation ({time.strftime('%Y-%m-%d %H:%M')})", ""]
    for n, answer in enumerate(answers, 1):
        parts += [f"## {n}. {answer.question}", "", answer_markdown(answer), ""]
    return "\n".join(parts)


def respond(
    assistant: Assistant, question: str, history: Sequence[Turn], *, filters: Filters, mode: str
) -> Answer:
    """Answer a question; an LLM's reply is shown as it arrives, always as inert text."""
    embedder = assistant.embedder
    if isinstance(embedder, BackgroundEmbedder) and not embedder.ready:
        with st.spinner("Loading the embedding model (only the first question waits for it)…"):
            embedder.wait()
    stream_ask = getattr(assistant, "ask_stream", None)
    if mode == "extractive" or stream_ask is None:
        with st.spinner("Reading the essays…"):
            return assistant.ask(question, history, filters=filters, mode=mode)
    with st.spinner("Reading the essays…"):
        pieces, finish = stream_ask(question, history, filters=filters, mode=mode)
    placeholder = st.empty()
    with placeholder:
        # Model output may echo essay text, so it is escaped like essay text before it is shown.
        st.write_stream(_escaped(pieces))
    answer = finish()
    placeholder.empty()  # the finished answer, with its markers checked, takes the draft's place
    return answer


def _escaped(pieces: Iterable[str]) -> Iterator[str]:
    """Escaped text, held back to the last space so an escape never splits a URL or a shortcode."""
    pending = ""
    for piece in pieces:
        pending += piece
        cut = max(pending.rfind(" "), pending.rfind("\n")) + 1
        if cut:
            yield escape(pending[:cut])
            pending = pending[cut:]
    if pending:
        yield escape(pending)
