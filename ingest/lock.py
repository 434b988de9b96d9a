"""An exclusive lock on the index folder, so two ingests never write the same index at once."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest.errors import IndexLocked


@contextmanager
def index_lock(index_dir: Path, *, timeout: float, on_wait: object = None) -> Iterator[None]:
    """Hold the lock for the block; wait up to `timeout` seconds for another holder to finish."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / "ingest.lock"
    with open(path, "a+") as fh:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "unknown"
                    raise IndexLocked(
                        f"another ingest (pid {holder}) is writing {index_dir}; waited {timeout:.0f} s. "
                        "Let it finish and run again, or raise MARGINALIA_LOCK_TIMEOUT"
                    ) from None
                if callable(on_wait) and not told:
                    on_wait()
                    told = True
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def index_busy(index_dir: Path) -> bool:
    """True while an ingest holds the lock on the index folder (a killed one no longer does)."""
    try:
        fd = os.open(index_dir / "ingest.lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken just now
    return False
