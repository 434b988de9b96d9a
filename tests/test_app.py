"""The Streamlit app through AppTest: real model, real Chroma, a small real corpus in tmp_path."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from llm_server import LlamaServer, require_model
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from ingest.catalog import Catalog
from ingest.lock import index_lock
from ingest.pipeline import catalog_path, index_outdated, run_ingest
from ingest.settings import Settings
from retrieval.types import CANNOT_ANSWER
from ui.cards import page_label
from ui.conversation import transcript
from ui.markup import WORD_JOINER, escape

PROJECT_DIR = Path(__file__).resolve().parent.parent
APP = str(PROJECT_DIR / "app.py")
TIMEOUT = 180  # the first run in a process imports torch and loads the model: slow on a busy machine
SAHEL = "sahel/could-malis-coup-have-been-avoided-part-two.txt"
REVENGE = "bacon/04-of-revenge.md"
FRANCE = "What mistakes did the author attribute to France?"
HOSTILE = "planted/on-pixels.txt"
HOSTILE_TITLE = "Pixels, [links](http://127.0.0.1:9/title) and <b>tags</b>"
PIXEL = "![x](http://127.0.0.1:9/pixel)"
SCRIPT = "<script>alert(1)</script>"
JS_LINK = "[link](javascript:alert(1))"
HOSTILE_TEXT = f"""{HOSTILE_TITLE}

A careful reader of web pages learns that a tracking pixel hides in plain sight. The markup {PIXEL} asks a \
browser to fetch an invisible image, and the tag {SCRIPT} asks it to run a program. A link such as \
{JS_LINK} runs code when clicked.

The lesson of the tracking pixel is that text shown on a page must stay text: www.example.org, \
editor@example.org, :streamlit:, $x^2$ and -- stay as they are.
"""
LIGHTHOUSE = """# The Keeper of Skarvholm Light

Old Maren Hald kept the Skarvholm lighthouse for forty-one winters. She trimmed the wick with a silver \
knife her grandfather had forged from a wrecked ship's bell.

Every night she wrote the weather in a green ledger, and the ledger is now kept in the museum at Tromsø.
"""


def copy_corpus(corpus_dir: Path, target: Path, essays: tuple[str, ...], *, hostile: bool = False) -> Path:
    for rel in essays:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus_dir / rel, target / rel)
    if hostile:
        (target / HOSTILE).parent.mkdir(parents=True, exist_ok=True)
        (target / HOSTILE).write_text(HOSTILE_TEXT, encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> tuple[Path, Path]:
    """A small corpus with a hostile essay, indexed once for the tests that only read."""
    root = tmp_path_factory.mktemp("app")
    essays = (SAHEL, REVENGE, "bacon/50-of-studies.md", "bacon/10-of-love.md")
    corpus = copy_corpus(corpus_dir, root / "corpus", essays, hostile=True)
    run_ingest(Settings.from_env({}, corpus_dir=corpus, index_dir=root / "index"))
    return corpus, root / "index"


@pytest.fixture
def fresh(tmp_path: Path, corpus_dir: Path) -> tuple[Path, Path]:
    """Two essays and no index yet: the app builds it on first start. For the tests that write."""
    return copy_corpus(corpus_dir, tmp_path / "corpus", (SAHEL, REVENGE)), tmp_path / "index"


def open_app(monkeypatch: pytest.MonkeyPatch, where: tuple[Path, Path], **env: str) -> AppTest:
    for name in [n for n in os.environ if n.startswith("MARGINALIA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MARGINALIA_CORPUS_DIR", str(where[0]))
    monkeypatch.setenv("MARGINALIA_INDEX_DIR", str(where[1]))
    for name, value in env.items():
        monkeypatch.setenv(f"MARGINALIA_{name.upper()}", value)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    return at


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception
    return at


def texts(at: AppTest) -> list[str]:
    """Every Markdown source on the page: body, captions, alerts, dialog."""
    return [m.value for m in [*at.markdown, *at.caption, *at.warning, *at.info, *at.success, *at.error]]


def shown(at: AppTest) -> str:
    """The page's text as a browser would show it (as HTML, inline styles aside)."""
    return "\n".join(rendered(v) for v in texts(at))


def rendered(markdown: str) -> str:
    """HTML from a CommonMark parser, with the invisible word joiners dropped."""
    return (
        MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown).replace(WORD_JOINER, "")
    )


def highlight(quote: str) -> str:
    """How a quote's first line looks once highlighted (a highlight is cut at each line break)."""
    return f":orange-background[{escape(quote.strip().split(chr(10))[0].strip())}]"


def cards(at: AppTest, number: int) -> list[str]:
    """The Markdown of the source card numbered `number` in the last answer: header, passage, ..."""
    values = [m.value for m in at.chat_message[-1].markdown]
    start = next(i for i, v in enumerate(values) if v.startswith(f":blue-badge[{number}] "))
    return values[start : start + 2]


# --- first start ------------------------------------------------------------------------------------


def test_first_start_builds_the_index_then_opens_the_chat(monkeypatch, fresh) -> None:
    assert not catalog_path(Settings.from_env({}, index_dir=fresh[1])).exists()
    at = open_app(monkeypatch, fresh)
    assert catalog_path(Settings.from_env({}, index_dir=fresh[1])).exists()
    assert at.chat_input, "the chat opens once the index is built"
    assert re.match(r"Index built: 2 essays, \d+ passages", at.main.success[0].value)
    assert "Added 2, updated 0, removed 0, rejected 0" in at.sidebar.success[0].value
    assert [m.value for m in at.metric][:1] == ["2"]


def test_an_index_of_an_older_version_is_rebuilt_on_start(monkeypatch, fresh) -> None:
    settings = Settings.from_env({}, corpus_dir=fresh[0], index_dir=fresh[1])
    run_ingest(settings)
    catalog = Catalog(catalog_path(settings))
    catalog.set_meta({"sentences": "plain-v1"})  # as an index from before sentence vectors moved
    catalog.close()
    assert index_outdated(settings)
    read_only = open_app(monkeypatch, fresh, read_only="1")
    assert "older version" in read_only.error[0].value and not read_only.chat_input
    at = open_app(monkeypatch, fresh)
    assert at.chat_input and re.match(r"Index built: 2 essays, \d+ passages", at.main.success[0].value)
    assert not index_outdated(settings)
    catalog = Catalog(catalog_path(settings))
    assert catalog.sentence_total() > 0
    catalog.close()


# --- asking -----------------------------------------------------------------------------------------


def test_answer_has_markers_and_a_card_per_source_with_the_quote_highlighted(monkeypatch, indexed) -> None:
    at = ask(open_app(monkeypatch, indexed), FRANCE)
    answer = at.session_state["answers"][0]
    assert not answer.refused and answer.citations
    body = at.chat_message[1].markdown[0].value
    for c in answer.citations:
        assert f":blue-badge[{c.number}]" in body
        header, passage = cards(at, c.number)
        assert escape(c.title) in header
        assert (":green-badge[:material/verified: quote verified]" in header) == c.verified
        assert highlight(c.quote) in passage, "the quote is highlighted in its passage"
    kidal = [c for c in answer.citations if "Kidal" in c.quote]
    assert kidal and kidal[0].verified


def test_card_shows_author_and_year(monkeypatch, indexed) -> None:
    at = ask(open_app(monkeypatch, indexed), "What does Bacon say about revenge?")
    answer = at.session_state["answers"][0]
    assert answer.citations[0].essay == REVENGE
    assert "<strong>Of Revenge</strong> · Francis Bacon, 1625" in rendered(cards(at, 1)[0])


def test_follow_up_reads_the_conversation(monkeypatch, indexed) -> None:
    at = ask(ask(open_app(monkeypatch, indexed), FRANCE), "And what happened in Kidal?")
    second = at.session_state["answers"][1]
    assert second.standalone == f"{FRANCE} And what happened in Kidal?"
    assert any("Kidal" in c.quote for c in second.citations)
    assert any(v.startswith(":material/history: Read with the conversation as") for v in texts(at))
    assert len(at.chat_message) == 4, "the whole conversation stays on the page"


def test_filters_restrict_retrieval(monkeypatch, indexed) -> None:
    at = open_app(monkeypatch, indexed)
    at.multiselect(key="f_collections").set_value(["bacon"]).run()
    answer = ask(at, FRANCE).session_state["answers"][0]
    assert answer.passages and all(p.chunk.essay_id.startswith("bacon/") for p in answer.passages)
    at.multiselect(key="f_collections").set_value([]).run()
    at.multiselect(key="f_essays").set_value([SAHEL]).run()
    answer = ask(at, FRANCE).session_state["answers"][1]
    assert {p.chunk.essay_id for p in answer.passages} == {SAHEL}


def test_refusal_looks_different_and_shows_the_closest_passages(monkeypatch, indexed) -> None:
    at = ask(open_app(monkeypatch, indexed), "What did Darwin write about finches?")
    answer = at.session_state["answers"][0]
    assert answer.refused
    assert [w.value for w in at.chat_message[1].warning] == [escape(CANNOT_ANSWER)]
    values = [m.value for m in at.chat_message[1].markdown]
    assert not any(":blue-badge[" in v for v in values), "a refusal has no answer and no citations"
    assert sum(v.startswith(":gray-badge[") for v in values) == len(answer.passages) > 0


def test_read_in_context_opens_the_whole_essay_at_the_passage(monkeypatch, indexed) -> None:
    at = ask(open_app(monkeypatch, indexed), FRANCE)
    kidal = next(c for c in at.session_state["answers"][0].citations if "Kidal" in c.quote)
    at.button(key=f"a0-c{kidal.number}").click().run()
    dialog = at.get("dialog")[0]
    values = [m.value for m in dialog.markdown]
    assert values[0] == "### " + escape(kidal.title)
    assert highlight(kidal.quote) in values[-1]
    assert ":blue-background[" in values[-1], "the passage around the quote is marked too"
    opening = dialog.expander[0].markdown[0].value
    essay_text = Catalog(catalog_path(Settings.from_env({}, index_dir=indexed[1]))).essay(SAHEL).text
    first, last = essay_text.strip().split("\n")[0], essay_text.strip().split("\n")[-1]
    assert rendered(opening).startswith(f"<p>{first}")
    assert rendered(values[-1]).endswith(f"<p>{last}</p>\n"), "the essay runs to its end"


def test_hostile_essay_is_rendered_inert(monkeypatch, indexed) -> None:
    at = ask(open_app(monkeypatch, indexed), "What does a tracking pixel ask a browser to do?")
    answer = at.session_state["answers"][0]
    assert answer.citations and answer.citations[0].essay == HOSTILE
    at.button(key="a0-c1").click().run()
    page = shown(at)
    for hostile in (
        SCRIPT,
        PIXEL,
        JS_LINK,
        HOSTILE_TITLE,
        "www.example.org",
        "editor@example.org",
        ":streamlit:",
    ):
        assert _unescaped_html(hostile) in page, hostile
    assert "<a " not in page and "<img" not in page and "<script" not in page and "<b>" not in page
    for value in texts(at):
        # What Streamlit would still turn into a link, image, icon or math after parsing.
        assert not re.search(r"(?i)https?:|www\.|\w@\w|:streamlit:|(?<!\\)\$", value), value


def _unescaped_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_download_holds_the_chat_with_numbered_sources(monkeypatch, indexed) -> None:
    at = open_app(monkeypatch, indexed)
    assert at.download_button[0].disabled
    at = ask(at, FRANCE)
    assert not at.download_button[0].disabled
    markdown = transcript(at.session_state["answers"])
    assert f"## 1. {FRANCE}" in markdown
    assert re.search(r"^\[1\] .+ \(sahel/.+, chars \d+-\d+, verified\): “", markdown, re.MULTILINE)


def test_new_chat_clears_the_conversation(monkeypatch, indexed) -> None:
    at = ask(open_app(monkeypatch, indexed), FRANCE)
    click(at, "New chat")
    assert at.session_state["answers"] == [] and not at.chat_message


def test_read_only_hides_upload_and_reindex(monkeypatch, indexed) -> None:
    at = open_app(monkeypatch, indexed, read_only="true")
    assert not at.get("file_uploader")
    assert "Reindex" not in [b.label for b in at.button]
    assert any("Read-only deployment" in c.value for c in at.caption)
    assert ask(at, FRANCE).session_state["answers"][0].citations


# --- uploads and reindexing ---------------------------------------------------------------------------


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    uploader = at.get("file_uploader")[0]
    for name, data in files:
        uploader.upload(name, data, "application/octet-stream")
    click(at, "Upload and index")
    assert not at.exception
    return at


def test_upload_is_saved_safely_indexed_at_once_and_answers(monkeypatch, fresh) -> None:
    at = upload(open_app(monkeypatch, fresh), ("../../Keeper of Skarvholm.md", LIGHTHOUSE.encode()))
    saved = fresh[0] / "uploads" / "Keeper-of-Skarvholm.md"
    assert saved.read_text(encoding="utf-8") == LIGHTHOUSE
    assert not (fresh[0].parent / "Keeper of Skarvholm.md").exists()
    assert "Added 1, updated 0, removed 0, rejected 0" in at.success[0].value
    answer = ask(at, "What did Maren Hald use to trim the wick?").session_state["answers"][0]
    assert answer.citations[0].essay == "uploads/Keeper-of-Skarvholm.md"
    assert any("silver knife" in c.quote for c in answer.citations)


def test_uploaded_pdf_and_epub_answer_with_pages_and_open_in_context(monkeypatch, fresh, tmp_path) -> None:
    import documents

    pdf, book = tmp_path / "revenge.pdf", tmp_path / "essays.epub"
    documents.write_pdf(pdf, ("bacon/27-of-friendship.md", "bacon/57-of-anger.md"), columns=2, head="Essays")
    documents.write_epub(
        book, ("bacon/50-of-studies.md", "bacon/10-of-love.md"), title="Two", author="F", year="1625"
    )
    at = open_app(monkeypatch, fresh)
    accepted = set(at.get("file_uploader")[0].proto.type)
    assert {".pdf", ".epub", ".docx", ".md"} <= accepted
    at = upload(at, ("Anger and Friendship.pdf", pdf.read_bytes()), ("essays.epub", book.read_bytes()))
    assert "Added 3, updated 0, removed 0, rejected 0" in at.success[0].value  # the PDF and two chapters
    answer = ask(at, "How should a man fight anger?").session_state["answers"][0]
    cited = next(c for c in answer.citations if c.essay == "uploads/Anger-and-Friendship.pdf")
    assert cited.verified and cited.passage is not None and cited.passage.chunk.pages is not None
    label = page_label(cited.passage.chunk.pages)
    header = cards(at, cited.number)[0]
    assert header.endswith("quote verified]") and f" · {escape(label)}" in header
    at.button(key=f"a0-c{cited.number}").click().run()
    dialog = at.get("dialog")[0]
    assert escape(label) in dialog.caption[0].value
    assert highlight(cited.quote) in dialog.markdown[-1].value


def test_upload_with_a_taken_name_is_kept_under_a_new_one(monkeypatch, fresh) -> None:
    at = upload(open_app(monkeypatch, fresh), ("keeper.md", LIGHTHOUSE.encode()))
    at = upload(at, ("keeper.md", LIGHTHOUSE.replace("forty-one", "forty-two").encode()))
    assert (fresh[0] / "uploads" / "keeper-2.md").exists()
    assert "keeper.md: another essay is already called keeper.md; saved as uploads/keeper-2.md" in shown(at)
    at = upload(at, ("keeper.md", LIGHTHOUSE.encode()))
    assert "keeper.md: already in the corpus as uploads/keeper.md; nothing changed" in shown(at)


def test_upload_rejections_are_explained(monkeypatch, fresh) -> None:
    at = open_app(monkeypatch, fresh, max_file_mb="0.01")
    big = ("long.txt", b"word " * 4000)
    blank = ("blank.md", b"  \n\n ")
    png = ("picture.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    page = shown(upload(at, big, blank, png))
    assert "long.txt was not saved: 19.5 KB is over the 10.2 KB limit (MARGINALIA_MAX_FILE_MB)" in page
    assert "blank.md was not saved: empty file; nothing to index" in page
    assert "<strong>uploads/picture.txt</strong> was not indexed: not a text file (binary data)" in page
    assert "(the upload was removed from the corpus)" in page
    assert list((fresh[0] / "uploads").iterdir()) == []


def test_reindex_reports_what_changed(monkeypatch, fresh, corpus_dir) -> None:
    at = open_app(monkeypatch, fresh)
    at.multiselect(key="f_essays").set_value([REVENGE]).run()
    copy_corpus(corpus_dir, fresh[0], ("bacon/50-of-studies.md",))
    (fresh[0] / REVENGE).unlink()
    with (fresh[0] / SAHEL).open("a", encoding="utf-8") as fh:
        fh.write("\nA closing note added later.\n")
    click(at, "Reindex")
    assert not at.exception
    assert "Added 1, updated 1, removed 1, rejected 0; 0 unchanged." in at.success[0].value
    assert [m.value for m in at.metric][:1] == ["2"]
    assert at.multiselect(key="f_essays").value == [], "a filter on a removed essay is dropped"


def test_reindex_while_another_runs_says_so(monkeypatch, fresh) -> None:
    at = open_app(monkeypatch, fresh, lock_timeout="0.5")
    with index_lock(fresh[1], timeout=1):
        click(at, "Reindex")
    assert not at.exception
    assert "Another reindex is running" in at.error[0].value


def test_reindex_elsewhere_does_not_break_the_chat(monkeypatch, fresh) -> None:
    at = ask(open_app(monkeypatch, fresh), FRANCE)
    # The command line (another process) rewrites the quoted essay, moving every offset, and drops the other.
    text = (fresh[0] / SAHEL).read_text(encoding="utf-8")
    (fresh[0] / SAHEL).write_text("A preface added after the answer was given.\n\n" + text, encoding="utf-8")
    (fresh[0] / REVENGE).unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARGINALIA_")}
    subprocess.run(
        [sys.executable, "-m", "ingest", str(fresh[0]), "--index", str(fresh[1])],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    kidal = next(c for c in at.session_state["answers"][0].citations if "Kidal" in c.quote)
    at.button(key=f"a0-c{kidal.number}").click().run()
    assert not at.exception
    assert highlight(kidal.quote) in at.get("dialog")[0].markdown[-1].value, "the passage is found again"
    at = ask(at, "What does Bacon say about revenge?")
    assert len(at.chat_message) == 4
    assert all(p.chunk.essay_id != REVENGE for p in at.session_state["answers"][1].passages)


# --- generative answers -------------------------------------------------------------------------------


@pytest.mark.llm
def test_generative_mode_streams_then_shows_the_checked_answer(monkeypatch, indexed, tmp_path) -> None:
    model = require_model()
    with LlamaServer(model, tmp_path / "llama.log", n_threads=2) as server:
        at = open_app(
            monkeypatch,
            indexed,
            answer_mode="openai",
            llm_base_url=server.base_url,
            llm_model="smollm2",
            top_k="1",
        )
        assert at.radio(key="mode").value == "openai" and not at.radio(key="mode").disabled
        at = ask(at, "What does Bacon say about revenge?")
    answer = at.session_state["answers"][0]
    # The tiny model answers poorly: either its grounded answer or the extractive one with a notice.
    assert answer.mode == "llm:smollm2" or (answer.notice and answer.mode == "extractive")
    for value in texts(at):
        assert not re.search(r"(?i)https?:|www\.|!\[|\]\(", value), value


# --- an empty corpus ----------------------------------------------------------------------------------


@pytest.mark.parametrize("read_only", ["false", "true"])
def test_an_empty_corpus_opens_with_its_notice_and_refuses(monkeypatch, tmp_path: Path, read_only) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))  # rejected: binary
    at = open_app(monkeypatch, (corpus, tmp_path / "index"), read_only=read_only)
    notice = " ".join(i.value for i in at.info)
    assert "The corpus is empty" in notice and ("upload" in notice) == (read_only == "false")
    assert not at.main.success and [m.value for m in at.metric] == ["0", "0"]
    assert not any("Answers quote the 0 essays" in v for v in texts(at))
    if read_only == "false":
        assert "**photo.txt** was not indexed: not a text file" in " ".join(texts(at)).replace("\\", "")
    answer = ask(at, "What is revenge?").session_state["answers"][0]
    assert answer.refused and answer.text == CANNOT_ANSWER and not answer.passages
