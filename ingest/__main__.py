"""Command line: python -m ingest [CORPUS_DIR] [--index DIR] [--json].

Exit status: 0 when the index is in step with the corpus (rejected files are listed, not fatal);
1 when the run could not finish (store unreachable, index locked, ...); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ingest.errors import MarginaliaError
from ingest.pipeline import Summary, run_ingest
from ingest.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description="Index a folder of essays.")
    parser.add_argument("corpus", nargs="?", type=Path, help="folder of essays (default: corpus/)")
    parser.add_argument("--index", type=Path, help="index folder (default: .marginalia/index)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument(
        "--model",
        choices=["all-MiniLM-L6-v2", "all-mpnet-base-v2"],
        help="embedding model (default: all-MiniLM-L6-v2); a change rebuilds the index",
    )
    parser.add_argument("--chroma-host", help="use the Chroma server on this host")
    parser.add_argument("--chroma-port", type=int, help="Chroma server port")
    parser.add_argument(
        "--nice",
        type=int,
        default=10,
        metavar="N",
        help="lower this run's CPU priority by N (default 10: an app serving readers meanwhile comes "
        "first; an idle machine gives the run all its time anyway); 0 to keep it",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    args = parser.parse_args(argv)
    if args.nice > 0:
        os.nice(args.nice)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        settings = Settings.from_env(
            corpus_dir=args.corpus,
            index_dir=args.index,
            chroma_host=args.chroma_host,
            chroma_port=args.chroma_port,
            embed_model=args.model,
        )
        with _ProgressBar(enabled=not args.json and sys.stderr.isatty()) as bar:
            summary = run_ingest(settings, progress=bar.update)
    except MarginaliaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: v for k, v in summary.to_dict().items()}))
    else:
        print(render(summary))
    return 0


def render(summary: Summary) -> str:
    """The human summary printed at the end of a run."""
    lines = [
        f"added {len(summary.added)}, updated {len(summary.updated)}, removed {len(summary.removed)}, "
        f"unchanged {len(summary.unchanged)}, rejected {len(summary.rejected)}; "
        f"{summary.chunks} chunks written, {summary.total_chunks} in the index ({summary.seconds:.1f} s)"
    ]
    if summary.rebuilt:
        lines.append("the embedding model or chunker changed, so the index was rebuilt")
    for name in ("added", "updated", "removed"):
        lines.extend(f"  {name}: {path}" for path in getattr(summary, name))
    lines.extend(f"  rejected: {r['path']}: {r['reason']}" for r in summary.rejected)
    return "\n".join(lines)


class _ProgressBar:
    """tqdm bars per stage on a terminal; silent elsewhere."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None  # a tqdm bar, imported lazily
        self.stage = ""

    def update(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or stage == "scan":
            return
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            label = {
                # The first load on a machine converts (and on some CPUs quantizes) it: 10-30 s once.
                "model": "loading the embedding model (made for this CPU the first time: 10-30 s)",
                "embed": "embedding passages and sentences",
                "keyword": "keyword index",
            }.get(stage, stage)
            self.bar, self.stage = (
                tqdm(total=total, desc=label, unit=" texts" if stage == "embed" else ""),
                stage,
            )
        if self.bar is not None:
            self.bar.total = total  # an estimate while the scan is still reading files
            self.bar.n = done
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly, like other Unix tools
    sys.exit(main())
