"""Readers over bare websockets (bench/protocol.py): three sessions speak Streamlit's protocol to one
`streamlit run app.py` at once, each must be shown its own answers, the same the Assistant gives
directly. The timed run is `python -m bench --load --client websocket`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from bench.appserver import App
from bench.load import check, conversations, expected
from bench.protocol import as_shown, read
from ingest.settings import Settings
from ui.markup import answer_text, escape

PROJECT_DIR = Path(__file__).resolve().parent.parent


def test_markdown_reads_as_the_page_shows_it() -> None:
    assert (
        as_shown(answer_text("Faction is a number of citizens [1].", [1]))
        == "Faction is a number of citizens 1."
    )
    assert as_shown(f":gray-badge[2] **{escape('Federalist No. 10: The **Union**')}**") == (
        "2 Federalist No. 10: The **Union**"
    )
    assert as_shown(":green-badge[:material/verified: quote verified]") == " quote verified"


def test_three_websocket_sessions_get_their_own_answers(shipped_index: Settings, tmp_path: Path) -> None:
    shutil.copytree(PROJECT_DIR / "corpus", tmp_path / "corpus")
    shutil.copytree(shipped_index.index_dir, tmp_path / "index")
    dev = [json.loads(line) for line in (PROJECT_DIR / "eval" / "dev.jsonl").read_text().splitlines()]
    dealt = conversations(dev, 8)
    # Two with a follow-up ("What does he predict will happen to those missions…", "Why does he reject
    # the first of those?"), answered right only when read with the session's own previous answer.
    asked = [dealt[1][:2], dealt[6][2:4], dealt[7][2:4]]
    follow_ups = {q["question"] for q in dev if q.get("follows")}
    assert [sum(q in follow_ups for q in qs) for qs in asked] == [1, 0, 1]
    want = expected(tmp_path / "corpus", tmp_path / "index", asked)

    rounds = [True] * len(asked)  # each session asks its conversation twice, the second time afresh

    with App(tmp_path, reader=read) as app:
        shown = read(app.url, asked, timeout_s=60, again=lambda: bool(rounds) and rounds.pop())

    rows = check(shown, want, want)
    assert [(r["session"], r["round"], r["question"]) for r in rows] == [
        (s, n, q) for s, qs in enumerate(asked) for n in (0, 1) for q in qs
    ], "every question was answered, none lost"
    assert [(r["session"], r["turn"], r["verdict"], r["error"]) for r in rows if r["verdict"] != "ok"] == []
    assert all(r["titles"] for r in rows), "the answers' source cards were read"

    # The check tells the sessions apart: the first two sessions' first answers swapped are caught.
    first, second = shown[0][0], shown[1][0]
    swapped = [
        [dataclasses.replace(first, text=second.text, titles=second.titles)],
        [dataclasses.replace(second, text=first.text, titles=first.titles)],
    ]
    assert [r["verdict"] for r in check(swapped, want, want)] == ["mixed", "mixed"]
