"""Pull the article out of a web page as Markdown-ish text, with its title, author and year."""

from __future__ import annotations

import re
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode

# Most specific first: the body of a post, then the article, then the page's main region.
_CONTAINERS = (
    "[itemprop=articleBody]",
    ".entry-content",
    ".post-content",
    ".article-content",
    ".article-body",
    ".post-body",
    "article",
    "[role=main]",
    "main",
    "#content",
)
_SKIP_TAG = re.compile(
    r"script|style|noscript|template|nav|aside|form|iframe|svg|canvas|object|embed|button|input|select"
    r"|textarea|label|dialog|head|title|meta|link"
)
_CHROME_ROLE = re.compile(r"navigation|complementary|banner|contentinfo|search|dialog|alertdialog")
# Class and id words (split on - and _) that mark page furniture rather than essay text.
_CHROME_WORD = re.compile(
    r"nav|navbar|navigation|menu|breadcrumb|breadcrumbs|sidebar|widget|widgets|share|sharing"
    r"|sharedaddy|social|related|relatedposts|comment|comments|respond|reply|cookie|cookies|consent"
    r"|gdpr|newsletter|subscribe|subscription|promo|advert|advertisement|ads|ad|sponsored|skip|meta"
    r"|byline|masthead|colophon|popup|modal|toolbar|tags|pagination"
)
_CHROME_TOKEN = re.compile(r"site-header|site-footer|entry-footer|cat-links|screen-reader-text|sr-only")
_BLOCK_TAG = re.compile(
    r"address|article|blockquote|center|dd|details|div|dl|dt|figcaption|figure|footer|h[1-6]|header|hr|li"
    r"|main|ol|p|pre|section|summary|table|tbody|thead|tfoot|tr|ul"
)
_HEADINGS = {f"h{level}": "#" * level for level in range(1, 7)}
_BREAK = "\x00"  # stands in for <br> while whitespace is collapsed; the parser never emits NUL itself
_SPACES = re.compile(r"[ \t\n\r\f]+")  # ASCII only: a non-breaking space is text and stays
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")


@dataclass(frozen=True)
class Page:
    """The article of a web page: its text with block markers, and what the page says about it."""

    text: str
    title: str = ""
    author: str = ""
    year: str = ""


def extract(markup: str) -> Page:
    """The article text of a page (no navigation, comments or widgets) and its title, author and year."""
    tree = LexborHTMLParser(markup)
    container = _container(tree)
    blocks = _blocks(container) if container is not None else []
    heading = _post_heading(container)
    # The title often sits in an entry header, outside the content or inside a dropped <header>.
    if heading and f"# {heading}" not in blocks:
        blocks.insert(0, f"# {heading}")
    title = _meta(tree, "og:title") or heading or _text(tree.css_first("title"))
    author = _meta(tree, "author", "article:author", "dc.creator") or _text(tree.css_first("[rel=author]"))
    if author.startswith("http"):
        author = ""
    return Page("\n\n".join(blocks), title=title, author=author, year=_year(tree, container))


def _container(tree: LexborHTMLParser) -> LexborNode | None:
    for selector in _CONTAINERS:
        found = [node for node in tree.css(selector) if not _is_chrome(node)]
        if found:
            return max(found, key=lambda node: len(node.text(strip=True)))
    return tree.body


def _post_heading(container: LexborNode | None) -> str:
    """The text of the post's <h1>, found in the article or main region around the container."""
    heading = _scope(container).css_first("h1") if container is not None else None
    return _squash(_inline(heading)).replace("\n", " ") if heading is not None else ""


def _scope(container: LexborNode) -> LexborNode:
    """The <article> or <main> holding the container: where the post's own title and date live."""
    node: LexborNode | None = container
    while node is not None and node.tag not in ("article", "main", "body", "html"):
        node = node.parent
    return node if node is not None and node.tag in ("article", "main") else container


def _blocks(node: LexborNode) -> list[str]:
    """The block-level text under `node`: paragraphs, `#` headings, list items and `> ` quotes."""
    blocks: list[str] = []
    inline: list[str] = []

    def flush() -> None:
        if text := _squash("".join(inline)):
            blocks.append(text)
        inline.clear()

    for child in node.iter(include_text=True):
        tag = child.tag or ""
        if child.is_text_node:
            inline.append(child.text_content or "")
        elif not child.is_element_node or _is_chrome(child):
            continue
        elif tag == "br":
            inline.append(_BREAK)
        elif tag in ("td", "th"):
            inline.append(f" {_inline(child)} ")
        elif not _BLOCK_TAG.fullmatch(tag) and not _has_block(child):
            inline.append(_inline(child))
        else:
            flush()
            blocks.extend(_block(child, tag))
    flush()
    return blocks


def _block(node: LexborNode, tag: str) -> list[str]:
    if tag in _HEADINGS:
        text = _squash(_inline(node)).replace("\n", " ")
        return [f"{_HEADINGS[tag]} {text}"] if text else []
    if tag in ("ul", "ol"):
        items = _list_items(node)
        return ["\n".join(items)] if items else []
    if tag == "blockquote":
        return ["\n".join(f"> {line}" for line in block.split("\n")) for block in _blocks(node)]
    if tag == "pre":
        text = node.text(deep=True).strip("\n")
        return [text] if text.strip() else []
    return _blocks(node)


def _list_items(node: LexborNode, indent: str = "") -> list[str]:
    ordered = node.tag == "ol"
    start = node.attributes.get("start") or "1"
    number = int(start) if start.isdigit() else 1
    lines: list[str] = []
    for item in node.iter():
        if item.tag != "li" or _is_chrome(item):
            continue
        parts: list[str] = []
        nested: list[str] = []
        for child in item.iter(include_text=True):
            if child.tag in ("ul", "ol"):
                nested.extend(_list_items(child, indent + "  "))
            elif child.is_text_node:
                parts.append(child.text_content or "")
            elif child.is_element_node and not _is_chrome(child):
                parts.append(" ".join(_blocks(child)) if _has_block(child) else _inline(child))
        marker = f"{number}. " if ordered else "- "
        number += 1
        if text := _squash("".join(parts)).replace("\n", " "):
            lines.append(f"{indent}{marker}{text}")
        lines.extend(nested)
    return lines


def _inline(node: LexborNode) -> str:
    parts: list[str] = []
    for child in node.iter(include_text=True):
        if child.is_text_node:
            parts.append(child.text_content or "")
        elif child.tag == "br":
            parts.append(_BREAK)
        elif child.is_element_node and not _is_chrome(child):
            parts.append(_inline(child))
    return "".join(parts)


def _has_block(node: LexborNode) -> bool:
    return any(_BLOCK_TAG.fullmatch(child.tag or "") for child in node.css("*"))


def _squash(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip(" ") for line in text.split(_BREAK))
    return "\n".join(line for line in lines if line)


def _is_chrome(node: LexborNode) -> bool:
    """True for navigation, sidebars, share buttons, comment sections, banners and hidden elements."""
    tag = node.tag or ""
    attrs = node.attributes
    if _SKIP_TAG.fullmatch(tag) or "hidden" in attrs or _CHROME_ROLE.fullmatch(attrs.get("role") or ""):
        return True
    if tag in ("header", "footer") and (
        node.parent is None or node.parent.tag not in ("blockquote", "figure")
    ):
        return True
    tokens = f"{attrs.get('class') or ''} {attrs.get('id') or ''}".lower().split()
    return any(_is_chrome_token(token) for token in tokens)


def _is_chrome_token(token: str) -> bool:
    # WordPress tags every post with its taxonomy ("tag-social", "category-news"): those name topics.
    if token.startswith(("tag-", "category-")):
        return False
    return bool(_CHROME_TOKEN.fullmatch(token)) or any(
        _CHROME_WORD.fullmatch(word) for word in re.split(r"[-_]", token)
    )


def _meta(tree: LexborHTMLParser, *names: str) -> str:
    for name in names:
        node = tree.css_first(f'meta[property="{name}" i], meta[name="{name}" i]')
        if node is not None and (content := (node.attributes.get("content") or "").strip()):
            return _SPACES.sub(" ", content)
    return ""


def _year(tree: LexborHTMLParser, container: LexborNode | None) -> str:
    stamp = _meta(
        tree, "article:published_time", "date", "dc.date", "dc.date.issued", "citation_publication_date"
    )
    if not stamp and container is not None:
        stamp = next((t.attributes.get("datetime") or t.text() for t in _scope(container).css("time")), "")
    found = _YEAR.search(stamp or "")
    return found.group(1) if found else ""


def _text(node: LexborNode | None) -> str:
    return _SPACES.sub(" ", node.text()).strip() if node is not None else ""
