"""Loading and cleaning: the shipped corpus keeps its exact text, hostile files are handled, units behave."""

from __future__ import annotations

import codecs
import gzip
import json
from pathlib import Path

import messy
import pytest

from ingest.clean import normalise, rejoin_wrapped, repair_mojibake, strip_remnants, unmark
from ingest.errors import RejectedFile, SkippedFile
from ingest.essay import Essay, content_hash
from ingest.frontmatter import split_front_matter
from ingest.html import extract
from ingest.load import SUPPORTED_SUFFIXES, corpus_files, decode, load_essay

MAX_BYTES = 5 * 1024 * 1024
SAHEL = "sahel/could-malis-coup-have-been-avoided-part-two.txt"
PROJECT_DIR = Path(__file__).resolve().parent.parent


def load(path: Path, root: Path, max_bytes: int = MAX_BYTES) -> Essay:
    return load_essay(path, root, max_bytes=max_bytes)


def write(root: Path, name: str, data: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- the shipped corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dev", "paraphrased", "tune", "test"])
def test_every_gold_quote_is_in_its_essays_clean_text(corpus_dir: Path, name: str) -> None:
    path = PROJECT_DIR / f"eval/{name}.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    assert len({row["id"] for row in rows}) == len(rows)
    ids = {row["id"] for row in rows}
    assert all(row["follows"] in ids for row in rows if row.get("follows"))
    essay_ids = {eid for row in rows for eid in row["essay"]}
    texts = {eid: load(corpus_dir / eid, corpus_dir).text for eid in essay_ids}
    quotes = [(row["id"], quote, row["essay"]) for row in rows for quote in row["gold_quotes"]]
    assert len(quotes) > 30
    missing = [(qid, quote) for qid, quote, eids in quotes if not any(quote in texts[e] for e in eids)]
    assert missing == []


def test_sahel_essay_loses_only_its_page_remnants(corpus_dir: Path) -> None:
    essay = load(corpus_dir / SAHEL, corpus_dir)
    assert essay.text == messy.seed_clean()
    assert essay.text.endswith("\n\n**Not saying the new junta (the CNSP) is necessarily well-meaning.")
    assert "\n\n*”International community” is a garbage euphemism" in essay.text
    assert "1 thought on" not in essay.text and "Leave a comment" not in essay.text
    assert essay.text.count("\u00a0") == 2
    assert "\n  • There is a circularity" in essay.text and "\n  10. Treating the M5-RFP" in essay.text
    assert (
        essay.title
        == "Could Mali’s Coup Have Been Avoided? Part Two – The International Community’s Mistakes"
    )
    assert (essay.id, essay.collection, essay.author, essay.year) == (SAHEL, "sahel", "", "")
    assert essay.source_hash == content_hash((corpus_dir / SAHEL).read_bytes())


def test_shipped_markdown_keeps_its_body_and_reads_its_front_matter(corpus_dir: Path) -> None:
    essay = load(corpus_dir / "bacon/01-of-truth.md", corpus_dir)
    assert (essay.title, essay.author, essay.year, essay.collection) == (
        "Of Truth",
        "Francis Bacon",
        "1625",
        "bacon",
    )
    assert essay.meta["number"] == "1"
    assert essay.meta["collection"] == "Essays, or Counsels Civil and Moral (1625)"
    assert essay.text.startswith("# Of Truth\n\nWHAT is truth? said jesting Pilate")
    raw = (corpus_dir / "bacon/01-of-truth.md").read_text()
    assert raw.endswith(essay.text + "\n")


def test_whole_shipped_corpus_loads(corpus_dir: Path) -> None:
    files = corpus_files(corpus_dir)
    ids = [path.relative_to(corpus_dir).as_posix() for path in files]
    assert ids == sorted(ids) and len(ids) == 159
    assert "SOURCES.md" not in ids and "manifest.jsonl" not in ids
    for path in files:
        essay = load(path, corpus_dir)
        assert essay.title and essay.text == essay.text.strip()
        if path.suffix == ".md":
            assert essay.author and essay.year and not essay.text.startswith("---")


# --- hostile files (tests/messy.py) ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(messy.FILES))
def test_messy_file_is_handled_as_expected(
    name: str, messy_corpus: tuple[Path, dict[str, messy.Expected]]
) -> None:
    root, expectations = messy_corpus
    expected = expectations[name]
    if expected.handling != "ingest":
        error = SkippedFile if expected.handling == "skip" else RejectedFile
        with pytest.raises(error) as caught:
            load(root / name, root)
        assert isinstance(caught.value, SkippedFile) == (expected.handling == "skip")
        assert expected.reason in caught.value.reason and "\n" not in caught.value.reason
        return
    essay = load(root / name, root)
    folded = messy.fold(essay.text)
    assert [p for p in expected.must_contain if messy.fold(p) not in folded] == []
    assert [p for p in expected.must_not_contain if messy.fold(p) in folded] == []
    assert not set(essay.text + essay.title) & set("\ufeff\u200b\u00ad\u2060\r\ufffd")
    if expected.seed_match == "exact":
        assert essay.text == messy.seed_clean()
        assert essay.title == messy.seed_clean().split("\n", 1)[0]
    elif expected.seed_match == "blocks":
        assert messy.without_markers(essay.text) == messy.without_markers(messy.seed_clean())


def test_oversized_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    sparse = tmp_path / "huge.txt"
    with sparse.open("wb") as handle:
        handle.truncate(20 * 1024 * 1024)  # zeros: reading it would give "binary", not a size error
    with pytest.raises(RejectedFile) as caught:
        load(sparse, tmp_path)
    assert caught.value.reason == (
        "20.0 MB is over the 5.0 MB limit (MARGINALIA_MAX_FILE_MB); split or shorten it"
    )
    small = write(tmp_path, "essay.txt", "A short essay.\n" * 100)
    with pytest.raises(RejectedFile, match=r"1\.5 KB is over the 1000 bytes limit"):
        load(small, tmp_path, max_bytes=1000)
    assert load(small, tmp_path, max_bytes=1500).text.startswith("A short essay.")


def test_unsupported_format_is_rejected(tmp_path: Path) -> None:
    assert set(SUPPORTED_SUFFIXES) == {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".epub", ".docx"}
    with pytest.raises(RejectedFile) as caught:
        load(write(tmp_path, "notes.odt", b"PK\x03\x04"), tmp_path)
    assert str(caught.value) == (
        "notes.odt: not a supported format (.txt, .md, .markdown, .html, .htm, .pdf, .epub, .docx); skipped"
    )


def test_id_and_collection_come_from_the_path(tmp_path: Path) -> None:
    top = load(write(tmp_path, "Top.TXT", "Body text."), tmp_path)
    nested = load(write(tmp_path, "essays/2020/piece.markdown", "Body text."), tmp_path)
    assert (top.id, top.collection) == ("Top.TXT", "")
    assert (nested.id, nested.collection) == ("essays/2020/piece.markdown", "essays")
    assert nested.source_hash == content_hash(b"Body text.")


def test_corpus_files_skips_hidden_and_ignored_paths(tmp_path: Path) -> None:
    for name in ("a.txt", ".hidden.txt", ".git/config", "sub/b.md", "sub/.cache/c.txt", "drafts/d.txt",
                 "notes.pdf", "SOURCES.md", "x/manifest.jsonl"):  # fmt: skip
        write(tmp_path, name, "text")
    write(tmp_path, ".marginaliaignore", "SOURCES.md\n# a comment\n\ndrafts/\n*.jsonl\n")
    found = [path.relative_to(tmp_path).as_posix() for path in corpus_files(tmp_path)]
    assert found == ["a.txt", "notes.pdf", "sub/b.md"]


# --- decoding -------------------------------------------------------------------------------------


def test_decode_reads_byte_order_marks_and_utf16() -> None:
    text = "Mali’s coup – “Keïta”"
    assert decode(codecs.BOM_UTF8 + text.encode()) == (text, "utf-8-sig")
    assert decode(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))[0] == text
    assert decode(codecs.BOM_UTF16_BE + text.encode("utf-16-be"))[0] == text
    assert decode(("plain ascii text " * 4).encode("utf-16-le")) == ("plain ascii text " * 4, "utf-16-le")


def test_decode_keeps_the_complete_part_of_cut_short_utf8() -> None:
    assert decode("It’s Mali’s".encode()[:-3]) == ("It’s Mali", "utf-8 (truncated)")


def test_decode_falls_back_to_windows_1252_then_latin1() -> None:
    assert decode(b"caf\xe9 \x93quoted\x94 \x96 \x81") == ("café “quoted” – \x81", "cp1252")


def test_decode_rejects_binary_and_gzip() -> None:
    for data, reason in ((b"text\x00more", "not a text file (binary data)"),
                         (b"\x89PNG\r\n\x1a\nIHDR", "not a text file (binary data)"),
                         (gzip.compress(b"an essay"), "gzip-compressed; decompress it first")):  # fmt: skip
        with pytest.raises(RejectedFile) as caught:
            decode(data, "x.txt")
        assert caught.value.reason == reason


# --- cleaning -------------------------------------------------------------------------------------


def test_normalise_unifies_newlines_and_drops_invisible_characters() -> None:
    raw = "\n\ufeffA\u200bb\u00adc\u2060 d \t\r\n\r\n\r\n\u00a0 \nE\u00a0F\rG\x0c\n\n\n"
    assert normalise(raw) == "Abc d\n\nE\u00a0F\nG"
    assert normalise("  • indented item  \n  1. kept") == "  • indented item\n  1. kept"


def test_repair_mojibake_fixes_only_broken_lines() -> None:
    assert repair_mojibake("Maliâ€™s coup\nMali’s café\nKeÃ¯ta") == "Mali’s coup\nMali’s café\nKeïta"
    assert repair_mojibake("â€œGood governanceâ€\ufffd is code") == "“Good governance” is code"
    clean = "Mali’s café – “naïve” Keïta\u00a0here; Â is a letter"
    assert repair_mojibake(clean) == clean


WRAPPED = """\
Even before discussing the macro flaws, I think there is an
overall problem, namely that it is extremely difficult to
escape a certain conceptual prison: kill, haggle, vote. Some
ideas floated in recent years represent only modest non-
negotiable adjustments to hegemonic assumptions.

- There is a circularity built into the way international
  actors talk about political stability.
- Short item.

Cast the bantling on the rocks,
Suckle him with the she-wolf's teat,
Wintered with the hawk and fox."""


def test_rejoin_joins_wrapped_prose_and_hanging_list_items() -> None:
    prose = (
        "Even before discussing the macro flaws, I think there is an overall problem, namely that it is"
        " extremely difficult to escape a certain conceptual prison: kill, haggle, vote. Some ideas"
        " floated in recent years represent only modest non-negotiable adjustments to hegemonic assumptions."
    )
    items = "- There is a circularity built into the way international actors talk about political stability."
    verse = WRAPPED.rsplit("\n\n", 1)[-1]  # the stanza's lines end early on purpose and stay apart
    assert rejoin_wrapped(WRAPPED).split("\n\n") == [prose, f"{items}\n- Short item.", verse]


def test_rejoin_leaves_unwrapped_text_alone() -> None:
    assert rejoin_wrapped(messy.seed_clean()) == messy.seed_clean()
    verse = (
        "The soul that can\nRender an honest and a perfect man,\nCommands all light, all influence, all fate;"
    )
    assert rejoin_wrapped(f"{verse}\n\n{verse}") == f"{verse}\n\n{verse}"


ESSAY = "An essay paragraph that says what it has to say at some length.\n\nA second paragraph."


def test_strip_remnants_drops_a_comment_section_and_reply_form() -> None:
    page = f"{ESSAY}\n\n2 thoughts on “An essay”\n\nA reader\nGreat post!\n\nLeave a Reply\n\n" + (
        "Your email address will not be published. Required fields are marked *\n\nPost Comment"
    )
    assert strip_remnants(page) == ESSAY
    assert strip_remnants(f"{ESSAY}\n\n1 thought on “An essay\n\nLeave a comment") == ESSAY
    assert strip_remnants(f"{ESSAY}\n\n---\n\n_1 thought on “An essay”_") == ESSAY
    assert strip_remnants(f"{ESSAY}\n\nShare this:\n\nTwitter\nFacebook\n\nLike this:\n\nLoading...") == ESSAY


def test_strip_remnants_keeps_essay_text_that_mentions_comments() -> None:
    early = f"Leave a comment\n\n{ESSAY}\n\n{ESSAY}"
    assert strip_remnants(early) == early
    assert strip_remnants(f"{ESSAY}\n\nLeave a comment, she said, and left.") == (
        f"{ESSAY}\n\nLeave a comment, she said, and left."
    )


def test_unmark_reduces_inline_markdown_and_keeps_block_markers() -> None:
    markdown = (
        "Title\n=====\n\nSee [the accord](http://x.org 'T') and ![a map](m.png).\n\n"
        "<small>\\*Footnote \\_x\\_</small> <https://example.org> &amp; 5 \\> 3\n\n"
        "> quoted\n- item [This essay was not finished]"
    )
    assert unmark(markdown) == (
        "# Title\n\nSee the accord and a map.\n\n*Footnote _x_ https://example.org & 5 > 3\n\n"
        "> quoted\n- item [This essay was not finished]"
    )


# --- metadata -------------------------------------------------------------------------------------


def test_front_matter_values_become_strings() -> None:
    text = '---\ntitle: "Of Truth"\nauthor: [A. Hamilton, J. Madison]\nyear: 1625\ndate: 2020-08-21\n---\n# X'
    meta, body = split_front_matter(text)
    assert meta == {
        "title": "Of Truth",
        "author": "A. Hamilton, J. Madison",
        "year": "1625",
        "date": "2020-08-21",
    }
    assert body == "# X"
    assert split_front_matter("---\n\nA rule, then text.\n\n---\nmore") == (
        {},
        "---\n\nA rule, then text.\n\n---\nmore",
    )
    assert split_front_matter("---\ntitle: [unclosed\n---\nBody") == ({}, "Body")


def test_markdown_front_matter_fills_the_essay(tmp_path: Path) -> None:
    front = "---\ntitle: On Gardens\nauthors: [Ann, Bo]\ndate: 2019-05-02\nlicence: CC-BY\n---\n\n"
    essay = load(write(tmp_path, "mine/gardens.md", front + "# On Gardens\n\nGod."), tmp_path)
    assert (essay.title, essay.author, essay.year, essay.collection) == (
        "On Gardens",
        "Ann, Bo",
        "2019",
        "mine",
    )
    assert essay.meta == {"date": "2019-05-02", "licence": "CC-BY", "source_encoding": "utf-8"}
    assert essay.text == "# On Gardens\n\nGod."


def test_title_comes_from_a_heading_like_first_line_or_the_file_name(tmp_path: Path) -> None:
    titled = write(tmp_path, "walking.txt", "On Walking\n\nI wish to speak a word for Nature.")
    untitled = write(tmp_path, "01-on-walking.txt", "I wish to speak a word for Nature.\n\nAnd more.")
    heading = write(tmp_path, "notes.md", "## The Heading ##\n\nText.")
    assert load(titled, tmp_path).title == "On Walking"
    assert load(untitled, tmp_path).title == "On walking"
    assert load(heading, tmp_path).title == "The Heading"


PAGE = """<html><head><title>On Gardens | Blog</title><meta name="Author" content="Ann Lee">
<meta property="article:published_time" content="2019-05-02T10:00"><script>var x = 1;</script></head>
<body><a class="skip-link" href="#m">Skip to content</a><nav><a>Home</a></nav>
<header class="site-header"><h1 class="site-title">Blog</h1></header>
<main id="m"><article class="post tag-social"><header class="entry-header"><h1>On   Gardens</h1>
<div class="entry-meta">Posted in Essays</div></header>
<div class="entry-content"><p>God Almighty <em>first</em> planted a <a href="/g">garden</a>&nbsp;&#8212;
 and it is the purest of human pleasures.</p>
<blockquote><p>Quoted one.</p><p>Quoted<br>two lines</p></blockquote>
<ul><li><p>Item one</p></li><li>Item two<ol start="3"><li>sub a</li><li>sub b</li></ol></li></ul>
<h2>Part <span>II</span></h2><div hidden>secret</div><div class="share-buttons">Share</div>
<p>Last&#8217;s para.</p></div></article>
<div id="comments"><h2>2 thoughts on “On Gardens”</h2><p>Nice!</p></div></main>
<aside class="widget-area">Recent posts</aside><footer>Powered by</footer></body></html>"""


def test_extract_keeps_the_article_as_blocks_and_drops_the_chrome() -> None:
    page = extract(PAGE)
    assert page.text == (
        "# On Gardens\n\n"
        "God Almighty first planted a garden\u00a0— and it is the purest of human pleasures.\n\n"
        "> Quoted one.\n\n> Quoted\n> two lines\n\n- Item one\n- Item two\n  3. sub a\n  4. sub b\n\n"
        "## Part II\n\nLast’s para."
    )
    assert (page.title, page.author, page.year) == ("On Gardens", "Ann Lee", "2019")


def test_html_file_loads_with_page_metadata(tmp_path: Path) -> None:
    essay = load(write(tmp_path, "web/gardens.htm", PAGE.encode("utf-8")), tmp_path)
    assert (essay.title, essay.author, essay.year, essay.collection) == (
        "On Gardens",
        "Ann Lee",
        "2019",
        "web",
    )
    assert "Nice!" not in essay.text and "Skip to content" not in essay.text
