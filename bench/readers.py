"""Readers in real browsers: several chromium contexts asking one `streamlit run app.py` at once.

Each session is its own browser context (its own cookies, so its own Streamlit session) and asks
its own questions in order, follow-ups included. An answer is timed on the page's own clock, from
the Enter key that sends the question to the moment the answer is drawn with its sources, the
script has finished and no spinner is left; what the page then shows is kept, to be checked
against the answer the same question gets from the Assistant directly.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from bench.startup import CHROMIUM, CHROMIUM_ARGS

# Every context is a window of its own; chromium would slow the timers and frames of those it
# counts as hidden, which would time the browser's throttling rather than the app.
LOAD_ARGS = [
    *CHROMIUM_ARGS,
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]

# Marks the time the question is sent (the Enter key in the chat box), on the page's clock.
_ARM = """() => {
  window.__sent = null;
  const box = document.querySelector('[data-testid="stChatInputTextArea"]');
  box.addEventListener('keydown', (e) => { if (e.key === 'Enter') window.__sent = performance.now(); },
                       {once: true, capture: true});
}"""

# Waits, in the page, until the answer (message `before + 1`) is drawn with a badge or a notice,
# the script has finished and no spinner is left; an exception or error on the page, a lost
# connection or the timeout end the wait too. Checked on each change to the page (a mutation
# observer), not by polling: eight pages polling their whole chat every few milliseconds cost
# more CPU than the server did.
_WAIT = """([before, timeoutMs]) => new Promise((resolve) => {
  const content = (m) => m.querySelector('[data-testid="stChatMessageContent"]') || m;
  const check = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    const failed = document.querySelector(
      '[data-testid="stException"], [data-testid="stAlertContentError"]');
    const lost = app && app.getAttribute('data-test-connection-state') !== 'CONNECTED';
    const messages = document.querySelectorAll('[data-testid="stChatMessage"]');
    const answer = messages[before + 1];
    const drawn = answer && answer.querySelector('.stMarkdownBadge, [data-testid="stAlert"]');
    const idle = app && app.getAttribute('data-test-script-state') === 'notRunning'
      && !document.querySelector('[data-testid="stSpinner"]');
    if (!failed && !lost && !(drawn && idle)) return null;
    return {
      ms: performance.now() - window.__sent,
      echo: messages[before] ? content(messages[before]).innerText : '',
      text: answer ? content(answer).innerText : '',
      titles: answer ? [...answer.querySelectorAll('[class*="st-key-card-"] strong')].map(
        (e) => e.innerText) : [],
      error: failed ? failed.innerText.slice(0, 500) : (lost ? 'connection ' + app.getAttribute(
        'data-test-connection-state') : ''),
    };
  };
  const done = check();
  if (done) return resolve(done);
  const observer = new MutationObserver(() => {
    const result = check();
    if (result) { observer.disconnect(); clearTimeout(timer); resolve(result); }
  });
  const timer = setTimeout(() => { observer.disconnect(); resolve(null); }, timeoutMs);
  observer.observe(document.body, {subtree: true, childList: true, characterData: true,
    attributes: true, attributeFilter: ['data-test-script-state', 'data-test-connection-state']});
})"""


@dataclass(frozen=True)
class Shown:
    """One answer as a session's page showed it."""

    session: int
    turn: int
    question: str
    sent_at: float  # seconds since the sessions started asking
    seconds: float  # from the Enter key to the answer drawn; 0 when it never was
    echo: str  # the question as the chat shows it
    text: str  # the whole answer message: answer, then its cards
    titles: tuple[str, ...]  # the cards' essay titles, in order
    error: str  # an exception or error shown, a lost connection or a timeout; "" when none
    round: int = 0  # the how-many-th time this session's conversation was asked (from 0)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


async def _session(
    browser, url: str, number: int, questions: Sequence[str], start: Start, timeout_s: float
) -> list[Shown]:
    # Contexts stay open until every session is done (the browser closes them): the CPU a
    # session's renderer used is still counted when the last one finishes.
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    await page.goto(url, timeout=timeout_s * 1000)
    box = page.get_by_test_id("stChatInputTextArea")
    await box.wait_for(timeout=timeout_s * 1000)
    began = await start.wait()
    shown = []
    for turn, question in enumerate(questions):
        before = await page.get_by_test_id("stChatMessage").count()
        await box.fill(question)
        await page.evaluate(_ARM)
        sent_at = time.monotonic() - began
        await box.press("Enter")
        got = await page.evaluate(_WAIT, [before, timeout_s * 1000])
        if got is None:
            late = f"no answer within {timeout_s:.0f} s"
            shown.append(Shown(number, turn, question, sent_at, 0.0, "", "", (), late))
            break
        shown.append(
            Shown(
                number,
                turn,
                question,
                round(sent_at, 3),
                round(got["ms"] / 1000, 3),
                got["echo"],
                got["text"],
                tuple(got["titles"]),
                got["error"],
            )
        )
        if got["error"]:
            break
    return shown


class Start:
    """Lets every session open its page first, then starts them asking together (after `on_start`)."""

    def __init__(self, sessions: int, on_start: Callable[[], None]) -> None:
        self._barrier = asyncio.Barrier(sessions)
        self._on_start = on_start
        self.began = 0.0

    async def wait(self) -> float:
        if await self._barrier.wait() == 0:  # one session, chosen by the barrier, starts the clock
            self._on_start()
            self.began = time.monotonic()
        await self._barrier.wait()
        return self.began


async def _read(
    url: str,
    conversations: Sequence[Sequence[str]],
    timeout_s: float,
    on_start: Callable[[], None],
    on_end: Callable[[], None],
) -> list[list[Shown]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=LOAD_ARGS, headless=True)
        try:
            start = Start(len(conversations), on_start)
            sessions = (_session(browser, url, n, qs, start, timeout_s) for n, qs in enumerate(conversations))
            shown = list(await asyncio.gather(*sessions))
            on_end()
            return shown
        finally:
            await browser.close()


def read(
    url: str,
    conversations: Sequence[Sequence[str]],
    *,
    timeout_s: float = 60,
    on_start: Callable[[], None] = lambda: None,
    on_end: Callable[[], None] = lambda: None,
) -> list[list[Shown]]:
    """Every session opens the page, then all ask their questions at once, each in order; what each
    page showed. `on_start` runs once as they start asking (e.g. to launch a reindex), `on_end`
    once they have all finished, before the browser closes."""
    return asyncio.run(_read(url, conversations, timeout_s, on_start, on_end))


def letters(text: str) -> str:
    """Text reduced to its lower-case letters: the same answer compares equal as Markdown and as shown
    (markers become badges, bullets list items, punctuation escapes vanish)."""
    return re.sub(r"[^a-z]+", "", text.lower())
