"""Command line: python -m retrieval ask "question" | ask --jsonl FILE | eval FILE.

Exit status: 0 on success, 1 when the index is missing or the store unreachable, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from ingest.errors import MarginaliaError
from ingest.settings import Settings
from retrieval.assistant import Assistant
from retrieval.evaluate import by_type, read_questions, score
from retrieval.record import answer_dict, answer_markdown
from retrieval.snapshot import Filters
from retrieval.support import FEATURES
from retrieval.types import Answer, Turn, turn_of


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        settings = Settings.from_env(
            index_dir=args.index,
            chroma_host=args.chroma_host,
            chroma_port=args.chroma_port,
            answer_mode=args.llm,
            llm_base_url=args.llm_url,
            llm_model=args.llm_model,
        )
        assistant = Assistant.open(settings)
        if args.command == "eval":
            others = [Assistant.open(replace(settings, index_dir=i)) for i in args.compare or ()]
            return _eval([assistant, *others], args)
        if args.command == "calibrate":
            return _calibrate(assistant, args)
        if args.jsonl:
            for row in ask_all(assistant, read_questions(args.jsonl), k=args.k):
                print(json.dumps(row, ensure_ascii=False), flush=True)
            return 0
        if not args.question:
            print("error: give a question, or --jsonl FILE", file=sys.stderr)
            return 2
        filters = Filters(tuple(args.collection or ()), tuple(args.author or ()), tuple(args.essay or ()))
        question = " ".join(args.question)
        if args.json:
            answer = assistant.ask(question, k=args.k, filters=filters)
            print(json.dumps(answer_dict(answer), ensure_ascii=False, indent=2))
            return 0
        pieces, finish = assistant.ask_stream(question, k=args.k, filters=filters)
        streamed = False
        for piece in pieces:  # an LLM's words as they come; the checked answer follows
            print(piece, end="", flush=True)
            streamed = True
        if streamed:
            print("\n\n--- checked answer ---", flush=True)
        print(answer_markdown(finish()))
    except MarginaliaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def ask_all(assistant: Assistant, questions: list[dict], *, k: int | None = None) -> list[dict]:
    """Answer questions in order; a line with "follows": ID continues that question's conversation."""
    turns: dict[str, tuple[list[Turn], Answer]] = {}
    rows = []
    for q in questions:
        history: list[Turn] = []
        if q.get("follows") in turns:
            prev_history, prev = turns[q["follows"]]
            history = [*prev_history, turn_of(prev)]
        began = time.perf_counter()
        answer = assistant.ask(q["question"], history, k=k)
        ms = round((time.perf_counter() - began) * 1000, 1)
        turns[q["id"]] = (history, answer)
        rows.append(answer_dict(answer, id=q["id"], latency_ms=ms))
    return rows


def _eval(assistants: list[Assistant], args: argparse.Namespace) -> int:
    """Score every questions file on every index; one pair prints its metrics and types, more a
    side-by-side table (e.g. one index per embedding model)."""
    if args.out and (len(assistants) > 1 or len(args.questions) > 1):
        print("error: --out takes one questions file and one index", file=sys.stderr)
        return 2
    table: dict[str, dict[str, object]] = {}
    labels = [a.settings.embed_model for a in assistants]
    if len(set(labels)) < len(labels):  # indexes made with the same model: tell them apart by order
        labels = [f"{label} #{n}" for n, label in enumerate(labels, 1)]
    for assistant in assistants:
        assistant.ask("warm up the model and caches")
    for path in args.questions:
        gold = read_questions(path)
        for assistant, label in zip(assistants, labels, strict=True):
            rows = ask_all(assistant, gold, k=args.k)
            metrics, types = _metrics(gold, rows)
            table[f"{path.stem} / {label}"] = metrics
    if len(table) > 1:
        print(json.dumps(table) if args.json else _side_by_side(table))
        return 0
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    if args.json:
        print(json.dumps({**metrics, "by_type": types}))
        return 0
    print("\n".join(f"{k:>22}: {v}" for k, v in metrics.items()))
    print(_type_table(types))
    return 0


def _metrics(gold: list[dict], rows: list[dict]) -> tuple[dict[str, object], dict[str, dict[str, float]]]:
    results = {r["id"]: r for r in rows}
    metrics: dict[str, object] = dict(score(gold, results))
    latencies = sorted(r["latency_ms"] for r in rows)
    metrics["latency_ms_p50"] = statistics.median(latencies)
    metrics["latency_ms_p95"] = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    answered = [len(r["answer"].split()) for r in rows if not r["refused"]]
    metrics["median_answer_words"] = statistics.median(answered) if answered else 0
    return metrics, by_type(gold, results)


def _side_by_side(table: dict[str, dict[str, object]]) -> str:
    names = list(next(iter(table.values())))
    width = max(len(c) for c in table) + 2
    lines = [f"{'':<22}" + "".join(f"{c:>{width}}" for c in table)]
    lines += [f"{n:<22}" + "".join(f"{m[n]!s:>{width}}" for m in table.values()) for n in names]
    return "\n".join(lines)


_COLUMNS = ("questions", "recall@5", "answer_coverage", "answered_answerable", "refused_unanswerable")


def _type_table(types: dict[str, dict[str, float]]) -> str:
    """The metrics per question type as a plain table (a dash where a metric does not apply)."""
    lines = [f"\n{'type':<14}" + "".join(f"{c:>22}" for c in _COLUMNS)]
    for name, m in types.items():
        unanswerable = name == "unanswerable"
        cells = [
            "-"
            if (unanswerable and c != "questions" and c != "refused_unanswerable")
            or (not unanswerable and c == "refused_unanswerable")
            else str(m[c])
            for c in _COLUMNS
        ]
        lines.append(f"{name:<14}" + "".join(f"{v:>22}" for v in cells))
    return "\n".join(lines)


def _calibrate(assistant: Assistant, args: argparse.Namespace) -> int:
    from retrieval.calibrate import calibrate

    model = calibrate(assistant, args.questions, args.out)
    print(json.dumps({"features": FEATURES, "weights": model.weights, "threshold": model.threshold}))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m retrieval", description="Ask the essays.")
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="answer a question (or a JSONL file of questions)")
    ask.add_argument("question", nargs="*")
    ask.add_argument(
        "--jsonl", type=Path, help="questions file, one JSON object a line; answers go to stdout"
    )
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.add_argument("--collection", action="append", help="only this collection (repeatable)")
    ask.add_argument("--author", action="append", help="only this author (repeatable)")
    ask.add_argument("--essay", action="append", help="only this essay id (repeatable)")
    ev = sub.add_parser("eval", help="score answers to a questions file with gold quotes")
    ev.add_argument("questions", type=Path, nargs="+", help="questions files with gold quotes")
    ev.add_argument(
        "--compare",
        type=Path,
        action="append",
        help="another index (e.g. made with the other embedding model) scored beside the first",
    )
    ev.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    ev.add_argument("--out", type=Path, help="also write each answer as JSONL here")
    cal = sub.add_parser("calibrate", help="fit the answerer's span model and refusal threshold")
    cal.add_argument("questions", type=Path, nargs="+", help="tuning questions with gold quotes")
    cal.add_argument("--out", type=Path, help="where to write it (default: retrieval/calibration/MODEL.json)")
    for p in (ask, ev, cal):
        p.add_argument("--index", type=Path, help="index folder (default: .marginalia/index)")
        p.add_argument("--k", type=int, default=None, help="passages to retrieve (default 5)")
        p.add_argument("--chroma-host")
        p.add_argument("--chroma-port", type=int)
        p.add_argument("--llm", choices=["extractive", "openai", "ollama"], help="answer mode")
        p.add_argument("--llm-url", help="LLM endpoint base URL")
        p.add_argument("--llm-model", help="LLM model name")
    return parser


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly, like other Unix tools
    sys.exit(main())
