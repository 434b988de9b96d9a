"""Command line: python -m bench [--quick] [--scale N [N ...]] [--load [--sessions N] [--client C]] ...

Prints a table and writes the results as JSON. Exit status: 0 when the run finished (targets
missed or not), 1 when a phase failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from bench.measure import PROJECT_DIR, BenchError
from bench.report import scale_table, table, targets
from bench.suite import Plan, default_work, run_suite
from ingest.models import spec

RESULTS = PROJECT_DIR / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s", stream=sys.stderr)
    work = args.work or default_work()
    load_json = "load.json" if args.client == "browser" else f"load-{args.client}.json"
    out = args.out or RESULTS / ("scale.json" if args.scale else load_json if args.load else "latest.json")
    try:
        if args.load:
            from bench.load import run_load, summary

            doc = run_load(
                sessions=args.sessions,
                corpus=args.corpus,
                questions=args.questions,
                work=work,
                client=args.client,
            )
            lines = summary(doc)
        elif args.scale:
            from bench.scale import STORES, run_scale

            stores = tuple(args.scale_store or STORES)
            doc = run_scale(
                args.scale, corpus=args.corpus, questions=args.questions, work=work, stores=stores
            )
            lines = scale_table(doc)
        elif args.model:
            lines = []
            for name in args.model:  # one suite per model, each with its own baseline run
                os.environ["MARGINALIA_EMBED_MODEL"] = name
                plan = Plan(
                    args.corpus,
                    args.questions,
                    work / name,
                    quick=args.quick,
                    baseline=not args.skip_baseline,
                )
                doc = run_suite(plan)
                doc["targets"] = [t.to_dict() for t in targets(doc)]
                short = spec(name).short
                path = (
                    RESULTS / f"latest-{short}.json"
                    if args.out is None
                    else args.out.with_suffix(f".{short}.json")
                )
                path.write_text(json.dumps(doc, indent=2) + "\n")
                lines += [f"== {name} (written to {path})", *table(doc), ""]
            print("\n".join(lines))
            return 0
        else:
            plan = Plan(args.corpus, args.questions, work, quick=args.quick, baseline=not args.skip_baseline)
            doc = run_suite(plan)
            doc["targets"] = [t.to_dict() for t in targets(doc)]
            lines = table(doc)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print("\n".join(lines))
    print(f"\nwritten to {out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Measure Marginalia against a baseline."
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few essays and questions: checks the bench runs"
    )
    parser.add_argument(
        "--scale",
        type=int,
        nargs="+",
        metavar="N",
        help="synthetic corpora of about N chunks each, e.g. --scale 3000 30000 100000",
    )
    parser.add_argument(
        "--scale-store",
        action="append",
        choices=["embedded", "server"],
        help="the stores each --scale size is indexed in (repeatable; default both)",
    )
    parser.add_argument(
        "--out", type=Path, help="results JSON (default bench/results/latest.json or scale.json)"
    )
    parser.add_argument(
        "--load",
        action="store_true",
        help="many readers: sessions asking one streamlit server at once while a reindex runs",
    )
    parser.add_argument("--sessions", type=int, default=8, help="sessions for --load (default 8)")
    parser.add_argument(
        "--client",
        choices=["browser", "websocket"],
        default="browser",
        help="--load sessions as headless chromium pages (default: the whole path, end to end) or as "
        "bare websockets speaking Streamlit's protocol (the server's own latency; load-websocket.json)",
    )
    parser.add_argument("--skip-baseline", action="store_true", help="measure ours only")
    parser.add_argument(
        "--model",
        action="append",
        choices=["all-MiniLM-L6-v2", "all-mpnet-base-v2"],
        help="measure with this embedding model; repeat for several side by side (latest-minilm.json, ...)",
    )
    parser.add_argument("--corpus", type=Path, default=PROJECT_DIR / "corpus", help="corpus to measure on")
    parser.add_argument(
        "--questions", type=Path, default=PROJECT_DIR / "eval" / "dev.jsonl", help="questions"
    )
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new one under $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder, with the phases' logs")
    return parser


if __name__ == "__main__":
    sys.exit(main())
