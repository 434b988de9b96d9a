"""Marginalia in the browser: `streamlit run app.py`. Layout and session state only; the work is in
ingest/ (building the index) and retrieval/ (answering).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ingest.embed import BackgroundEmbedder, load_embedder
from ingest.errors import MarginaliaError
from ingest.pipeline import catalog_path, index_outdated
from ingest.settings import Settings
from retrieval.assistant import Assistant
from ui import indexing, sidebar
from ui.cards import show_answer
from ui.conversation import respond, turns
from ui.markup import escape

# A local icon: a :material/...: page icon would be fetched from Google's servers by every browser.
ICON = str(Path(__file__).resolve().parent / "assets" / "icon.png")
st.set_page_config(page_title="Marginalia", page_icon=ICON, layout="centered")
# The chat's avatar is drawn from Streamlit's own icon font: an image file would be read, hashed and
# registered as a media file again for every message of the conversation on every run.
AVATAR = ":material/menu_book:"


@st.cache_resource(show_spinner="Opening the index…")
def open_assistant(settings: Settings) -> Assistant:
    """One Assistant per index, shared by every session; a reindex is picked up by refresh().

    The model loads in the background meanwhile, so the page and the chat box show at once.
    """
    embedder = BackgroundEmbedder(lambda: load_embedder(settings), settings.embed_model)
    return Assistant(settings, embedder=embedder)


try:
    settings = Settings.from_env()
except MarginaliaError as err:
    st.error(escape(str(err)), icon=":material/settings:")
    st.stop()

st.session_state.setdefault("answers", [])

outdated = index_outdated(settings)
if not catalog_path(settings).exists() or outdated:
    st.title(":material/menu_book: Marginalia")
    if outdated and settings.read_only:
        st.error(
            "The index was made by an older version of Marginalia; rebuild it with `python -m ingest`.",
            icon=":material/error:",
        )
        st.stop()
    what = "Rebuilding the index, made by an older version," if outdated else "Building the index"
    st.markdown(f"{what} of the essays in {escape(str(settings.corpus_dir))}. This happens once.")
    outcome = indexing.reindex(settings)
    if outcome.summary is None:
        indexing.show(outcome)
        st.stop()
    st.session_state.outcome = st.session_state.built = outcome
    open_assistant.clear()  # an index rebuilt from nothing must not be read through a stale Assistant
    st.rerun()

try:
    assistant = open_assistant(settings)
    assistant.refresh()  # cheap; picks up a reindex from the command line or another session
except MarginaliaError as err:
    st.error(escape(str(err)), icon=":material/error:")
    st.stop()

stats = assistant.stats()
with st.sidebar:
    st.title(":material/menu_book: Marginalia")
    st.caption("Questions about the essays, answered with checked quotes.")
    # New chat and Download are drawn last (see the end), so the download holds this run's answer.
    actions = st.empty()
    sidebar.corpus(stats)
    filters = sidebar.filters(stats)
    mode = sidebar.answer_mode(settings)
    sidebar.upkeep(settings, assistant)

if (built := st.session_state.pop("built", None)) and stats.essays:
    st.success(
        f"Index built: {stats.essays} essays, {stats.chunks} passages ({built.summary.seconds:.0f} s).",
        icon=":material/check_circle:",
    )

answers = st.session_state.answers
intro = st.empty()
if not answers:
    with intro.container():
        st.markdown("### Ask the essays")
        if stats.essays:
            st.markdown(
                f"Answers quote the {stats.essays} essays directly. Each quote is numbered, shown in its "
                "passage and checked word for word against the essay; follow-up questions build on the "
                "conversation."
            )
        else:
            # Questions still work (each is refused), so the chat stays; the notice says how to fill it.
            then = "run `python -m ingest`" if settings.read_only else "press Reindex, or upload essays"
            st.info(
                f"The corpus is empty: no essays are indexed from {escape(str(settings.corpus_dir))}. "
                f"Add essays to that folder and {then}.",
                icon=":material/info:",
            )

for n, answer in enumerate(answers):
    with st.chat_message("user", avatar=":material/person:"):
        st.markdown(escape(answer.question))
    with st.chat_message("assistant", avatar=AVATAR):
        show_answer(answer, key=f"a{n}", assistant=assistant)

if question := st.chat_input("Ask about the essays…"):
    intro.empty()
    with st.chat_message("user", avatar=":material/person:"):
        st.markdown(escape(question))
    with st.chat_message("assistant", avatar=AVATAR):
        try:
            assistant.refresh()
            answer = respond(assistant, question, turns(answers), filters=filters, mode=mode)
        except MarginaliaError as err:
            st.error(escape(str(err)), icon=":material/error:")
        else:
            # Drawn in place, not by a rerun: a second run of the whole script per question cost
            # every session on the server its share of the interpreter (8 sessions asking at once).
            show_answer(answer, key=f"a{len(answers)}", assistant=assistant)
            answers.append(answer)

with actions.container():
    sidebar.chat_actions()
