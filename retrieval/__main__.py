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
from pathlib import Path

from ingest.errors import MarginaliaError
from ingest.settings import Settings
from retrieval.assistant import Assistant
from retrieval.evaluate import score
from retrieval.record import answer_dict, answer_markdown
from retrieval.snapshot import Filters
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
            return _eval(assistant, args)
        if args.jsonl:
            for row in ask_all(assistant, _read_jsonl(args.jsonl), k=args.k):
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


def _eval(assistant: Assistant, args: argparse.Namespace) -> int:
    gold = _read_jsonl(args.questions)
    assistant.ask("warm up the model and caches")
    rows = ask_all(assistant, gold, k=args.k)
    metrics = score(gold, {r["id"]: r for r in rows})
    latencies = sorted(r["latency_ms"] for r in rows)
    metrics["latency_ms_p50"] = statistics.median(latencies)
    metrics["latency_ms_p95"] = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(json.dumps(metrics) if args.json else "\n".join(f"{k:>22}: {v}" for k, v in metrics.items()))
    return 0


def _read_jsonl(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as err:
        raise MarginaliaError(
            f"{path}: cannot read questions ({err}); expected one JSON object a line"
        ) from err


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
    ev.add_argument("questions", type=Path)
    ev.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    ev.add_argument("--out", type=Path, help="also write each answer as JSONL here")
    for p in (ask, ev):
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
