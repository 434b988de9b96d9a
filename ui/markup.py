"""Essay text as inert Markdown: every special character escaped, highlights added after escaping.

Essay text is data. Streamlit renders Markdown, so text from an essay (or a title, or a quote)
could otherwise create links, images, math or HTML. Backslash-escaping ASCII punctuation stops
the Markdown parser; a few of Streamlit's text-level plugins run *after* parsing (bare-URL and
e-mail autolinks, the :streamlit: logo image, :material/...: icons, emoji, "--" and "->"
typography), so an invisible WORD JOINER is put inside each of their trigger sequences as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

WORD_JOINER = "\u2060"
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_TRIGGERS = re.compile(
    r"(?i)(?<=https)(?=:)|(?<=http)(?=:)|(?<=www)(?=\.)"  # autolink literals: http://, www.
    r"|(?=@)"  # e-mail autolinks
    r"|(?<=:)(?=[\w+/-])"  # :shortcodes:, :material/icons:, :directives[]
    r"|(?<=-)(?=[->])|(?<=<)(?=[-=])|(?<=[>~])(?==)"  # -- -> <- <= >= ~= typography
)
_MARKER = re.compile(r"\[(\d+)\]")
_BULLET = re.compile(r"^\s*(?:([-*•])|(\d{1,3})[.)])\s+")


def escape(text: str) -> str:
    """Inline text with nothing left for Markdown or Streamlit's plugins to act on."""
    return _PUNCTUATION.sub(r"\\\1", _TRIGGERS.sub(WORD_JOINER, text))


def inert(text: str) -> str:
    """Text that renders in st.markdown as written: no links, images, HTML, math or styling."""
    return _layout(escape(text))


@dataclass(frozen=True)
class Mark:
    """A span of a text to style with a Streamlit colour directive ("orange-background", "gray")."""

    start: int
    end: int
    style: str = "orange-background"


def highlighted(text: str, marks: Iterable[Mark] = (), *, rest: str = "") -> str:
    """The text as inert Markdown with the marked spans (non-overlapping) styled, the rest in `rest`."""
    out, pos = [], 0
    for mark in sorted(marks, key=lambda m: m.start):
        start, end = max(mark.start, pos), min(mark.end, len(text))
        if start >= end:
            continue
        out.append(_styled(text[pos:start], rest))
        out.append(_styled(text[start:end], mark.style))
        pos = end
    out.append(_styled(text[pos:], rest))
    return _layout("".join(out))


def _styled(text: str, style: str) -> str:
    # A directive cannot span a line break, so each line of the span is styled on its own,
    # with its surrounding spaces left outside the brackets.
    if not style:
        return escape(text)
    lines = []
    for line in text.split("\n"):
        core = line.strip()
        if not core:
            lines.append(line)
            continue
        lead, tail = line[: len(line) - len(line.lstrip())], line[len(line.rstrip()) :]
        lines.append(f"{lead}:{style}[{escape(core)}]{tail}")
    return "\n".join(lines)


def _layout(markdown: str) -> str:
    # Leading spaces would make a code block; a lone line break is kept as a hard break.
    lines = [line.strip() for line in markdown.split("\n")]
    return re.sub(r"(?<=\S)\n(?=\S)", "  \n", "\n".join(lines))


def answer_text(text: str, numbers: Iterable[int]) -> str:
    """An answer as inert Markdown that keeps its list and shows its [n] markers as badges."""
    known = {str(n) for n in numbers}
    lines = []
    for line in text.split("\n"):
        bullet = _BULLET.match(line)
        body = line[bullet.end() :] if bullet else line
        pieces, pos = [], 0
        for m in _MARKER.finditer(body):
            if m.group(1) in known:
                pieces.append(escape(body[pos : m.start()]) + f":blue-badge[{m.group(1)}]")
                pos = m.end()
        pieces.append(escape(body[pos:]))
        prefix = "" if not bullet else "- " if bullet.group(1) else f"{bullet.group(2)}. "
        lines.append(prefix + "".join(pieces).strip())
    return "\n".join(lines)
