"""Start-up of the real app: launch `streamlit run app.py`, ask in a real browser, time to the answer.

A headless Debian chromium, driven by playwright, is opened first (a person's browser is already
open), then the clock starts as streamlit is launched; it stops when the app shows an answer
and no spinner is left.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.measure import PROJECT_DIR, child_env, pid_peak_rss_mb, stop
from bench.server import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Done when the script has finished its run (the answer is drawn with its sources after a rerun),
# no spinner is left, and the assistant's message has text.
_ANSWERED = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const messages = document.querySelectorAll('[data-testid="stChatMessage"]');
  if (messages.length < 2 || document.querySelector('[data-testid="stSpinner"]')) return false;
  return messages[1].innerText.trim().length > 40;
}"""


def unavailable() -> str | None:
    """Why the app measurement cannot run here, or None when it can."""
    if not (PROJECT_DIR / "app.py").is_file():
        return "app.py is not there yet"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    return None


def app_first_answer(spec: dict) -> dict:
    """Phase: seconds from launching streamlit to the first answer on the page, with an index present."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**child_env(), "MARGINALIA_INDEX_DIR": spec["index"]}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]
    timeout_ms = float(spec.get("timeout", 120)) * 1000
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        began = time.perf_counter()
        with open(spec["log"], "ab") as log:
            proc = subprocess.Popen(cmd, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(port, timeout_ms / 1000)
            serving_s = time.perf_counter() - began
            page.goto(f"http://127.0.0.1:{port}/", timeout=timeout_ms)
            box = page.get_by_test_id("stChatInputTextArea")
            box.wait_for(timeout=timeout_ms)
            input_s = time.perf_counter() - began  # the chat box is drawn after the assistant is open
            box.fill(spec["question"])
            box.press("Enter")
            # The answer is the second chat message, done when no spinner is left and it has text.
            page.wait_for_function(_ANSWERED, timeout=timeout_ms)
            seconds = time.perf_counter() - began
            answer = page.get_by_test_id("stChatMessage").nth(1).inner_text()
            peak = pid_peak_rss_mb(proc.pid)
        finally:
            stop(proc)
            browser.close()
    return {
        "first_answer_seconds": round(seconds, 2),
        "server_up_seconds": round(serving_s, 2),
        "chat_input_seconds": round(input_s, 2),
        "answer_chars": len(answer),
        "peak_rss_mb": peak,
    }


def _wait_healthy(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/_stcore/health"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"streamlit did not answer {url} within {timeout:.0f} s")
