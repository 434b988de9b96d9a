"""The sidebar: chat actions, the corpus at a glance, retrieval filters, the answer mode, corpus upkeep."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from functools import partial

import streamlit as st

from ingest.errors import RejectedFile
from ingest.load import SUPPORTED_SUFFIXES
from ingest.settings import Settings
from retrieval.assistant import Assistant, CorpusStats
from retrieval.factory import MODES
from retrieval.snapshot import Filters
from ui import indexing
from ui.conversation import transcript
from ui.markup import escape
from ui.upload import discard, save_upload

LLM_MODES = tuple(m for m in MODES if m != "extractive")


def chat_actions() -> None:
    """New chat and Download chat."""
    answers = st.session_state.answers
    new, download = st.columns(2)
    if new.button("New chat", icon=":material/add_comment:", width="stretch", disabled=not answers):
        st.session_state.answers = []
        st.rerun()
    # The transcript is made when the button is clicked, not on every run: data given whole is
    # registered with Streamlit's media files on every script run of every session.
    download.download_button(
        "Download",
        partial(transcript, tuple(answers)),
        file_name="marginalia-chat.md",
        mime="text/markdown",
        icon=":material/download:",
        width="stretch",
        disabled=not answers,
        on_click="ignore",
        help="The conversation as Markdown, with numbered sources",
    )


def corpus(stats: CorpusStats) -> None:
    """Collections, essays, passages and when the index last changed."""
    st.subheader("Corpus", divider="gray")
    essays, passages = st.columns(2)
    essays.metric("Essays", stats.essays)
    passages.metric("Passages", stats.chunks)
    if stats.collections:
        st.caption(" · ".join(f"{escape(name)} {count}" for name, count in stats.collections.items()))
    if stats.last_indexed:
        st.caption(f"Last indexed {_ago(stats.last_indexed)}")


def filters(stats: CorpusStats) -> Filters:
    """Filters that restrict retrieval to some collections, authors or essays."""
    st.subheader("Search in", divider="gray")
    collections = st.multiselect(
        "Collections", list(stats.collections), key="f_collections", placeholder="All collections"
    )
    authors = st.multiselect("Authors", list(stats.authors), key="f_authors", placeholder="All authors")
    essays = st.multiselect(
        "Essays",
        list(stats.titles),
        key="f_essays",
        placeholder="All essays",
        format_func=lambda essay_id: stats.titles.get(essay_id, essay_id),
    )
    chosen = Filters(tuple(collections), tuple(authors), tuple(essays))
    if chosen:
        st.caption(":material/filter_alt: Answers come only from the selected essays.")
    return chosen


def answer_mode(settings: Settings) -> str:
    """Extractive always; an LLM backend once its endpoint and model are configured."""
    st.subheader("Answers", divider="gray")
    ready = bool(settings.llm_base_url and settings.llm_model)
    labels = {"extractive": "Extractive: quotes the essays"}
    backends = {"openai": "OpenAI-compatible", "ollama": "Ollama"}
    labels |= {
        m: f"Generative: {settings.llm_model if ready else 'LLM'} ({backends.get(m, m)})" for m in LLM_MODES
    }
    usable = [m for m in LLM_MODES if not ready or settings.answer_mode in ("extractive", m)]
    options = ["extractive", *usable]
    default = settings.answer_mode if ready and settings.answer_mode in options else "extractive"
    mode = st.radio(
        "Answer mode",
        options,
        index=options.index(default),
        format_func=labels.get,
        disabled=not ready,
        key="mode",
        label_visibility="collapsed",
    )
    if not ready:
        st.caption("Generative answers need MARGINALIA_LLM_BASE_URL and MARGINALIA_LLM_MODEL.")
    return mode if ready else "extractive"


def upkeep(settings: Settings, assistant: Assistant) -> None:
    """Reindex and upload, unless the deployment is read only; the last run's summary below."""
    st.subheader("Manage", divider="gray")
    if settings.read_only:
        st.caption(":material/lock: Read-only deployment: uploads and reindexing are off.")
        return
    if st.button("Reindex", icon=":material/sync:", help="Index what changed in the corpus folder"):
        _finish(assistant, indexing.reindex(_for_app(settings)))
    with st.form("upload", clear_on_submit=True, border=False):
        files = st.file_uploader(
            "Add essays",
            type=sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES),
            accept_multiple_files=True,
            max_upload_size=max(1, math.ceil(max(settings.max_file_mb, settings.max_document_mb))),
            help=f"Plain text, Markdown or HTML up to {settings.max_file_mb:g} MB each; PDF, EPUB or "
            f"Word (.docx) up to {settings.max_document_mb:g} MB. They are saved in the corpus folder "
            "under uploads/ and indexed at once.",
        )
        if st.form_submit_button("Upload and index", icon=":material/upload:") and files:
            _upload(settings, assistant, files)
    outcome = st.session_state.get("outcome")
    if outcome is not None:
        indexing.show(outcome)


def _upload(settings: Settings, assistant: Assistant, files: list) -> None:
    notes, unsaved, saved = [], [], []
    for f in files:
        try:
            kept = save_upload(
                settings.corpus_dir,
                f.name,
                f.getvalue(),
                max_bytes=settings.max_file_bytes,
                max_document_bytes=settings.max_document_bytes,
            )
        except RejectedFile as err:
            unsaved.append(f"{f.name} was not saved: {err.reason}")
            continue
        saved.append(kept.path)
        if kept.note:
            notes.append(f"{f.name}: {kept.note}")
    if not saved:
        st.session_state.outcome = indexing.Outcome(None, notes=tuple(notes), unsaved=tuple(unsaved))
        st.rerun()
    outcome = replace(indexing.reindex(_for_app(settings), notes=tuple(notes)), unsaved=tuple(unsaved))
    for rejected in outcome.summary.rejected if outcome.summary else []:
        if rejected["path"] in saved:
            discard(settings.corpus_dir, rejected["path"])
            rejected["reason"] += " (the upload was removed from the corpus)"
    _finish(assistant, outcome)


def _finish(assistant: Assistant, outcome: indexing.Outcome) -> None:
    assistant.refresh()
    st.session_state.outcome = outcome
    st.rerun()


def _for_app(settings: Settings) -> Settings:
    # A person is waiting on the page: give up on a busy index sooner than the command line does.
    return replace(settings, lock_timeout=min(settings.lock_timeout, 10.0))


def _ago(when: float) -> str:
    seconds = max(0, time.time() - when)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(when))
    if seconds < 90:
        return f"just now ({stamp})"
    if seconds < 5400:
        return f"{seconds / 60:.0f} minutes ago ({stamp})"
    if seconds < 129600:
        return f"{seconds / 3600:.0f} hours ago ({stamp})"
    return stamp
