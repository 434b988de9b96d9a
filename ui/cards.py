"""An answer on the page: its text with [n] badges, one card per source, refusals, and the essay reader."""

from __future__ import annotations

import streamlit as st

from retrieval.assistant import Assistant
from retrieval.types import Answer, Citation, Passage
from ui.markup import Mark, answer_text, escape, highlighted, inert

VERIFIED = ":green-badge[:material/verified: quote verified]"
UNVERIFIED = ":orange-badge[:material/warning: quote not verified]"


def show_answer(answer: Answer, *, key: str, assistant: Assistant) -> None:
    """An answer, or a refusal with the closest passages, and the cards that back it."""
    if answer.notice:
        st.info(escape(answer.notice), icon=":material/info:")
    if answer.refused:
        st.warning(escape(answer.text), icon=":material/search_off:")
        if answer.passages:
            st.caption("Closest passages — none of them says enough to answer:")
            for n, passage in enumerate(answer.passages, 1):
                passage_card(passage, n=n, key=f"{key}-p{n}", assistant=assistant)
        return
    st.markdown(answer_text(answer.text, (c.number for c in answer.citations)))
    if answer.standalone and answer.standalone != answer.question:
        st.caption(f":material/history: Read with the conversation as: {escape(answer.standalone)}")
    if answer.citations:
        st.caption("Sources")
    for citation in answer.citations:
        source_card(citation, key=f"{key}-c{citation.number}", assistant=assistant)


def source_card(citation: Citation, *, key: str, assistant: Assistant) -> None:
    """Number, title, author and year, the quote highlighted in its passage, and whether it was verified."""
    passage = citation.passage
    with st.container(border=True, key=f"card-{key}"):
        st.markdown(
            f":blue-badge[{citation.number}] {_byline(passage, citation.title)} &nbsp; "
            f"{VERIFIED if citation.verified else UNVERIFIED}"
        )
        if passage is not None and _within(citation, passage):
            offset = passage.chunk.start
            mark = Mark(citation.start - offset, citation.end - offset)
            st.markdown(highlighted(passage.chunk.text, [mark], rest="gray"))
        else:
            if passage is not None:
                st.markdown(inert(passage.chunk.text))
            st.markdown(f"Quoted as: “{escape(citation.quote)}”")
        if passage is not None:
            _read_button(passage, citation, key=key, assistant=assistant)


def passage_card(passage: Passage, *, n: int, key: str, assistant: Assistant) -> None:
    """A retrieved passage shown without a claim about it (for refusals)."""
    with st.container(border=True, key=f"card-{key}"):
        st.markdown(f":gray-badge[{n}] {_byline(passage, passage.essay.title)}")
        st.markdown(inert(passage.chunk.text))
        _read_button(passage, None, key=key, assistant=assistant)


def _byline(passage: Passage | None, title: str) -> str:
    info = passage.essay if passage is not None else None
    who = ", ".join(x for x in (info.author, info.year) if x) if info else ""
    title = title or (info.id if info else "") or "Untitled"
    where = page_label(passage.chunk.pages) if passage is not None else ""
    return f"**{escape(title)}**" + "".join(f" · {escape(x)}" for x in (who, where) if x)


def page_label(pages: tuple[int, int] | None) -> str:
    """ "p. 4" or "pp. 4–5" for a passage from a paged source (a PDF); "" for one without pages."""
    if pages is None:
        return ""
    first, last = pages
    return f"p. {first}" if first == last else f"pp. {first}–{last}"


def _within(citation: Citation, passage: Passage) -> bool:
    chunk = passage.chunk
    return citation.verified and chunk.start <= citation.start < citation.end <= chunk.end


def _read_button(passage: Passage, citation: Citation | None, *, key: str, assistant: Assistant) -> None:
    if st.button("Read in context", key=key, icon=":material/menu_book:", type="tertiary"):
        read_essay(assistant, passage, citation)


@st.dialog("Read in context", width="large")
def read_essay(assistant: Assistant, passage: Passage, citation: Citation | None) -> None:
    """The whole essay, opened at the passage: the passage in blue, the quote in orange."""
    chunk, info = passage.chunk, passage.essay
    text = assistant.essay_text(chunk.essay_id)  # the snapshot's cache, else one indexed SQLite read
    st.markdown(f"### {escape(info.title)}")
    st.caption(
        escape(" · ".join(x for x in (info.author, info.year, chunk.essay_id, page_label(chunk.pages)) if x))
    )
    if text is None:
        st.warning(
            "This essay has been removed from the index since the answer was given. "
            "The passage as it was cited:",
            icon=":material/delete:",
        )
        st.markdown(inert(chunk.text))
        return
    start = chunk.start
    if text[chunk.start : chunk.end] != chunk.text:
        # Reindexed since the answer: find the passage again, or show the new text unmarked.
        start = text.find(chunk.text)
        if start < 0:
            st.info(
                "The essay has changed since the answer was given; the cited passage is no longer in it.",
                icon=":material/update:",
            )
            st.markdown(inert(text))
            return
    end, shift = start + len(chunk.text), start - chunk.start
    marks = [Mark(start, end, "blue-background")]
    if citation is not None and _within(citation, passage):
        q_start, q_end = citation.start + shift, citation.end + shift
        marks = [
            Mark(start, q_start, "blue-background"),
            Mark(q_start, q_end),
            Mark(q_end, end, "blue-background"),
        ]
    # The text before the passage starts folded, so the reader opens at the passage, in place.
    cut = max(text.rfind("\n\n", 0, start), 0)
    if cut:
        with st.expander(f"Beginning of the essay ({len(text[:cut].split())} words)"):
            st.markdown(inert(text[:cut]))
    st.markdown(highlighted(text[cut:], [Mark(m.start - cut, m.end - cut, m.style) for m in marks]))
