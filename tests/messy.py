"""Our own hostile corpus files, made from the shipped sahel essay, and how load_essay must treat each."""

from __future__ import annotations

import codecs
import gzip
import random
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

SEED = Path(__file__).resolve().parent.parent / "corpus/sahel/could-malis-coup-have-been-avoided-part-two.txt"
# The seed ends with blog-page remnants ("1 thought on …", "Leave a comment") that are not essay text.
_REMNANTS_START = "\n\n1 thought on"

PHRASES = (
    "Amid the continued fallout from the August 18 coup in Mali",
    "My prediction: zero.",
    "Add the G5 Sahel Joint Force.",
    "Conference of National Understanding (April 2017)",
    "Brief Conclusion",
    "Not saying the new junta (the CNSP) is necessarily well-meaning.",
)
REMNANTS = ("1 thought on", "Leave a comment")
CHROME = (
    "Skip to content",
    "We use cookies on this site",
    "Sahel Notes",
    "Posted in",
    "Share this:",
    "Related posts",
    "Previous post",
    "Great piece, thanks for writing it",
    "Leave a Reply",
    "Your email address will not be published",
    "Recent posts",
    "Subscribe by email",
    "Proudly powered by",
    "dataLayer",
    "schema.org",
)


@dataclass(frozen=True)
class Expected:
    """How load_essay must handle one file; phrases are compared after `fold`."""

    handling: str  # "ingest", "reject" or "skip"
    must_contain: tuple[str, ...] = ()
    must_not_contain: tuple[str, ...] = REMNANTS
    reason: str = ""  # a word the one-line reason of a reject or skip must contain
    seed_match: str = ""  # "exact": clean text == the seed's; "blocks": equal once line markers are dropped


def fold(text: str) -> str:
    """Text with curly quotes, dashes and all whitespace runs (NBSP too) made plain, for loose comparison."""
    text = text.translate(str.maketrans("‘’“”–—", "''\"\"--"))
    return re.sub(r"\s+", " ", text).strip()


def seed_text() -> str:
    """The seed essay exactly as shipped, page remnants included."""
    return SEED.read_text(encoding="utf-8")


def seed_clean() -> str:
    """The seed essay as its clean text must read: everything before the page remnants."""
    text = seed_text()
    return text[: text.index(_REMNANTS_START)]


def without_markers(text: str) -> list[str]:
    """Lines with heading, list and indentation markers dropped, to compare structure-free text."""
    return [re.sub(r"^\s*(?:#+|[-*•]|\d+\.)\s+", "", line) for line in text.split("\n")]


def _blocks() -> list[tuple[str, list[str]]]:
    """The seed after its title as (kind, lines): kind is p, h2, ul or ol; list lines lose their markers."""
    out: list[tuple[str, list[str]]] = []
    for block in seed_clean().split("\n\n")[1:]:
        lines = block.split("\n")
        if lines[0].lstrip().startswith("•"):
            out.append(("ul", [line.split("•", 1)[1].strip() for line in lines]))
        elif re.match(r"\s+\d+\. ", lines[0]):
            out.append(("ol", [line.split(".", 1)[1].strip() for line in lines]))
        elif len(block) < 40 and not block.endswith("."):
            out.append(("h2", lines))
        else:
            out.append(("p", lines))
    return out


def _title() -> str:
    return seed_text().split("\n", 1)[0]


def _entities(text: str) -> str:
    """HTML with every non-ASCII character as a numeric entity, the way WordPress writes typography."""
    text = escape(text, quote=False).replace("\u00a0", "&nbsp;")
    return "".join(ch if ord(ch) < 128 else f"&#{ord(ch)};" for ch in text)


def _page() -> bytes:
    body = []
    for kind, lines in _blocks():
        if kind in ("ul", "ol"):
            items = "\n".join(f"<li>{_entities(line)}</li>" for line in lines)
            body.append(f"<{kind}>\n{items}\n</{kind}>")
        elif kind == "h2":
            body.append(f"<h2>{_entities(lines[0])}</h2>")
        elif lines[0].startswith("*"):
            body.append(f'<p class="footnote"><small>{_entities(lines[0])}</small></p>')
        else:
            body.append(f"<p>{_entities(lines[0])}</p>")
    content = "\n".join(body).replace(
        "problem here and here.", 'problem <a href="/accord-1/">here</a> and <a href="/accord-2/">here</a>.'
    )
    title = _entities(_title())
    page = _PAGE.format(title=title, content=content)
    return page.encode("utf-8")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title} | Sahel Notes</title>
<meta property="og:title" content="{title}">
<style>.cookie-bar {{position: fixed}} .widget-area {{float: right}}</style>
<script>window.dataLayer = window.dataLayer || []; dataLayer.push({{event: "view"}});</script>
<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "BlogPosting"}}</script>
</head><body class="single has-sidebar">
<a class="skip-link screen-reader-text" href="#main">Skip to content</a>
<div class="cookie-bar" id="cookie-law">We use cookies on this site. <button>OK</button></div>
<header class="site-header"><p class="site-title">Sahel Notes</p>
<nav class="main-navigation"><ul><li><a href="/">Home</a></li><li><a href="/about/">About</a></li></ul></nav>
</header>
<main id="main"><article class="post type-post tag-mali">
<header class="entry-header"><h1 class="entry-title">{title}</h1>
<div class="entry-meta">Posted in <a href="/mali/">Mali</a></div></header>
<div class="entry-content">
{content}
<div class="sharedaddy"><h3>Share this:</h3><ul><li><a href="#">Email</a></li></ul></div>
<div class="jp-relatedposts"><h3>Related posts</h3><p><a href="/part-one/">Part One</a></p></div>
</div>
<footer class="entry-footer">Tagged coup</footer>
</article>
<nav class="post-navigation"><a href="/part-one/" rel="prev">Previous post</a></nav>
<div id="comments" class="comments-area"><h2>1 thought on &#8220;{title}&#8221;</h2>
<ol class="comment-list"><li>
<article class="comment-body">Great piece, thanks for writing it.</article></li></ol>
<div id="respond"><h3>Leave a Reply</h3><form><p>Your email address will not be published.</p>
<textarea name="comment"></textarea><input type="submit" value="Post Comment"></form></div></div>
</main>
<aside class="widget-area"><section class="widget"><h2>Recent posts</h2></section>
<section class="widget"><h2>Subscribe by email</h2><form><input type="email"></form></section></aside>
<footer class="site-footer">Proudly powered by WordPress</footer>
<noscript><img src="/pixel.gif" alt=""></noscript>
</body></html>
"""


def _markdown() -> bytes:
    out = [f"# {_title()}"]
    for kind, lines in _blocks():
        if kind == "ul":
            out.append("\n".join(f"- {line}" for line in lines))
        elif kind == "ol":
            out.append("\n".join(f"{n}. {line}" for n, line in enumerate(lines, 1)))
        elif kind == "h2":
            out.append(f"## {lines[0]}")
        elif lines[0].startswith("*"):
            escaped = re.sub(r"^\*+", lambda m: "\\*" * len(m[0]), lines[0])
            out.append(f"<small>{escaped}</small>")
        else:
            out.append(lines[0])
    text = "\n\n".join(out).replace(
        "problem here and here.", "problem [here](/a/1) and [here](/a/2 'the accord')."
    )
    return f"{text}\n\n---\n\n_1 thought on “{_title()}”_\n\nLeave a comment\n".encode()


def _latin1() -> bytes:
    ascii_typography = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "--", "•": "*"})
    return seed_text().translate(ascii_typography).encode("latin-1")


def _mixed_newlines() -> bytes:
    endings = ("\r\n", "\n", "\r")
    lines = seed_text().split("\n")
    return "".join(line + endings[i % 3] for i, line in enumerate(lines)).encode()


def _invisible() -> bytes:
    rng = random.Random(11)
    lines = []
    for line in seed_text().split("\n"):
        words = [_soft_hyphenate(word) for word in line.split(" ")]
        words = [word + "\u200b" if rng.random() < 0.15 else word for word in words]
        # Blank lines get NBSPs and soft hyphens too: they must still count as blank.
        lines.append(" ".join(words) + rng.choice(("", " ", "\t", " \t ", "\u00a0", "\u00a0 \u00ad")))
    return ("\u2060" + "\n".join(lines)).encode()


def _soft_hyphenate(word: str) -> str:
    return f"{word[:5]}\u00ad{word[5:]}" if len(word) >= 12 and word.isalpha() else word


def _hard_wrapped() -> bytes:
    wrapped = []
    for block in seed_text().split("\n\n"):
        lines = block.split("\n")
        for line in lines:
            marker = re.match(r"\s*(?:•|\d+\.)\s", line)
            indent = marker.group() if marker else ""
            wrapper = textwrap.TextWrapper(66, initial_indent=indent, subsequent_indent=" " * len(indent))
            wrapped.append(wrapper.fill(line[len(indent) :]))
        wrapped.append("")
    return "\n".join(wrapped).encode()


def _truncated() -> bytes:
    data = seed_text().encode()
    cut = data.index("’".encode(), len(data) * 2 // 3)
    return data[: cut + 1]  # keeps the first byte of the three, as an interrupted download would


def _binary() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + random.Random(5).randbytes(64 * 1024) + b"\x00" * 512


def _truncated_phrases() -> tuple[tuple[str, ...], tuple[str, ...]]:
    kept = _truncated().decode(errors="ignore")
    return tuple(p for p in PHRASES if p in kept), tuple(p for p in PHRASES if p not in kept)


_EXACT = Expected("ingest", PHRASES, seed_match="exact")
_KEPT, _LOST = _truncated_phrases()

#: File name -> (bytes maker, expected handling).
FILES: dict[str, tuple[Callable[[], bytes], Expected]] = {
    "seed_page.html": (_page, Expected("ingest", PHRASES, CHROME + REMNANTS, seed_match="blocks")),
    "seed.md": (
        _markdown,
        Expected("ingest", PHRASES, (*REMNANTS, "](", "<small>", "\\*"), seed_match="blocks"),
    ),
    "seed_crlf.txt": (lambda: seed_text().replace("\n", "\r\n").encode(), _EXACT),
    "seed_bom.txt": (lambda: codecs.BOM_UTF8 + seed_text().encode(), _EXACT),
    "seed_latin1.txt": (_latin1, Expected("ingest", (*PHRASES, "Ibrahim Boubacar Keïta"))),
    "seed_cp1252.txt": (lambda: seed_text().encode("cp1252"), _EXACT),
    "seed_utf16.txt": (lambda: codecs.BOM_UTF16_LE + seed_text().encode("utf-16-le"), _EXACT),
    "seed_mojibake.txt": (lambda: seed_text().encode().decode("cp1252", errors="replace").encode(), _EXACT),
    "seed_mixed_newlines.txt": (_mixed_newlines, _EXACT),
    "seed_invisible.txt": (_invisible, _EXACT),
    "seed_hardwrapped.txt": (_hard_wrapped, _EXACT),
    "seed_truncated.txt": (_truncated, Expected("ingest", _KEPT, _LOST)),
    "empty.txt": (bytes, Expected("skip", reason="empty")),
    "whitespace_only.txt": (" \t \r\n\n\u00a0\t\n  ".encode, Expected("skip", reason="whitespace")),
    "binary_renamed.txt": (_binary, Expected("reject", reason="binary")),
    "gzip_renamed.txt": (
        lambda: gzip.compress(seed_text().encode(), mtime=0),
        Expected("reject", reason="gzip"),
    ),
}


def write_messy(out_dir: Path) -> dict[str, Expected]:
    """Write every hostile file into out_dir and return what load_essay must do with each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (make, _) in FILES.items():
        (out_dir / name).write_bytes(make())
    return {name: expected for name, (_, expected) in FILES.items()}
