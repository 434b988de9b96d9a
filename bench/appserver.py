"""The app and a reindex as the load run starts them: `streamlit run app.py` and `python -m ingest`
over one scratch folder, and the CPU time of the processes involved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.measure import PROJECT_DIR, BenchError, child_env, stop
from bench.readers import Shown, read
from bench.server import free_port
from bench.startup import _wait_healthy

WARM_UP = "What does Thoreau say about simplicity?"


def app_env(run: Path) -> dict[str, str]:
    """The environment of the app and the reindex: the run's corpus and index, nothing else of ours."""
    env = {k: v for k, v in child_env().items() if not k.startswith("MARGINALIA_")}
    return env | {"MARGINALIA_CORPUS_DIR": str(run / "corpus"), "MARGINALIA_INDEX_DIR": str(run / "index")}


class App:
    """`streamlit run app.py` over run/corpus and run/index on a free port, warmed up by one question
    asked by `reader` (a browser by default; `bench.protocol.read` asks over a bare websocket)."""

    def __init__(self, run: Path, *, reader: Callable[..., list[list[Shown]]] = read) -> None:
        self.run, self.port, self.reader = run, free_port(), reader
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> App:
        command = [
            sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
            "--server.port", str(self.port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
        ]  # fmt: skip
        log_path = self.run / "streamlit.log"
        with log_path.open("w") as out:
            self.proc = subprocess.Popen(
                command, cwd=PROJECT_DIR, env=app_env(self.run), stdout=out, stderr=subprocess.STDOUT
            )
        try:
            _wait_healthy(self.port, 60)
            warm = self.reader(self.url, [[WARM_UP]], timeout_s=180)[0]
            if not warm or warm[0].error:
                raise BenchError(f"the warm-up question failed: {warm}; see {log_path}")
        except BaseException:
            stop(self.proc)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop(self.proc)


class Reindex:
    """`python -m ingest` over the changed corpus, as a person would run it, timed from start()."""

    def __init__(self, run: Path) -> None:
        self.run, self.env = run, app_env(run)
        self.proc: subprocess.Popen[bytes] | None = None
        self.began = self.ended = 0.0
        self.cpu = 0.0

    def start(self) -> None:
        self.began = time.monotonic()
        cmd = [sys.executable, "-m", "ingest", str(self.run / "corpus"), "--index", str(self.run / "index")]
        with (self.run / "ingest.json").open("w") as out, (self.run / "ingest.log").open("w") as err:
            self.proc = subprocess.Popen(
                [*cmd, "--json"], cwd=PROJECT_DIR, env=self.env, stdout=out, stderr=err
            )
        threading.Thread(target=self._watch, daemon=True).start()

    def running(self) -> bool:
        """Started and not yet finished."""
        return self.proc is not None and self.proc.poll() is None

    def _watch(self) -> None:
        assert self.proc is not None
        while self.proc.poll() is None:
            self.cpu = _cpu(self.proc.pid) or self.cpu
            time.sleep(0.2)
        self.ended = time.monotonic()

    def finish(self) -> dict[str, object]:
        if self.proc is None:
            raise BenchError("the reindex never started")
        code = self.proc.wait(timeout=600)
        while not self.ended:
            time.sleep(0.05)
        if code != 0:
            raise BenchError(f"the reindex exited with {code}; see {self.run / 'ingest.log'}")
        summary = json.loads((self.run / "ingest.json").read_text())
        return {
            "seconds": round(self.ended - self.began, 2),
            "cpu_seconds": round(self.cpu, 1),
            "updated": len(summary.get("updated", [])),
            "chunks": summary.get("chunks"),
            "sentences": summary.get("sentences"),
        }


def _cpu(pid: int) -> float:
    """User plus system CPU seconds of a live process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_kind(server: int) -> dict[str, float]:
    """CPU seconds so far of the streamlit server, the browsers (chromium and playwright's driver)
    and this process (the websocket sessions, when they ask instead of browsers), to tell what the
    machine's time went to."""
    out = {"server": _cpu(server), "browsers": 0.0, "bench": _cpu(os.getpid())}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name = stat.read_text().split("(", 1)[1].split(")", 1)[0]
        except (OSError, IndexError):
            continue
        if "chrom" in name or "headless" in name or name == "node":
            out["browsers"] += _cpu(int(stat.parent.name))
    return out


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, every process), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    keys = ("Model name", "CPU family", "Model")
    return ", ".join(f"{k.lower()} {fields[k].strip()}" for k in keys if k in fields)
