"""`python -m bench --quick` on a few essays writes well-formed results (no timing checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def test_quick_bench_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), "--work", str(tmp_path / "work")],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "targets:" in proc.stdout and "instruction-set caps:" in proc.stdout
    doc = json.loads(out.read_text())

    assert doc["meta"]["quick"] is True and isinstance(doc["meta"]["isa_caps"], dict)
    assert doc["cold_index"]["ours"]["precision"] in {"bf16", "int8", "fp32"}
    assert set(doc) >= {
        "meta",
        "machine",
        "compute",
        "cold_index",
        "reindex",
        "serving",
        "startup",
        "documents",
        "targets",
    }
    for side in ("ours", "baseline"):
        index = doc["cold_index"][side]
        assert index["passages"] > 0 and index["seconds"] > 0 and index["peak_rss_mb"] > 0
        assert "lengths" not in index  # token lists feed the FLOP count only
        compute = doc["compute"][side]
        assert compute["gflops_per_passage"] > 0 and compute["fraction_of_limit"] > 0
        served = doc["serving"][side]
        assert set(served["retrieval_ms"]) == {"p50", "p95", "max", "n"}
        assert 0 <= served["quality"]["recall@5"] <= 1
    assert doc["serving"]["ours"]["answer_ms"]["n"] == doc["meta"]["questions"]
    assert doc["reindex"]["unchanged"]["chunks_written"] == 0
    assert doc["reindex"]["changed"]["updated"] == 1 and doc["reindex"]["added"]["added"] == 1
    assert doc["startup"]["process"]["first_answer_seconds"] > 0
    assert doc["startup"]["app"] == {"skipped": "not run with --quick"}
    pdf = doc["documents"]["pdf"]
    assert pdf["pages"] == 20 and pdf["pages_per_s"] > 0 and pdf["pages_per_cpu_s"] > 0
    assert pdf["characters"] > 20 * 3000
    assert len(doc["targets"]) == 9
    assert all(t["met"] in (True, False) for t in doc["targets"])
    assert not (tmp_path / "work").exists()  # scratch space is removed unless --keep
