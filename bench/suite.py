"""The benchmark on the shipped corpus: ours and the LangChain baseline, each phase in a child process."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bench import startup
from bench.measure import run_phase
from bench.ours import compute

#: --quick: essays the dev questions ask about, small enough that the whole run takes well under a minute.
QUICK_ESSAYS = (
    "bacon/27-of-friendship.md",
    "bacon/50-of-studies.md",
    "federalist/10-the-same-subject-continued-the-union-as-a-safeguard-against.md",
)
QUICK_QUESTIONS = 6


@dataclass(frozen=True)
class Plan:
    """What to run: the source corpus and questions, a scratch folder, and how much."""

    corpus: Path
    questions: Path
    work: Path
    quick: bool = False
    baseline: bool = True
    passes: int = 3


def prepare(plan: Plan) -> tuple[Path, Path]:
    """Copy the corpus (a few essays for --quick) and the questions into the scratch folder."""
    corpus, questions = plan.work / "corpus", plan.work / "questions.jsonl"
    shutil.rmtree(corpus, ignore_errors=True)
    gold = [json.loads(line) for line in plan.questions.read_text().splitlines() if line.strip()]
    if plan.quick:
        for rel in QUICK_ESSAYS:
            (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(plan.corpus / rel, corpus / rel)
        gold = [q for q in gold if q.get("essay") and set(q["essay"]) <= set(QUICK_ESSAYS)][:QUICK_QUESTIONS]
    else:
        shutil.copytree(plan.corpus, corpus)
    questions.write_text("".join(json.dumps(q) + "\n" for q in gold))
    return corpus, questions


def run_suite(plan: Plan) -> dict:
    """Every phase in order; returns the results document (see README for its keys)."""
    plan.work.mkdir(parents=True, exist_ok=True)
    logs = plan.work / "logs"
    corpus, questions = prepare(plan)
    ours_index, base_index = plan.work / "index", plan.work / "baseline-chroma"
    for folder in (ours_index, base_index):
        shutil.rmtree(folder, ignore_errors=True)
    began, load_before = time.time(), os.getloadavg()

    machine = run_phase("machine", {"quick": plan.quick}, log_dir=logs)
    ours = run_phase("ours_index", {"corpus": str(corpus), "index": str(ours_index)}, log_dir=logs)
    base = (
        run_phase("baseline_index", {"corpus": str(corpus), "index": str(base_index)}, log_dir=logs)
        if plan.baseline
        else None
    )
    serve_spec = {
        "index": str(ours_index),
        "questions": str(questions),
        "passes": 1 if plan.quick else plan.passes,
    }
    served = run_phase("serve", serve_spec, log_dir=logs)
    base_served = (
        run_phase("baseline_serve", {**serve_spec, "index": str(base_index)}, log_dir=logs) if base else None
    )
    app = _app_startup(plan, ours_index, questions, logs)
    reindex = _reindex(corpus, ours_index, logs)
    pdf_spec = {"pages": 20 if plan.quick else 200, "corpus": str(corpus)}
    documents = {"pdf": run_phase("pdf_extraction", pdf_spec, log_dir=logs)}

    results = {
        "meta": {
            "quick": plan.quick,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(began)),
            "minutes": round((time.time() - began) / 60, 1),
            "cpu": platform.processor() or platform.machine(),
            "cpu_model": _cpu_model(),
            "precision_setting": os.environ.get("MARGINALIA_PRECISION", "auto"),
            "embed_model": os.environ.get("MARGINALIA_EMBED_MODEL") or "all-MiniLM-L6-v2",
            # Instruction-set caps stand in for other CPUs (see bench/README.md); none is the CPU itself.
            "isa_caps": {
                name: os.environ[name]
                for name in ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")
                if os.environ.get(name)
            },
            "cores": os.cpu_count(),
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in os.getloadavg()],
            "torch": machine["torch"],
            "corpus_files": sum(1 for p in corpus.rglob("*") if p.is_file()),
            "questions": sum(1 for line in questions.read_text().splitlines() if line.strip()),
        },
        "machine": machine,
        "compute": {"ours": compute(ours, machine), "baseline": compute(base, machine) if base else None},
        "cold_index": {"ours": _strip(ours), "baseline": _strip(base) if base else None},
        "reindex": reindex,
        "documents": documents,
        "serving": {"ours": served, "baseline": base_served},
        "startup": {"process": {"first_answer_seconds": served["first_answer_seconds"]}, "app": app},
    }
    return results


def _strip(index: dict) -> dict:
    """An index result without its per-passage token lists (they only feed the FLOP count)."""
    return {k: v for k, v in index.items() if k not in {"lengths", "padded"}}


def _app_startup(plan: Plan, index: Path, questions: Path, logs: Path) -> dict:
    if plan.quick:
        return {"skipped": "not run with --quick"}
    reason = startup.unavailable()
    if reason:
        return {"skipped": reason}
    first = json.loads(questions.read_text().splitlines()[0])["question"]
    spec = {"index": str(index), "question": first, "log": str(logs / "streamlit.log")}
    return run_phase("app_startup", spec, log_dir=logs)


def _reindex(corpus: Path, index: Path, logs: Path) -> dict[str, dict]:
    """Re-index with nothing changed; then the median-sized essay changed, another essay added."""
    spec = {"corpus": str(corpus), "index": str(index)}
    out = {"unchanged": run_phase("reindex", spec, log_dir=logs)}
    essays = sorted(corpus.rglob("*.md"), key=lambda p: (p.stat().st_size, p.as_posix()))
    middle = len(essays) // 2
    changed, source = essays[middle], essays[middle - 1 if middle else 0]
    edits = {
        "change": changed.relative_to(corpus).as_posix(),
        "add_from": source.relative_to(corpus).as_posix(),
        "add_as": f"bench-added/{source.name}",
    }
    steps = run_phase("reindex_edits", {**spec, **edits}, log_dir=logs)
    for step in ("changed", "added", "changed_again", "changed_command"):
        out[step] = steps.pop(step)
    out["edits_process"] = steps
    return out


def default_work() -> Path:
    """Scratch space outside the project, so nothing the bench makes is picked up by git or ruff."""
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"marginalia-bench-{os.getpid()}"


def _cpu_model() -> str:
    """The CPU's model name as the kernel reports it (figures differ a lot between CPU kinds)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()
