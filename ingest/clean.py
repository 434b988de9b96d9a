"""Clean decoded essay text: normalise characters and blank lines, re-join hard wraps, drop page remnants."""

from __future__ import annotations

import html
import itertools
import re

import ftfy
import ftfy.bad_codecs  # registers the sloppy-windows-1252 codec
from ftfy.badness import is_bad

# Zero-width characters and soft hyphens are invisible in print but break exact quote matching; other
# C0 controls are debris from old tools, though a form feed or Unicode separator still marks a break.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")
_BREAKS = {"\x0c": "\n\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n\n"}
_BLANK_RUNS = re.compile(r"\n\n\n+")  # a literal start lets re skip ahead: ~100 -> ~7 µs an essay

# "”" is E2 80 9D in UTF-8, and 0x9D is undefined in Windows-1252, so a double-encoding tool that
# used errors="replace" wrote "â€" + U+FFFD; no other common character leaves that trace.
_LOSSY_CLOSE_QUOTE = "â€\ufffd"
# UTF-8 lead bytes read as Windows-1252 are "Â".."ô"; text without them cannot be double-encoded.
_MOJIBAKE_LEAD = re.compile("[\u00c2-\u00f4]")

_ITEM = re.compile(r"\s*(?:[-*+•‣◦▪]|\d{1,3}[.)]|[a-z][.)])\s")
_FIRST_WORD = re.compile(r"[^\s-]*-?")

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[(?<!\\\[)([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])")  # "[" first: ~125 -> ~4 µs
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]+\S+.*\n?", re.MULTILINE)
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^<>\s]+)>")
_RAW_BLOCK = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_SETEXT = re.compile(r"(?:\A|(?<=\n\n))([^\n]+)\n(=+|-+)[ \t]*(?=\n|\Z)")
# The underline alone, which re finds fast: _SETEXT tries every position (half a millisecond an essay).
_UNDERLINE = re.compile(r"\n(?:=+|-+)[ \t]*(?:\n|\Z)")

_DECORATION = " \t#>*_~`\u00a0"
_RULE = re.compile(r"(?:[-*_=]\s*){3,}")
# Whole lines that head a blog's comment section ("1 thought on “…”", "12 Comments").
_COMMENTS_HEADER = re.compile(
    r"(?:\d+|one|two|three|no) (?:thoughts?|comments?|responses?|replies|reactions?)"
    r"(?: (?:on|to) [“\"‘'«].*)?:?",
    re.IGNORECASE,
)
# Whole lines that head a reply form; what follows them is a few form labels.
_REPLY_FORM = re.compile(
    r"leave a (?:comment|reply)(?: to \S.{0,80}?)?(?: cancel reply)?"
    r"|your email address will not be published.*|(?:join|start) the (?:discussion|conversation):?",
    re.IGNORECASE,
)
_FORM_TAIL = 600  # characters of form labels a reply-form heading may be followed by
# Whole lines of sharing, navigation and form chrome, removed only from the very end of the text.
_TRAILING_CHROME = re.compile(
    r"(?:share this|like this|share|related(?: posts| articles)?|you (?:may|might) also like.*"
    r"|post navigation|(?:previous|next) (?:post|article|entry).*|(?:posted|filed) (?:in|under) .{0,80}"
    r"|tagged:? .{0,80}|tags: .{0,80}|categories: .{0,80}|cancel reply|post comment|submit comment"
    r"|required fields are marked.*|save my name, email.*|notify me of .*"
    r"|(?:comment|name|email|website)\s*\*?|reply|like|loading\W*|twitter|facebook|linkedin|print|comments|subscribe)\s*:?",
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    """Unify line endings; drop invisible characters, trailing blanks and extra blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub(lambda m: _BREAKS.get(m[0], ""), text)
    # rstrip() also clears NBSP-only lines; NBSPs inside a line are kept because quotes include them.
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def repair_mojibake(text: str) -> str:
    """Undo double-encoded UTF-8 ("Maliâ€™s") line by line, leaving clean lines exactly as they are."""
    if not _MOJIBAKE_LEAD.search(text):
        return text
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # ftfy's badness test is slow on long texts, so only lines that could be mojibake are tested.
    return "\n".join(_repair_line(line) if _could_be_bad(line) else line for line in lines)


def _could_be_bad(line: str) -> bool:
    return _MOJIBAKE_LEAD.search(line) is not None and is_bad(line)


def _repair_line(line: str) -> str:
    line = line.replace(_LOSSY_CLOSE_QUOTE, "â€\x9d")
    try:
        # The common case, a whole line double-encoded, undone in C; ftfy is slow but handles the rest.
        return line.encode("sloppy-windows-1252").decode("utf-8")
    except UnicodeError:
        return ftfy.fix_encoding(line)


def unmark(markdown: str) -> str:
    """Reduce inline Markdown to its text (links, images, escapes, HTML tags); block markers stay."""
    text = _RAW_BLOCK.sub("", markdown)
    if _UNDERLINE.search(text):
        text = _SETEXT.sub(lambda m: ("# " if m[2][0] == "=" else "## ") + m[1].strip(), text)
    text = _LINK_DEFINITION.sub("", _AUTOLINK.sub(r"\1", text))
    text = _LINK.sub(r"\1", _IMAGE.sub(r"\1", text))
    text = _ENTITY.sub(lambda m: html.unescape(m[0]), _TAG.sub("", text))
    return _ESCAPE.sub(r"\1", text)


def rejoin_wrapped(text: str) -> str:
    """Join the lines of paragraphs and list items hard-wrapped at a fixed width; expects normalised text."""
    width = wrap_width(text.split("\n"))
    if width is None:
        return text
    return "\n\n".join(_rejoin_block(block.split("\n"), width) for block in text.split("\n\n"))


def wrap_width(lines: list[str]) -> int | None:
    """The column a text was hard-wrapped at, or None when its lines are not wrapped at a fixed width."""
    lengths = sorted(len(line) for line in lines if line.strip())
    if len(lengths) < 4:
        return None
    # The 90th percentile ignores the short last lines of paragraphs and a few over-long ones.
    width = lengths[int(0.9 * (len(lengths) - 1))]
    return width if 40 <= width <= 100 else None


def _rejoin_block(lines: list[str], width: int) -> str:
    breaks = [_wrapped(line, nxt, width) for line, nxt in itertools.pairwise(lines)]
    candidates = [wrapped for wrapped, nxt in zip(breaks, lines[1:], strict=True) if not _ITEM.match(nxt)]
    # Verse and address blocks have lines that end early; join only blocks that read as filled prose.
    if not candidates or sum(candidates) < 0.75 * len(candidates):
        return "\n".join(lines)
    joined = [lines[0]]
    for wrapped, line in zip(breaks, lines[1:], strict=True):
        if wrapped:
            joined[-1] = _join(joined[-1], line)
        else:
            joined.append(line)
    return "\n".join(joined)


def _wrapped(line: str, nxt: str, width: int) -> bool:
    """True when `line` ended only because the next line's first word would not fit in `width`."""
    if _ITEM.match(nxt) or not nxt.strip():
        return False
    word = _FIRST_WORD.match(nxt.lstrip())
    return len(line) + 1 + len(word.group() if word else "") > width


def _join(line: str, nxt: str) -> str:
    nxt = nxt.lstrip(" \t")  # a non-breaking space opening the line is text
    # Wrappers break compounds after their hyphen ("non-" / "state"); the hyphen stays, the space does not.
    if line[-2:-1].isalnum() and line.endswith("-") and nxt[:1].isalnum():
        return line + nxt
    return f"{line} {nxt}"


def strip_remnants(text: str) -> str:
    """Drop a blog page's comment section, reply form and share/navigation lines from the end of the text."""
    lines = text.split("\n")
    # The last comments heading opens the page's own comment section. Earlier ones stay: in a file of
    # several posts they end posts that are still essay text, as does one within the first third.
    starts = list(itertools.accumulate((len(line) + 1 for line in lines), initial=0))
    for i in reversed(range(len(lines))):
        if starts[i] < len(text) / 3:
            break
        if _is_line(lines[i], _COMMENTS_HEADER):
            del lines[i:]
            break
        if len(text) - starts[i] <= _FORM_TAIL and _is_line(lines[i], _REPLY_FORM):
            del lines[i:]
    while lines and _is_remnant(lines[-1]):
        lines.pop()
    return "\n".join(lines)


def _is_remnant(line: str) -> bool:
    core = line.strip()
    return (
        not core
        or _RULE.fullmatch(core) is not None
        or any(_is_line(line, pattern) for pattern in (_COMMENTS_HEADER, _REPLY_FORM, _TRAILING_CHROME))
    )


def _is_line(line: str, pattern: re.Pattern[str]) -> bool:
    core = line.strip(_DECORATION)
    return 0 < len(core) <= 300 and pattern.fullmatch(core) is not None
