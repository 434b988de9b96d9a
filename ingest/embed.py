"""Embeddings from a sentence-transformers model on this machine (ingest/models.py), offline.

Two runtimes compute the same vectors (cosine >= 0.999 to sentence-transformers in fp32, tested;
>= 0.98 in int8):
- openvino (default): the model converted once to OpenVINO's format, with mean pooling and
  normalisation folded in, cached beside the index. Fused kernels embed about twice as fast as
  torch, in a quarter of the memory: in bf16 on CPUs that have it, else in int8 (quantized once
  with NNCF) on CPUs with AVX-512 or VNNI, else fp32. A process that only asks questions never
  imports torch.
- torch: sentence-transformers itself, with bf16 autocast where the CPU has native bf16. It also
  does the one-time conversion.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import queue
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ingest.models import MINILM, ModelSpec, spec

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from ingest.settings import Settings

log = logging.getLogger(__name__)

CONVERTER_VERSION = "1"  # bump when convert() changes what it writes


PAD_MULTIPLE = 16  # OpenVINO batches are padded to a multiple of this many tokens


def model_dir(model: ModelSpec = MINILM, folder: Path | None = None) -> Path:
    """The model's sentence-transformers folder (`folder`: the model folder setting, default its default)."""
    from ingest.settings import Settings

    return model.files(folder if folder is not None else Settings().model_dir)


def tokenizer(source: Path | None = None) -> Tokenizer:
    """The model's own tokenizer, truncating where sentence-transformers does, without padding."""
    from tokenizers import Tokenizer

    source = source or model_dir()
    tok = Tokenizer.from_file(str(source / "tokenizer.json"))
    tok.enable_truncation(
        max_length=json.loads((source / "sentence_bert_config.json").read_text())["max_seq_length"]
    )
    tok.no_padding()
    return tok


def padded_width(tokens: int) -> int:
    """The width a batch whose longest text has this many tokens is computed at.

    Rounded up to PAD_MULTIPLE: OpenVINO keeps compiled kernels per input shape, and fewer shapes
    measured 490 MB instead of 770 MB peak on the corpus, at the same speed.
    """
    return -(-tokens // PAD_MULTIPLE) * PAD_MULTIPLE


class Embedder(Protocol):
    """Turns texts into unit-length vectors."""

    name: str
    dimensions: int

    def embed(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray: ...


# What each of oneDNN's instruction-set caps (ONEDNN_MAX_CPU_ISA) leaves on, of the features that
# decide the precision. OpenVINO's matrix kernels come from oneDNN, so they obey the cap too.
_BF16_UP = frozenset({"avx512", "avx512_vnni", "bf16"})
_ISA_CAPS: dict[str, frozenset[str]] = {
    "SSE41": frozenset(),
    "AVX": frozenset(),
    "AVX2": frozenset(),
    "AVX2_VNNI": frozenset({"avx_vnni"}),
    "AVX2_VNNI_2": frozenset({"avx_vnni"}),
    "AVX512_CORE": frozenset({"avx512"}),
    "AVX512_CORE_VNNI": frozenset({"avx512", "avx512_vnni"}),
    "AVX512_CORE_BF16": _BF16_UP,
    "AVX512_CORE_FP16": _BF16_UP,
    "AVX10_1_512": _BF16_UP,
    "AVX512_CORE_AMX": _BF16_UP,
    "AVX512_CORE_AMX_FP16": _BF16_UP,
    "AVX10_1_512_AMX": _BF16_UP,
    "AVX10_1_512_AMX_FP16": _BF16_UP,
}


def isa_cap() -> str:
    """oneDNN's instruction-set cap from the environment, or "" for none."""
    return (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_features(flags: set[str] | None = None, cap: str | None = None) -> frozenset[str]:
    """The CPU features that decide the embedding precision: avx512, avx512_vnni, avx_vnni, bf16.

    Read from /proc/cpuinfo, then limited by ONEDNN_MAX_CPU_ISA when it is set (as oneDNN limits
    its kernels), so a capped run also picks the precision that CPU would get.
    """
    flags = _cpu_flags() if flags is None else flags
    if cap is None:
        cap = isa_cap()
    found = set()
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        found.add("avx512")
        if "avx512_vnni" in flags:
            found.add("avx512_vnni")
        if flags & {"avx512_bf16", "amx_bf16"}:
            found.add("bf16")
    if "avx_vnni" in flags:
        found.add("avx_vnni")
    allowed = _ISA_CAPS.get(cap.strip().upper())  # ALL, DEFAULT or an unknown name: no cap
    return frozenset(found if allowed is None else found & allowed)


def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is slower."""
    return "bf16" in cpu_features()


def resolve_precision(setting: str, features: frozenset[str] | None = None) -> str:
    """The precision "auto" means on this CPU; any other setting is kept as it is.

    bf16 where the CPU multiplies it natively; else int8 where it has AVX-512 or VNNI, whose int8
    products ran 2.7x (VNNI) and 1.55x (AVX-512 alone) the fp32 speed (measured with oneDNN capped
    to each); else fp32, since with AVX2 alone int8 ran at 0.75x the fp32 speed.
    """
    if setting != "auto":
        return setting
    features = cpu_features() if features is None else features
    if "bf16" in features:
        return "bf16"
    if features & {"avx512", "avx512_vnni", "avx_vnni"}:
        return "int8"
    return "fp32"


def cpu_tag() -> str:
    """A short name for this kind of CPU: its model name, instruction-set flags and oneDNN cap, hashed."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    wanted = sorted({line for line in lines if line.startswith(("model name", "flags"))})
    text = "\n".join(wanted) or platform.processor() or platform.machine()
    # A capped oneDNN compiles other kernels: its blobs must not be loaded uncapped, or the reverse.
    if isa_cap():
        text += "\ncap " + isa_cap()
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class TorchModel:
    """The model run by sentence-transformers on torch; batches by length."""

    def __init__(
        self,
        model: ModelSpec = MINILM,
        *,
        source: Path | None = None,
        precision: str = "auto",
        batch_size: int = 64,
    ) -> None:
        # Heavy imports are lazy: an ingest with nothing to embed never pays for torch.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()  # our own progress bars report the work

        if precision == "int8":
            from ingest.errors import MarginaliaError

            raise MarginaliaError("precision int8 needs the openvino embedding backend; use fp32 or bf16")
        self._torch = torch
        self.name, self.dimensions = model.name, model.dimensions
        self.model = SentenceTransformer(str(source or model_dir(model)), device="cpu")
        self.model.eval()
        self.bf16 = precision == "bf16" or (precision == "auto" and cpu_has_bf16())
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit vectors (float32, one row per text), computed in length-sorted batches."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
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


class OpenVINOModel:
    """The model run by OpenVINO from a converted copy (made once, then cached).

    Batches of similar token counts go to two parallel inference streams; a lone query runs on
    one stream, one thread, which stays fast when other processes keep the CPU busy, and queries
    from several threads run on the streams side by side.
    """

    def __init__(
        self,
        cache_dir: Path,
        model: ModelSpec = MINILM,
        *,
        source: Path | None = None,
        precision: str = "auto",
        batch_size: int = 16,
    ) -> None:
        import openvino as ov

        self.name, self.dimensions = model.name, model.dimensions
        self.precision = resolve_precision(precision)
        self.int8 = self.precision == "int8"
        source = source or model_dir(model, cache_dir)
        xml = converted(source, cache_dir, int8=self.int8, prefix=model.short)
        # The compiled model is cached too, per kind of CPU (a folder may be shared between
        # machines): compiling takes 0.2-0.3 s, loading the compiled blob 0.1 s.
        compiled = xml.parent / f"compiled-{cpu_tag()}"
        config: dict[str, object] = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "CACHE_DIR": str(compiled),
            # int8 keeps its other operations in fp32: the same vectors on every CPU.
            "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32",
        }
        self._ov = ov
        self._model = ov.Core().compile_model(str(xml), "CPU", config)
        self.bf16 = str(self._model.get_property("INFERENCE_PRECISION_HINT")).endswith("bfloat16'>")
        if not self.int8:
            self.precision = "bf16" if self.bf16 else "fp32"
        self._requests = int(self._model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        # Questions from several sessions at once each take an idle request, one per stream: with a
        # single shared request they queued behind each other (a third of an answer's time with
        # eight browser sessions asking, profiled), while the other stream sat idle.
        self._idle: queue.SimpleQueue[object] = queue.SimpleQueue()
        for _ in range(self._requests):
            self._idle.put(self._model.create_infer_request())
        self._tokenizer = tokenizer(source)
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit vectors (float32, one row per text), computed in token-count-sorted batches."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        # A few texts are split evenly over the streams: 17 as 16 + 1 would leave one stream idle
        # while the other does nearly all the work (measured 0.62 s against 0.33 s as 9 + 8).
        size = max(1, min(self.batch_size, -(-len(order) // self._requests)))
        batches = [order[lo : lo + size] for lo in range(0, len(order), size)]
        if len(batches) == 1:
            request = self._idle.get()
            try:
                out[batches[0]] = request.infer(_inputs(ids, batches[0]))[0]  # type: ignore[attr-defined]
            finally:
                self._idle.put(request)
            if progress:
                progress(len(texts))
            return out

        finished: list[int] = []  # rows done per batch, appended by OpenVINO's threads

        def done(request: object, rows: list[int]) -> None:
            out[rows] = request.get_output_tensor(0).data  # type: ignore[attr-defined]
            finished.append(len(rows))

        def report() -> None:
            # Progress goes out from the calling thread: the app's progress bar must be updated
            # from the thread that runs its script, not from an inference thread.
            while finished and progress:
                progress(finished.pop())

        queue = self._ov.AsyncInferQueue(self._model, self._requests)
        queue.set_callback(done)
        for rows in batches:
            queue.start_async(_inputs(ids, rows), rows)  # waits while every request is busy
            report()
        queue.wait_all()
        report()
        return out


def _inputs(ids: list[list[int]], rows: list[int]) -> dict[str, np.ndarray]:
    width = padded_width(max(len(ids[i]) for i in rows))
    tokens = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, i in enumerate(rows):
        tokens[r, : len(ids[i])] = ids[i]
        mask[r, : len(ids[i])] = 1
    return {"input_ids": tokens, "attention_mask": mask}


def converted(source: Path, cache_dir: Path, *, int8: bool = False, prefix: str = "minilm") -> Path:
    """The OpenVINO copy of the model in cache_dir, converted first if it is not there yet.

    The folder name carries what the copy was made from (model files' sizes and times, the
    OpenVINO and converter versions, and whether it is quantized to int8), so a new model or
    runtime converts afresh.
    """
    import openvino as ov

    stamp = [CONVERTER_VERSION, ov.get_version()]
    if int8:
        stamp += ["int8", _nncf_version(), _calibration_hash()]
    for name in ("model.safetensors", "config.json", "1_Pooling/config.json"):
        info = (source / name).stat()
        stamp += [name, str(info.st_size), str(info.st_mtime_ns)]
    folder = cache_dir / f"{prefix}-openvino-{hashlib.sha256(repr(stamp).encode()).hexdigest()[:16]}"
    xml = folder / "model.xml"
    if xml.is_file():
        return xml
    # int8 is quantized from the fp32 copy, itself cached: a machine converts only once.
    fp32 = converted(source, cache_dir, prefix=prefix) if int8 else None
    log.info(
        "%s the embedding model for OpenVINO into %s (once)", "quantizing" if int8 else "converting", folder
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=cache_dir))
    try:
        if fp32 is None:
            convert(source, work / "model.xml")
        else:
            quantize(fp32, work / "model.xml", source)
        try:
            work.rename(folder)  # whole or not at all; another process may have won the race
        except OSError:
            if not xml.is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return xml


def convert(source: Path, xml: Path) -> None:
    """The model with mean pooling and L2 normalisation folded in, as OpenVINO IR (needs torch)."""
    import openvino as ov
    import torch
    import transformers
    from transformers import AutoModel

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ValueError(f"{source} does not use mean pooling; the converter folds in mean pooling")
    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    bert_like = bert.config.model_type == "bert"

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            # BERT models (MiniLM) take segment ids, all zero here; MPNet has none.
            segments = {"token_type_ids": torch.zeros_like(input_ids)} if bert_like else {}
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, **segments
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    example = {
        "input_ids": torch.ones(2, 16, dtype=torch.long),
        "attention_mask": torch.ones(2, 16, dtype=torch.long),
    }
    shape = ov.PartialShape([-1, -1])
    # Tracing warns that the mask's padding check is fixed at trace time; with no cache the
    # padding it checks is always zero, and the test against sentence-transformers proves it.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ov.convert_model(
            Pooled().eval(),
            example_input=example,
            input=[("input_ids", shape, ov.Type.i64), ("attention_mask", shape, ov.Type.i64)],
        )
    ov.save_model(model, str(xml))


CALIBRATION = Path(__file__).with_name("calibration.jsonl")


def _calibration_hash() -> str:
    return hashlib.sha256(CALIBRATION.read_bytes()).hexdigest()[:12]


def _nncf_version() -> str:
    from importlib.metadata import version

    return version("nncf")


def quantize(xml: Path, out: Path, source: Path) -> None:
    """The converted model with its matrix products in int8, calibrated on shipped passages.

    NNCF's post-training quantization with its transformer preset (which keeps the parts that
    lose accuracy in int8, such as layer norms, in floating point). The 160 calibration passages
    are every 19th chunk of the shipped corpus, title included as embedded, fixed so that the
    int8 model is the same whatever corpus a user indexes. Measured against fp32 on the 2,884
    other chunks of the shipped corpus: cosine 0.997 mean, 0.994 min; the dense top 5 of 300
    sentence queries agree on 90% of passages (bf16: 99%). Other settings tried did no better
    for the speed: NNCF's performance preset, other SmoothQuant alphas or none, full bias
    correction, twice the passages; keeping a layer in fp32 gained 1-2 points for 20% less speed.
    """
    import nncf
    import openvino as ov

    logging.getLogger("nncf").setLevel(logging.WARNING)
    texts = [json.loads(line)["text"] for line in CALIBRATION.read_text(encoding="utf-8").splitlines()]
    tok = tokenizer(source)

    def feed(text: str) -> dict[str, np.ndarray]:
        return _inputs([tok.encode(text).ids], [0])

    model = nncf.quantize(
        ov.Core().read_model(str(xml)),
        nncf.Dataset(texts, feed),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(texts),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(out))


_loading = threading.Lock()


def load_embedder(settings: Settings | None = None) -> Embedder:
    """One model per process and runtime: loading takes a second or more, a query milliseconds."""
    if settings is None:
        from ingest.settings import Settings

        settings = Settings.from_env()
    with _loading:  # two threads asking at once get the one model
        return _load(
            settings.embed_backend,
            settings.precision,
            settings.embed_batch,
            settings.model_dir,
            settings.embed_model,
        )


@lru_cache(maxsize=4)
def _load(backend: str, precision: str, batch_size: int, cache_dir: Path, name: str) -> Embedder:
    model = spec(name)
    source = model.files(cache_dir)  # a missing model says how to install it, before any work
    if backend == "torch":
        return TorchModel(model, source=source, precision=precision, batch_size=batch_size)
    return OpenVINOModel(cache_dir, model, source=source, precision=precision, batch_size=batch_size)


class BackgroundEmbedder:
    """An Embedder whose model loads in a thread from the moment it is made; embed() waits for it.

    The app draws its page and the chat box while the model loads, instead of a blank page.
    """

    def __init__(self, load: Callable[[], Embedder], name: str) -> None:
        self.name, self.dimensions = name, spec(name).dimensions
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
