"""Many readers, small: three chromium sessions ask one `streamlit run app.py` at once while
`python -m ingest` reindexes changed essays. Each must be shown its own answers, the same the
Assistant gives directly, with no error. The full run (8 sessions, timed) is `python -m bench --load`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.appserver import App, Reindex
from bench.load import change_essays, check, conversations, expected
from bench.readers import read
from bench.startup import CHROMIUM
from ingest.settings import Settings

pytest.importorskip("playwright.async_api", reason="pip install -r requirements-dev.txt")

PROJECT_DIR = Path(__file__).resolve().parent.parent
REVISED = "Which essays were revised in the load run, according to the note for the reader?"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
]


def test_three_sessions_get_their_own_answers_while_a_reindex_runs(
    shipped_index: Settings, tmp_path: Path
) -> None:
    shutil.copytree(PROJECT_DIR / "corpus", tmp_path / "corpus")
    shutil.copytree(shipped_index.index_dir, tmp_path / "index")
    dev = [json.loads(line) for line in (PROJECT_DIR / "eval" / "dev.jsonl").read_text().splitlines()]
    # Three conversations of three questions, two with a follow-up ("How did that rejection come
    # across?" is read with its own session's previous answer, and means nothing without it).
    asked = [questions[:3] for questions in conversations(dev, 8)[:3]]
    follow_ups = {q["question"] for q in dev if q.get("follows")}
    assert sum(q in follow_ups for qs in asked for q in qs) == 2
    before = expected(tmp_path / "corpus", tmp_path / "index", asked)
    keep = {e for session in before for a in session for e in a["essays"]}
    changed = change_essays(tmp_path / "corpus", keep, 8)

    with App(tmp_path) as app:
        reindex = Reindex(tmp_path)
        shown = read(app.url, asked, timeout_s=60, on_start=reindex.start)
        ingest = reindex.finish()
        # Once it is done, a new session asks what only the changed essays say: its vectors were
        # written by another process than the app's.
        revised = read(app.url, [[REVISED]], timeout_s=60)
    after = expected(tmp_path / "corpus", tmp_path / "index", [*asked, [REVISED]])
    revised_after = after.pop()
    assert set(revised_after[0]["essays"]) & set(changed), "the question finds the changed essays"
    assert [r["verdict"] for r in check(revised, [revised_after], [revised_after])] == ["ok"]

    assert ingest["updated"] == len(changed)
    rows = check(shown, before, after)
    assert [(r["session"], r["question"]) for r in rows] == [
        (s, q) for s, qs in enumerate(asked) for q in qs
    ], "every question was answered, none lost"
    assert [r for r in rows if r["verdict"] != "ok"] == [], "each session saw its own answers, no error"
    assert min(r["sent_at"] for r in rows) < float(ingest["seconds"]), "the reindex ran while they asked"


def test_an_answer_shown_to_the_wrong_session_or_not_at_all_is_caught() -> None:
    from bench.readers import Shown

    before = [
        [{"question": "Q one?", "text": "First answer [1].", "titles": ["Essay A"], "essays": []}],
        [{"question": "Q two?", "text": "Second answer [1].", "titles": ["Essay B"], "essays": []}],
    ]

    def shown(session: int, question: str, text: str, titles: tuple[str, ...], seconds: float = 0.5):
        return Shown(session, 0, question, 0.0, seconds, f"{question}", text, titles, "")

    right = [[shown(0, "Q one?", "First answer 1\n\nSources\n\n1 Essay A", ("Essay A",))],
             [shown(1, "Q two?", "Second answer 1", ("Essay B",))]]  # fmt: skip
    assert [r["verdict"] for r in check(right, before, before)] == ["ok", "ok"]
    swapped = [[shown(0, "Q one?", "Second answer 1", ("Essay B",))], [shown(1, "Q two?", "", (), seconds=0)]]
    assert [r["verdict"] for r in check(swapped, before, before)] == ["mixed", "error"]
