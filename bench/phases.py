"""Child-process entry: `python -m bench.phases NAME SPEC_JSON OUT_PATH` runs one phase, writes its result."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path

# Phase name -> "module:function"; imported on demand so a phase pays only for its own imports.
PHASES = {
    "machine": "bench.ours:machine",
    "ours_index": "bench.ours:cold_index",
    "reindex": "bench.ours:reindex",
    "reindex_edits": "bench.ours:reindex_edits",
    "serve": "bench.ours:serve",
    "baseline_index": "bench.baseline:cold_index",
    "baseline_serve": "bench.baseline:serve",
    "scale_vectors": "bench.synth:make_vectors",
    "scale_index": "bench.synth:index_reusing",
    "app_startup": "bench.startup:app_first_answer",
    "pdf_extraction": "bench.documents:pdf_extraction",
}


def main(argv: list[str]) -> int:
    name, spec, out = argv[0], json.loads(argv[1]), Path(argv[2])
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    module, function = PHASES[name].split(":")
    result = getattr(importlib.import_module(module), function)(spec)
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
