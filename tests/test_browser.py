"""The real thing: `streamlit run app.py` on 127.0.0.1 over the shipped corpus, driven by Debian's chromium.

Needs the `chromium` system package and `playwright` (requirements-dev.txt); never `playwright install`.
The shipped corpus is indexed once into pytest's cache folder (a few minutes the first time, a quick
incremental check afterwards) and copied to tmp_path for the test, so uploads never touch the repository.
Set SCREENSHOT=docs/screenshot.png to keep the screenshot for the README.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.measure import stop
from bench.startup import CHROMIUM, CHROMIUM_ARGS
from ingest.settings import Settings

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")

PROJECT_DIR = Path(__file__).resolve().parent.parent
FRANCE = "What mistakes did the author attribute to France?"
KIDAL = "Whatever happened in Kidal between France, the Tuareg-led separatists, and the ex-jihadists"
PIXEL_HOST = "127.0.0.1:9"
CARD = "[class*='st-key-card-']"  # each source card is a keyed, bordered container
HOSTILE = f"""Pixels, [links](http://{PIXEL_HOST}/title) and <b>tags</b>

A careful reader of web pages learns that a tracking pixel hides in plain sight. The markup \
![x](http://{PIXEL_HOST}/pixel) asks a browser to fetch an invisible image, and the tag \
<script>alert(1)</script> asks it to run a program. A link such as [link](javascript:alert(1)) runs \
code when clicked.

The lesson of the tracking pixel is that text shown on a page must stay text: www.example.org and \
editor@example.org stay as they are.
"""
STARTUP = 180_000  # ms: the server's first session opens the index (and may convert the model)
STEP = 90_000  # ms: one answer, or an upload with its reindex, on a busy machine

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
]


@pytest.fixture(scope="module")
def server(shipped_index: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`streamlit run app.py` over a copy of the shipped corpus and its index: (page URL, corpus)."""
    root = tmp_path_factory.mktemp("browser")
    corpus, index, log_path = root / "corpus", root / "index", root / "streamlit.log"
    shutil.copytree(PROJECT_DIR / "corpus", corpus)
    shutil.copytree(shipped_index.index_dir, index)
    port = _free_port()
    env = _clean_env(MARGINALIA_CORPUS_DIR=str(corpus), MARGINALIA_INDEX_DIR=str(index))
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
        "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, log_path)
            yield f"http://127.0.0.1:{port}/", corpus
        finally:
            stop(proc)


@pytest.fixture
def page(server: tuple[str, Path]) -> Iterator[sync_api.Page]:
    """A fresh chat in headless chromium that can reach the app and nothing else."""
    url = server[0]
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda r: requests.append(r.url))
        page.route(
            "**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort()
        )
        page.goto(url)
        page.get_by_test_id("stChatInput").locator("textarea").wait_for(timeout=STARTUP)
        yield page
        browser.close()
    assert not [u for u in requests if PIXEL_HOST in u], "an essay made the browser fetch something"
    assert not [u for u in requests if not u.startswith(url)], "the page called out"


def test_answer_carries_citations_and_the_kidal_card(page: sync_api.Page, tmp_path: Path) -> None:
    answer = _ask(page, FRANCE)
    assert answer.locator(".stMarkdownBadge").filter(has_text="1").count() >= 1, "inline [n] markers"
    highlight = page.locator(".stMarkdownColoredBackground", has_text=KIDAL)
    kidal = answer.locator(CARD).filter(has=highlight).first
    kidal.wait_for()
    assert kidal.get_by_text("quote verified").count() == 1
    assert "Could Mali’s Coup Have Been Avoided?" in kidal.inner_text()
    _screenshot(page, tmp_path / "screenshot.png")

    with page.expect_download() as download:
        page.get_by_test_id("stSidebar").get_by_role("button", name="Download").click()
    saved = Path(download.value.path()).read_text(encoding="utf-8")
    assert f"## 1. {FRANCE}" in saved and "Sources:" in saved and KIDAL in saved


def test_uploaded_essay_answers_and_its_markup_stays_inert(
    page: sync_api.Page, server: tuple[str, Path]
) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": "On Pixels.txt", "mimeType": "text/plain", "buffer": HOSTILE.encode()}]
    )
    sidebar.get_by_role("button", name="Upload and index").click()
    sidebar.get_by_text("Added 1, updated 0, removed 0, rejected 0").wait_for(timeout=STEP)
    assert (server[1] / "uploads/On-Pixels.txt").exists()

    answer = _ask(page, "What does a tracking pixel ask a browser to do?")
    first = answer.locator(CARD).first
    assert "Pixels, [links](http://127.0.0.1:9/title) and <b>tags</b>" in _text(first)
    first.get_by_role("button", name="Read in context").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("tracking pixel hides in plain sight", exact=False).first.wait_for()
    for shown in (answer, dialog):
        text = _text(shown)
        for hostile in (
            "<script>alert(1)</script>",
            f"![x](http://{PIXEL_HOST}/pixel)",
            "[link](javascript:alert(1))",
            "www.example.org",
            "editor@example.org",
        ):
            assert hostile in text
    assert page.locator(f"img[src*='{PIXEL_HOST}']").count() == 0
    assert page.locator("a[href^='javascript:']").count() == 0
    assert page.locator("main a[href*='example.org'], [role=dialog] a[href*='example.org']").count() == 0
    assert page.locator("script", has_text="alert(1)").count() == 0
    page.keyboard.press("Escape")  # closes the essay
    dialog.wait_for(state="hidden")
    # Titles are essay data too: the essay filter lists this one as plain text.
    sidebar.get_by_test_id("stMultiSelect").filter(has_text="Essays").click()
    page.keyboard.type("Pixels")
    page.get_by_role("option", name="Pixels, [links](http://127.0.0.1:9/title)", exact=False).first.wait_for()
    assert page.locator(f"img[src*='{PIXEL_HOST}'], a[href*='{PIXEL_HOST}']").count() == 0


def _ask(page: sync_api.Page, question: str) -> sync_api.Locator:
    """Type a question, wait for its answer, and return the answer's chat message."""
    before = page.get_by_test_id("stChatMessage").count()
    chat = page.get_by_test_id("stChatInput").locator("textarea")
    chat.fill(question)
    chat.press("Enter")
    page.wait_for_function(
        f"document.querySelectorAll('[data-testid=stChatMessage]').length >= {before + 2}", timeout=STEP
    )
    answer = page.get_by_test_id("stChatMessage").nth(before + 1)
    answer.locator(".stMarkdownBadge, [data-testid=stAlert]").first.wait_for(timeout=STEP)
    return answer


def _text(locator: sync_api.Locator) -> str:
    """What the reader sees, without the invisible word joiners that keep URLs from becoming links."""
    return locator.inner_text().replace("\u2060", "")


def _screenshot(page: sync_api.Page, path: Path) -> None:
    """The question, the answer and its first cards; copied to $SCREENSHOT when that is set."""
    # Scrolled the way a person would: the chat keeps itself pinned to the bottom otherwise.
    page.mouse.move(800, 500)
    for _ in range(20):
        top = page.get_by_test_id("stChatMessage").nth(0).bounding_box()
        if top is None or abs(top["y"] - 40) < 8:
            break
        page.mouse.wheel(0, top["y"] - 40)
        page.wait_for_timeout(250)
    page.screenshot(path=str(path))
    if os.environ.get("SCREENSHOT"):
        target = PROJECT_DIR / os.environ["SCREENSHOT"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARGINALIA_")}
    return {**env, "PYTHONPATH": str(PROJECT_DIR), **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not answer on {url} within {timeout:.0f} s:\n{log.read_text()}")
