"""Many readers: one `streamlit run app.py`, N sessions asking at once, a reindex running.

The run, in a scratch folder: a copy of the corpus and its index; the answer each session's
questions get from the Assistant directly; 20 essays none of those answers draw on are changed;
the app is started and warmed up with one question; then the sessions ask, while the command
line reindexes the changed essays (`python -m ingest`, as a person keeping the corpus would).
Every answer shown is checked against the direct one (before or after the reindex): an answer
matching another question's is *mixed*, a question with no answer shown is *lost*.

The sessions are real chromium pages (`client="browser"`, bench/readers.py: the whole path, the
browsers' drawing included) or bare websockets speaking Streamlit's protocol (`client="websocket"`,
bench/protocol.py: the server's own latency, with no browsers on the machine to share its cores).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.appserver import App, Reindex, cpu_by_kind, cpu_model, machine_busy
from bench.measure import PROJECT_DIR, BenchError, child_env, percentiles
from bench.readers import Shown, letters
from bench.startup import unavailable

log = logging.getLogger(__name__)

NOTE = "\n\nA note for the reader: this essay was revised in the load run.\n"


def conversations(questions: Sequence[dict], sessions: int) -> list[list[str]]:
    """The questions dealt out to the sessions; a follow-up stays in the session of the question it
    follows, right after it, so every session asks different questions and follow-ups read well."""
    units: list[list[dict]] = []
    where: dict[str, list[dict]] = {}
    for q in questions:
        unit = where.get(q.get("follows", "")) or []
        if not unit:
            units.append(unit)
        unit.append(q)
        where[q["id"]] = unit
    out: list[list[str]] = [[] for _ in range(sessions)]
    for n, unit in enumerate(units):
        out[n % sessions].extend(q["question"] for q in unit)
    return out


def expected(corpus: Path, index: Path, sessions: Sequence[Sequence[str]]) -> list[list[dict]]:
    """What each session's questions get from the Assistant directly, conversation by conversation.

    Run in a fresh process (see `_expected`), so this process never holds the index open.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_expected, str(corpus), str(index), [list(s) for s in sessions]).result()


def _expected(corpus: str, index: str, sessions: list[list[str]]) -> list[list[dict]]:
    from ingest.settings import Settings
    from retrieval.assistant import Assistant
    from retrieval.types import Turn, turn_of

    assistant = Assistant(Settings.from_env({}, corpus_dir=Path(corpus), index_dir=Path(index)))
    out = []
    for questions in sessions:
        history: list[Turn] = []
        answers = []
        for question in questions:
            answer = assistant.ask(question, history)
            history.append(turn_of(answer))
            cards = (
                [(p.essay.title, p.essay.id) for p in answer.passages]
                if answer.refused
                else [(c.title, c.passage.essay.id if c.passage else "") for c in answer.citations]
            )
            answers.append(
                {
                    "question": question,
                    "text": answer.text,
                    # as a card names the essay:
                    "titles": [title or essay_id or "Untitled" for title, essay_id in cards],
                    "essays": sorted({p.chunk.essay_id for p in answer.passages}),
                }
            )
        out.append(answers)
    return out


def change_essays(corpus: Path, keep: set[str], count: int) -> list[str]:
    """Append a note to `count` essays spread over the corpus, none of them in `keep`."""
    candidates = sorted(
        p.relative_to(corpus).as_posix()
        for p in corpus.rglob("*")
        if p.suffix in {".md", ".txt"} and p.parent != corpus
    )
    candidates = [c for c in candidates if c not in keep]
    if len(candidates) < count:
        raise BenchError(f"only {len(candidates)} essays can be changed, {count} wanted")
    step = len(candidates) / count
    chosen = [candidates[int(i * step)] for i in range(count)]
    for rel in chosen:
        with (corpus / rel).open("a", encoding="utf-8") as fh:
            fh.write(NOTE)
    return chosen


def verdict(shown: Shown, before: dict, after: dict, others: Sequence[dict]) -> str:
    """ "ok", "error", "mixed" (the answer to another question), "echo" (another question shown) or
    "differs" (neither the answer before nor after the reindex: an index caught between the two)."""
    if shown.error or not shown.seconds:
        return "error"
    if letters(shown.echo) != letters(shown.question):
        return "echo"

    def matches(want: dict) -> bool:
        text = letters(shown.text)
        return letters(want["text"]) in text and [letters(t) for t in shown.titles] == [
            letters(t) for t in want["titles"]
        ]

    if matches(before) or matches(after):
        return "ok"
    if any(matches(o) for o in others if letters(o["text"]) != letters(before["text"])):
        return "mixed"
    return "differs"


CLIENTS = ("browser", "websocket")


def run_load(
    *,
    sessions: int,
    corpus: Path,
    questions: Path,
    work: Path,
    client: str = "browser",
    changed: int = 20,
    timeout_s: float = 60,
) -> dict:
    """The whole run; its figures and every answer's verdict, as a JSON-ready dict."""
    if client == "browser":
        if why := unavailable():
            raise BenchError(f"--load needs the browser: {why}; or ask over websockets: --client websocket")
        from bench.readers import read
    elif client == "websocket":
        from bench.protocol import read
    else:
        raise BenchError(f"--client {client}: not a client; one of {', '.join(CLIENTS)}")
    base = _base_index(corpus, work / "base")
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(base / "corpus", run / "corpus")
    shutil.copytree(base / "index", run / "index")
    dev = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    asked = conversations(dev, sessions)
    log.info("expected answers of %d questions in %d sessions", sum(map(len, asked)), sessions)
    before = expected(run / "corpus", run / "index", asked)
    keep = {e for s in before for a in s for e in a["essays"]}
    chosen = change_essays(run / "corpus", keep, changed)
    with App(run, reader=read) as app:
        load_before = os.getloadavg()
        log.info("%d sessions asking; reindexing %d changed essays", sessions, len(chosen))
        reindex = Reindex(run)
        marks: list[dict[str, float]] = []

        def mark() -> None:  # CPU used by each kind of process while the sessions ask
            marks.append({**cpu_by_kind(app.pid), "whole machine": machine_busy()})

        def start() -> None:
            mark()
            reindex.start()

        # Bare websocket sessions answer the 61 questions in a few seconds, well before the reindex
        # has written anything; they go on asking (a new session per round) until it is done.
        more = {"again": reindex.running} if client == "websocket" else {}
        shown = read(app.url, asked, timeout_s=timeout_s, on_start=start, on_end=mark, **more)
        load_after = os.getloadavg()
        ingest = reindex.finish()
    cpu = {k: round(marks[1][k] - marks[0][k], 1) for k in marks[0]}
    cpu["reindex (all of it)"] = ingest["cpu_seconds"]  # type: ignore[assignment]
    after = expected(run / "corpus", run / "index", asked)
    doc = _report(sessions, asked, shown, before, after, ingest, chosen, load_before, load_after, cpu)
    return {"client": client, **doc}


def _base_index(corpus: Path, base: Path) -> Path:
    """A copy of the corpus and its index, built once per scratch folder (`--work DIR --keep` reuses it)."""
    if (base / "index" / "catalog.sqlite").is_file() and (base / "done").is_file():
        return base
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(corpus, base / "corpus")
    log.info("indexing the corpus once into %s", base / "index")
    cmd = [sys.executable, "-m", "ingest", str(base / "corpus"), "--index", str(base / "index"), "--json"]
    with (base / "ingest.log").open("w") as err:
        done = subprocess.run(cmd, cwd=PROJECT_DIR, env=child_env(), stdout=subprocess.DEVNULL, stderr=err)
    if done.returncode != 0:
        raise BenchError(f"indexing the corpus failed; see {base / 'ingest.log'}")
    (base / "done").touch()
    return base


def check(
    shown: list[list[Shown]], before: list[list[dict]], after: list[list[dict]]
) -> list[dict[str, Any]]:
    """Every answer shown, with its verdict against the answers its question gets directly."""
    everyone = [a for s in before + after for a in s]
    rows = []
    for s, answers in enumerate(shown):
        for got in answers:
            want_before, want_after = before[s][got.turn], after[s][got.turn]
            others = [a for a in everyone if letters(a["question"]) != letters(got.question)]
            rows.append({**got.to_dict(), "verdict": verdict(got, want_before, want_after, others)})
    return rows


_KEPT = ("session", "round", "turn", "question", "sent_at", "seconds", "verdict", "error")


def _report(
    sessions: int,
    asked: list[list[str]],
    shown: list[list[Shown]],
    before: list[list[dict]],
    after: list[list[dict]],
    ingest: dict[str, object],
    chosen: list[str],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    cpu: dict[str, float],
) -> dict:
    rows = check(shown, before, after)
    began, ended = 0.0, float(ingest.get("seconds", 0.0))  # type: ignore[arg-type]
    during = [r for r in rows if r["seconds"] and began <= r["sent_at"] <= ended]
    timed = [r for r in rows if r["verdict"] != "error"]
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("ok", "differs", "mixed", "echo", "error")}
    rounds = [max((r["round"] for r in rows if r["session"] == s), default=0) + 1 for s in range(len(asked))]
    total = sum(n * len(qs) for n, qs in zip(rounds, asked, strict=True))  # questions asked, every round
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "sessions": sessions,
        "questions": total,
        "rounds": rounds,
        "answered": len(timed),
        "lost": total - len(rows) + counts["error"],
        "verdicts": counts,
        "answer_ms": percentiles([r["seconds"] * 1000 for r in timed]),
        "answer_ms_during_reindex": percentiles(
            [r["seconds"] * 1000 for r in during if r["verdict"] != "error"]
        ),
        "reindex": {**ingest, "essays": chosen},
        "cpu_seconds": cpu,
        "asking_seconds": round(max((r["sent_at"] + r["seconds"] for r in rows), default=0.0), 2),
        "answers": [
            {k: r[k] for k in _KEPT}
            | (
                {}
                if r["verdict"] == "ok"
                else {"echo": r["echo"], "shown": r["text"][:400], "titles": r["titles"]}
            )
            for r in rows
        ],
    }


def summary(doc: dict) -> list[str]:
    """The run in a few lines, for the terminal."""
    ms, during, re = doc["answer_ms"], doc["answer_ms_during_reindex"], doc["reindex"]
    return [
        f"{doc['sessions']} {doc.get('client', 'browser')} sessions, {doc['questions']} questions "
        f"(conversations asked {doc.get('rounds')} times); "
        f"{doc['cpu']}, {doc['cores']} cores",
        f"load average before {doc['load_avg_before']}, after {doc['load_avg_after']}",
        f"answers p50 {ms['p50']:.0f} ms, p95 {ms['p95']:.0f} ms, max {ms['max']:.0f} ms (n={ms['n']})",
        f"  while the reindex ran: p50 {during['p50']:.0f} ms, p95 {during['p95']:.0f} ms (n={during['n']})",
        f"reindex of {re['updated']} changed essays: {re['seconds']} s, {re['cpu_seconds']} CPU s",
        f"CPU seconds while asking: {doc['cpu_seconds']}",
        f"verdicts {doc['verdicts']}; lost {doc['lost']}",
    ]
