"""A `chroma run` server on 127.0.0.1 for the length of a with-block, with its peak memory on the way out."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from bench.measure import BenchError, child_env, pid_peak_rss_mb, stop


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChromaServer:
    """Starts `chroma run --host 127.0.0.1 --port P --path DIR` and waits for its heartbeat."""

    def __init__(self, path: Path, log_path: Path, *, startup_timeout: float = 60.0) -> None:
        self.path, self.log_path, self.startup_timeout = path, log_path, startup_timeout
        self.host, self.port = "127.0.0.1", free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_rss_mb: float | None = None

    def __enter__(self) -> ChromaServer:
        chroma = Path(sys.executable).with_name("chroma")
        self.path.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(chroma), "run", "--host", self.host, "--port", str(self.port), "--path", str(self.path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(),
            )
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://{self.host}:{self.port}/api/v2/heartbeat"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"chroma run exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.__exit__(None, None, None)
        raise BenchError(
            f"chroma run did not answer {url} within {self.startup_timeout:.0f} s; see {self.log_path}"
        )

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is None:
            return
        self.peak_rss_mb = pid_peak_rss_mb(self.proc.pid)
        stop(self.proc)
        self.proc = None
