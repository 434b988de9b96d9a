"""The compute limit: FLOPs a BERT encoder spends per passage, and the machine's measured matmul rate."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class EncoderShape:
    """The parts of a BERT config that decide its FLOPs."""

    layers: int
    hidden: int
    intermediate: int
    heads: int

    @classmethod
    def from_config(cls, path: Path) -> EncoderShape:
        """Read a Hugging Face config.json."""
        config = json.loads(path.read_text())
        return cls(
            layers=config["num_hidden_layers"],
            hidden=config["hidden_size"],
            intermediate=config["intermediate_size"],
            heads=config["num_attention_heads"],
        )

    def sequence_flops(self, tokens: int) -> int:
        """Multiply-adds x2 of one forward pass over a sequence of `tokens` (embeddings and norms ignored).

        Per layer and token: Q, K, V and output projections (4 x 2H^2), the feed-forward pair
        (2 x 2HI); per layer and sequence: scores QK^T and the weighted sum AV (2 x 2n^2H,
        summed over heads). Softmax, GELU and layer norms are O(nH) and left out.
        """
        h, i, n = self.hidden, self.intermediate, tokens
        per_layer = n * (8 * h * h + 4 * h * i) + 4 * n * n * h
        return self.layers * per_layer

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def model_shape(name: str | None = None) -> EncoderShape:
    """The shape of an embedding model (by default the one the settings choose), from its config."""
    from ingest.embed import model_dir
    from ingest.models import spec
    from ingest.settings import Settings

    settings = Settings.from_env()
    folder = model_dir(spec(name or settings.embed_model), settings.model_dir)
    return EncoderShape.from_config(folder / "config.json")


def padded_lengths(lengths: Sequence[int], order_keys: Sequence[int], batch_size: int) -> list[int]:
    """Each text's length as computed, padded to the longest in its batch (batches formed by order_keys)."""
    order = sorted(range(len(lengths)), key=lambda i: order_keys[i])
    out = [0] * len(lengths)
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        longest = max(lengths[i] for i in idx)
        for i in idx:
            out[i] = longest
    return out


def compute_report(
    shape: EncoderShape,
    lengths: Sequence[int],
    padded: Sequence[int],
    *,
    embed_seconds: float,
    peak_flops: float,
) -> dict[str, float | int]:
    """Useful FLOPs (real tokens only) against the time a perfect matmul engine would need."""
    useful = sum(shape.sequence_flops(n) for n in lengths)
    spent = sum(shape.sequence_flops(n) for n in padded)
    passages = max(1, len(lengths))
    limit_s = useful / peak_flops if peak_flops else 0.0
    return {
        "passages": len(lengths),
        "tokens": sum(lengths),
        "tokens_padded": sum(padded),
        "tokens_per_passage": round(sum(lengths) / passages, 1),
        "gflops_per_passage": round(useful / passages / 1e9, 3),
        "gflops_total": round(useful / 1e9, 1),
        "gflops_total_padded": round(spent / 1e9, 1),
        "embed_seconds": round(embed_seconds, 2),
        "limit_seconds": round(limit_s, 2),
        "achieved_tflops": round(useful / embed_seconds / 1e12, 4) if embed_seconds else 0.0,
        "fraction_of_limit": round(limit_s / embed_seconds, 3) if embed_seconds else 0.0,
    }


def matmul_rate(dtype_name: str, *, sizes: Sequence[int] = (2048, 4096), repeats: int = 5) -> float:
    """Best FLOP/s of a square matmul at this precision, over a few sizes (best-of, the machine is shared)."""
    import torch

    # int8 x int8 -> int32 is the kernel int8 inference runs on; the others multiply in place.
    multiply = torch._int_mm if dtype_name == "int8" else torch.matmul
    best = 0.0
    for n in sizes:
        if dtype_name == "int8":
            a, b = (torch.randint(-128, 128, (n, n), dtype=torch.int8) for _ in range(2))
        else:
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
            a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        multiply(a, b)  # first call builds oneDNN kernels; it is not the steady rate
        for _ in range(repeats):
            began = time.perf_counter()
            multiply(a, b)
            best = max(best, 2 * n**3 / (time.perf_counter() - began))
    return best
