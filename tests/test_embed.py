"""The packaged model: offline, unit vectors, and bf16 only where it matches fp32 on real passages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest import embed
from ingest.chunk import chunk_essay, embedding_text
from ingest.embed import (
    OpenVINOModel,
    TorchModel,
    converted,
    cpu_features,
    cpu_has_bf16,
    model_dir,
    resolve_precision,
)
from ingest.load import load_essay
from ingest.models import MINILM


def _passages(corpus_dir: Path) -> list[str]:
    texts = []
    for rel in (
        "sahel/could-malis-coup-have-been-avoided-part-two.txt",
        "federalist/10-the-same-subject-continued-the-union-as-a-safeguard-against.md",
    ):
        essay = load_essay(corpus_dir / rel, corpus_dir, max_bytes=5 * 2**20)
        texts += [embedding_text(c, essay.title) for c in chunk_essay(essay)]
    return texts


def test_vectors_are_unit_length_and_batching_does_not_change_them(embedder, corpus_dir: Path) -> None:
    texts = _passages(corpus_dir)[:40]
    together = embedder.embed(texts)
    assert together.shape == (40, MINILM.dimensions)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-3)
    one = embedder.embed([texts[7]])[0]
    assert float(one @ together[7]) > 0.999


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16, so ingest uses fp32")
def test_bf16_matches_fp32_on_real_passages(corpus_dir: Path) -> None:
    texts = _passages(corpus_dir)
    fp32 = TorchModel(precision="fp32").embed(texts)
    bf16 = TorchModel(precision="bf16").embed(texts)
    cosines = (fp32 * bf16).sum(axis=1)
    assert cosines.min() >= 0.999, cosines.min()


def test_openvino_matches_sentence_transformers_fp32_on_real_passages(embedder, corpus_dir: Path) -> None:
    assert isinstance(embedder, OpenVINOModel)  # the default runtime
    texts = _passages(corpus_dir)
    reference = TorchModel(precision="fp32").embed(texts)
    # int8 (the default on CPUs with AVX-512 or VNNI but no bf16) is close, not equal.
    floor = 0.98 if embedder.precision == "int8" else 0.999
    cosines = (reference * embedder.embed(texts)).sum(axis=1)
    assert cosines.min() >= floor, (embedder.precision, cosines.min())
    # A lone query takes the single-request path: the same vector as in a batch.
    assert float(embedder.embed([texts[3]])[0] @ reference[3]) >= floor


ZEN4 = {"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16"}


def test_auto_precision_follows_the_cpu_and_the_onednn_cap() -> None:
    def auto(flags: set[str], cap: str = "") -> str:
        return resolve_precision("auto", cpu_features(flags, cap))

    cascade_lake = ZEN4 - {"avx512_bf16"}
    skylake = cascade_lake - {"avx512_vnni"}
    alder_lake = {"avx2", "fma", "avx_vnni"}
    zen3 = {"avx2", "fma"}
    assert [auto(f) for f in (ZEN4, cascade_lake, skylake, alder_lake, zen3)] == [
        "bf16",
        "int8",
        "int8",
        "int8",
        "fp32",
    ]
    assert [auto(ZEN4, cap) for cap in ("AVX512_CORE_BF16", "avx512_core_vnni", "AVX512_CORE", "AVX2")] == [
        "bf16",
        "int8",
        "int8",
        "fp32",
    ]
    assert auto(ZEN4, "ALL") == "bf16"  # oneDNN's "no cap"
    assert resolve_precision("fp32", cpu_features(ZEN4)) == "fp32"  # a set precision is kept


def test_an_onednn_cap_reaches_the_kernels_and_the_precision(embedder) -> None:
    """Capped to AVX2, auto runs fp32 on AVX2 kernels: how the bench stands in for an AVX2-only CPU."""
    import json
    import os
    import subprocess
    import sys

    probe = (
        "import json, sys; from pathlib import Path; from ingest.embed import OpenVINOModel;"
        "m = OpenVINOModel(Path(sys.argv[1])); m.embed(['Of studies']);"
        "ops = m._model.get_runtime_model().get_ops();"
        "kinds = {str(o.get_rt_info()['primitiveType'].astype(str)) for o in ops"
        " if o.get_rt_info()['layerType'].astype(str) == 'FullyConnected'};"
        "print(json.dumps({'precision': m.precision, 'kinds': sorted(kinds)}))"
    )
    from ingest.settings import PROJECT_DIR, Settings

    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    out = subprocess.run(
        [sys.executable, "-c", probe, str(Settings.from_env().model_dir)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["precision"] == "fp32"
    assert got["kinds"] and all("avx512" not in k and "amx" not in k for k in got["kinds"]), got


def test_int8_model_is_quantized_once_and_stays_close_to_fp32(
    tmp_path: Path, corpus_dir: Path, monkeypatch
) -> None:
    texts = _passages(corpus_dir)
    int8 = OpenVINOModel(tmp_path / "models", precision="int8")  # converts, then quantizes
    assert int8.int8 and int8.precision == "int8"

    def again(*a: object) -> None:
        raise AssertionError("converted or quantized again although the cache holds the model")

    monkeypatch.setattr(embed, "quantize", again)
    monkeypatch.setattr(embed, "convert", again)
    assert OpenVINOModel(tmp_path / "models", precision="int8").int8  # from the cache this time
    xml = converted(model_dir(), tmp_path / "models", int8=True)
    fp32_xml = converted(model_dir(), tmp_path / "models")  # made first, and kept: converted once
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted(
        [xml.parent.name, fp32_xml.parent.name]
    )
    weights = xml.with_suffix(".bin").stat().st_size
    # int8 weights: half the fp32 copy, whose weights are stored as fp16 (the embeddings stay float)
    assert weights < 0.6 * fp32_xml.with_suffix(".bin").stat().st_size, weights
    reference = TorchModel(precision="fp32").embed(texts)
    cosines = (reference * int8.embed(texts)).sum(axis=1)
    assert cosines.min() >= 0.98 and cosines.mean() >= 0.99, (cosines.min(), cosines.mean())


def test_conversion_is_cached_and_made_whole(tmp_path: Path, embedder, monkeypatch) -> None:
    cache = tmp_path / "models"
    xml = converted(model_dir(), cache)  # a real conversion, into an empty cache
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert [p.name for p in cache.iterdir()] == [xml.parent.name]  # no half-made folders left

    def no_conversion(*a: object) -> None:
        raise AssertionError("converted again although the cache holds the model")

    monkeypatch.setattr(embed, "convert", no_conversion)
    assert converted(model_dir(), cache) == xml
    texts = ["Revenge is a kind of wild justice", "Of gardens"]
    again = OpenVINOModel(cache, precision="fp32").embed(texts)
    floor = 0.98 if embedder.precision == "int8" else 0.999  # the default embedder may be int8
    assert (again * embedder.embed(texts)).sum(axis=1).min() >= floor
    [compiled] = xml.parent.glob("compiled-*")  # the compiled model, kept for the next process
    assert any(compiled.iterdir())
    from_blob = OpenVINOModel(cache, precision="fp32").embed(texts)
    np.testing.assert_allclose(from_blob, again, atol=1e-6)


def test_background_loading_gives_the_same_vectors_and_reports_failures(embedder) -> None:
    from ingest.embed import BackgroundEmbedder

    texts = ["Of studies", "Revenge is a kind of wild justice"]
    loading = BackgroundEmbedder(lambda: embedder, "all-MiniLM-L6-v2")
    assert np.allclose(loading.embed(texts), embedder.embed(texts), atol=1e-6) and loading.ready

    def broken() -> TorchModel:
        raise OSError("model file unreadable")

    failed = BackgroundEmbedder(broken, "all-MiniLM-L6-v2")
    with pytest.raises(RuntimeError, match="failed to load") as caught:
        failed.embed(texts)
    assert isinstance(caught.value.__cause__, OSError) and failed.ready
