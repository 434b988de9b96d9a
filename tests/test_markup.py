"""Essay text as inert Markdown: a CommonMark parser shows it exactly as written and makes nothing active."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from ui.markup import WORD_JOINER, Mark, answer_text, escape, highlighted, inert

HOSTILE = [
    "<script>alert(1)</script>",
    "![x](http://127.0.0.1:9/pixel)",
    "[link](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "Visit http://example.com/a_b, HTTPS://x.org or www.example.org; mail me@x.org",
    ":streamlit: :material/home: :smile: :red[red] :blue-badge[1]",
    "$x^2$ and $$y$$ and \\(z\\)",
    "*em* _u_ **b** `code` ~~s~~ | a | b | \\ back\\slash &amp; &#x3C;",
    "-- -> <- <-> >= <= ~=",
    "[ref]: http://x.org  and [ref]",
]


def html(markdown: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def text_of(markdown: str) -> str:
    """The text a reader sees, for a one-paragraph Markdown source."""
    out = html(markdown).replace(WORD_JOINER, "").strip()
    assert out.startswith("<p>") and out.endswith("</p>"), out
    return out[3:-4].replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_shown_as_written_and_nothing_else(text: str) -> None:
    assert text_of(inert(text)) == text
    rendered = html(inert(text))
    assert (
        "<a " not in rendered and "<img" not in rendered and "<code" not in rendered and "<em" not in rendered
    )


@pytest.mark.parametrize("text", HOSTILE)
def test_streamlit_text_plugins_find_no_trigger(text: str) -> None:
    # Autolinks, the :streamlit: logo, icons and typography act on text after parsing.
    shown = text_of(inert(text))
    for trigger in (
        "http:",
        "HTTPS:",
        "www.",
        "x@",
        ":streamlit:",
        ":material",
        "--",
        "->",
        "<-",
        ">=",
        "~=",
    ):
        if trigger in text:
            assert trigger not in html(inert(text)).replace("&lt;", "<").replace("&gt;", ">"), trigger
    assert shown == text


def test_block_syntax_stays_text() -> None:
    text = "# not a heading\n> not a quote\n    not code\n1. not a list\n- nor this\n---"
    rendered = html(inert(text))
    assert "<h1" not in rendered and "<blockquote" not in rendered and "<pre" not in rendered
    assert "<ol" not in rendered and "<ul" not in rendered and "<hr" not in rendered
    assert rendered.count("<br />") == 5, "each line stays a line"


def test_highlight_marks_exactly_the_span_and_escapes_inside_it() -> None:
    text = "Before [x](y). The *quoted* part.\nNext line."
    start = text.index("The")
    out = highlighted(text, [Mark(start, text.index("\n") + 5)], rest="gray")
    assert out == (
        ":gray[Before \\[x\\]\\(y\\)\\.] :orange-background[The \\*quoted\\* part\\.]  \n"
        ":orange-background[Next] :gray[line\\.]"
    )


def test_highlight_without_marks_is_inert_text() -> None:
    assert highlighted("a *b*") == inert("a *b*") == "a \\*b\\*"


def test_answer_keeps_its_list_and_turns_known_markers_into_badges() -> None:
    text = (
        "From “Of Revenge”:\n\n- Revenge is *wild* justice [1].\n- Public revenges [2] [3]\n2) Numbered [9]"
    )
    out = answer_text(text, [1, 2])
    assert out.split("\n") == [
        "From “Of Revenge”\\:",
        "",
        "- Revenge is \\*wild\\* justice :blue-badge[1]\\.",
        "- Public revenges :blue-badge[2] \\[3\\]",
        "2. Numbered \\[9\\]",
    ]
    rendered = html(out)
    assert rendered.count("<li>") == 3 and "<em>" not in rendered


def test_escape_is_idempotent_in_what_it_shows() -> None:
    assert text_of(escape("a\\b")) == "a\\b"
    assert text_of(escape(escape("*"))) == "\\*"
