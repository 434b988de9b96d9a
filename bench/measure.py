"""Timers, percentiles and phases run in child processes, so each phase's peak memory is its own."""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent

T = TypeVar("T")


class BenchError(Exception):
    """A benchmark phase failed; the message names the phase and where its log is."""


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50 and p95 (nearest rank) and the max, in the values' unit, rounded to 0.1."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0, "n": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {
        "p50": round(rank(0.5), 1),
        "p95": round(rank(0.95), 1),
        "max": round(ordered[-1], 1),
        "n": len(ordered),
    }


def timed(fn: Callable[..., T], sink: list[float]) -> Callable[..., T]:
    """Wrap fn so every call appends its milliseconds to sink."""

    def wrapper(*args: object, **kwargs: object) -> T:
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sink.append((time.perf_counter() - began) * 1000)

    return wrapper


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    """User plus system CPU time this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 2)


def pid_peak_rss_mb(pid: int) -> float | None:
    """Another live process's peak resident memory (VmHWM), e.g. a Chroma server's."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def stop(proc: subprocess.Popen, *, grace: float = 20) -> None:
    """End a child server: SIGTERM, then SIGKILL if it is still there after `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def child_env() -> dict[str, str]:
    """The environment for phases: offline, no telemetry, quiet progress bars."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        TOKENIZERS_PARALLELISM="false",
        TQDM_DISABLE="1",
        PYTHONPATH=str(PROJECT_DIR),
    )
    return env


def run_phase(phase: str, spec: Mapping[str, object], *, log_dir: Path, timeout: float = 3600) -> dict:
    """Run bench.phases PHASE in a fresh interpreter; its result plus launch-to-exit wall seconds.

    `launched_at` (wall clock, shared with the child) lets a phase report time since its launch.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    fd, out_name = tempfile.mkstemp(prefix=f"{phase}-", suffix=".json", dir=log_dir)
    os.close(fd)
    out_path, log_path = Path(out_name), log_dir / f"{phase}.log"
    spec = {**spec, "launched_at": time.time()}
    cmd = [sys.executable, "-m", "bench.phases", phase, json.dumps(spec), str(out_path)]
    load = os.getloadavg()[0]
    began = time.perf_counter()
    with log_path.open("a") as log_file:
        proc = subprocess.run(
            cmd,
            cwd=PROJECT_DIR,
            env=child_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise BenchError(f"phase {phase} exited with {proc.returncode}; see {log_path}")
    result = json.loads(out_path.read_text())
    out_path.unlink()
    result["process_seconds"] = round(wall, 2)
    result["load_avg_1m_at_start"] = round(load, 2)
    log.info("%s: %.1f s", phase, wall)
    return result
