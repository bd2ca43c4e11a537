"""Inference backends: one object per way of running a network, shared by rtseg-bench and rtseg-realtime.

A backend takes a float32 NCHW normalised CPU batch and returns float32 logits NCHW on the CPU,
whatever runs inside (torch eager, autocast, inductor, ONNX Runtime, OpenVINO, CUDA). Backends
that cannot run here raise ``BackendUnavailable`` with the reason, so callers skip them with a
note instead of crashing. ``resolve_backend("auto")`` measures the candidates, keeps only those
whose argmax agrees with eager fp32, picks the fastest and caches the choice per machine.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rtseg.errors import MissingExtra, RtsegError
from rtseg.models.output import logits_to_labels
from rtseg.utils import require

log = logging.getLogger("rtseg.bench")

ONNX_OPSET = 17


class BackendUnavailable(RtsegError):
    """This backend cannot run on this machine or for this network; the message says why."""


class Backend:
    """Float32 normalised NCHW (CPU) -> float32 logits NCHW (CPU)."""

    name: str = "?"
    precision: str = "fp32"
    device: str = "cpu"
    #: called after each timed run so asynchronous devices are timed to completion
    sync: Callable[[], None] | None = None

    def __init__(
        self, input_size: tuple[int, int], batch_size: int = 1, threads: int | None = None
    ):
        self.input_size = tuple(int(v) for v in input_size)
        self.batch_size = int(batch_size)
        self.threads = threads
        self.note = ""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def labels(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W) class map: argmax over classes, or the sign of a single tanh channel."""
        return logits_to_labels(self(x))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.precision} batch={self.batch_size}>"


# --------------------------------------------------------------------------- torch (CPU)


def _as_module(net: nn.Module) -> nn.Module:
    """Networks whose forward returns a dict (torchvision's segmentation models) -> plain logits."""
    return _OutOnly(net) if _returns_dict(net) else net


class _OutOnly(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)["out"]


def _returns_dict(net: nn.Module) -> bool:
    return type(net).__module__.startswith("torchvision.models.segmentation")


class TorchBackend(Backend):
    """Eager PyTorch on the CPU, optionally channels_last and/or bf16 autocast."""

    def __init__(
        self,
        net,
        input_size,
        batch_size=1,
        threads=None,
        *,
        name="eager",
        channels_last=False,
        dtype=None,
        **_,
    ):
        super().__init__(input_size, batch_size, threads)
        if threads:
            torch.set_num_threads(int(threads))
        self.name = name
        self.dtype = dtype
        self.precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:  # .to() converts parameters in place: never change the caller's network
            net = copy.deepcopy(net)
        self.net = _as_module(net).eval().to(memory_format=self.memory_format)

    @torch.inference_mode()
    def __call__(self, x):
        x = x.contiguous(memory_format=self.memory_format)
        if self.dtype is None:
            return self.net(x)
        with torch.autocast("cpu", dtype=self.dtype):
            return self.net(x).float()


def _eager(net, input_size, batch_size=1, threads=None, **kw):
    return TorchBackend(net, input_size, batch_size, threads, name="eager")


def _channels_last(net, input_size, batch_size=1, threads=None, **kw):
    return TorchBackend(
        net, input_size, batch_size, threads, name="channels_last", channels_last=True
    )


def _bf16(net, input_size, batch_size=1, threads=None, **kw):
    # channels_last lets oneDNN pick its blocked bf16 convolutions (measured faster than
    # contiguous bf16 on a 2-core AMX machine: 40 vs 152 ms fp32 for smp Unet-R18 at 360x480); bf16-contiguous is the other variant.
    return TorchBackend(
        net, input_size, batch_size, threads, name="bf16", channels_last=True, dtype=torch.bfloat16
    )


def _bf16_contiguous(net, input_size, batch_size=1, threads=None, **kw):
    return TorchBackend(
        net, input_size, batch_size, threads, name="bf16-contiguous", dtype=torch.bfloat16
    )


class CompileBackend(TorchBackend):
    """torch.compile (inductor). The first call compiles (tens of seconds on a small CPU)."""

    def __init__(
        self,
        net,
        input_size,
        batch_size=1,
        threads=None,
        *,
        name="compile",
        device="cpu",
        dtype=None,
        **_,
    ):
        super().__init__(
            net,
            input_size,
            batch_size,
            threads,
            name=name,
            dtype=dtype if device == "cpu" else None,
        )
        self.net = torch.compile(self.net, dynamic=False)
        t0 = time.perf_counter()
        with torch.inference_mode():
            self(torch.zeros(self.batch_size, 3, *self.input_size))
        self.note = f"compiled in {time.perf_counter() - t0:.0f} s"


def _compile(net, input_size, batch_size=1, threads=None, **kw):
    return CompileBackend(net, input_size, batch_size, threads)


# --------------------------------------------------------------------------- CUDA


class CudaBackend(Backend):
    """The network on the GPU; input copied in and logits copied back, as a CPU caller sees it."""

    device = "cuda"

    def __init__(
        self,
        net,
        input_size,
        batch_size=1,
        threads=None,
        *,
        name="cuda",
        dtype=None,
        compile=False,
        **_,
    ):
        if not torch.cuda.is_available():
            raise BackendUnavailable("no CUDA device")
        super().__init__(input_size, batch_size, threads)
        self.name = name
        self.dtype = dtype
        self.precision = "fp16" if dtype == torch.float16 else "fp32"
        self.net = _as_module(copy.deepcopy(net)).eval().cuda()  # .cuda() moves in place
        if compile:
            self.net = torch.compile(self.net, dynamic=False)
        self.sync = torch.cuda.synchronize
        with torch.inference_mode():
            self(torch.zeros(self.batch_size, 3, *self.input_size))

    @torch.inference_mode()
    def __call__(self, x):
        x = x.cuda(non_blocking=True)
        if self.dtype is None:
            return self.net(x).float().cpu()
        with torch.autocast("cuda", dtype=self.dtype):
            return self.net(x).float().cpu()


def _cuda(net, input_size, batch_size=1, threads=None, **kw):
    return CudaBackend(net, input_size, batch_size, threads, name="cuda")


def _cuda_fp16(net, input_size, batch_size=1, threads=None, **kw):
    return CudaBackend(net, input_size, batch_size, threads, name="cuda-fp16", dtype=torch.float16)


def _cuda_compile(net, input_size, batch_size=1, threads=None, **kw):
    return CudaBackend(net, input_size, batch_size, threads, name="cuda-compile", compile=True)


# --------------------------------------------------------------------------- ONNX export + int8


def export_onnx(
    net: nn.Module, path: Path, input_size, batch_size: int = 1, dynamic_batch: bool = False
) -> Path:
    """TorchScript-based exporter (the dynamo one needs onnxscript, not installed), opset 17."""
    require("onnx", "ONNX export")  # torch.onnx.export writes the file with it
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.zeros(batch_size, 3, *input_size)
    module = _as_module(net).eval()
    with torch.no_grad(), _quiet():
        torch.onnx.export(
            module,
            (x,),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None,
        )
    return path


@contextlib.contextmanager
def _quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def random_calibration(
    input_size, n: int = 8, batch_size: int = 1, seed: int = 0
) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch_size, 3, *input_size, generator=g) for _ in range(n)]


def quantize_onnx_int8(
    fp32_path: Path, int8_path: Path, calibration: Iterable[torch.Tensor]
) -> Path:
    """Static QDQ int8 (per-channel weights, MinMax activations) with ONNX Runtime's quantiser."""
    q = require("onnxruntime.quantization", "int8 quantisation")

    batches = [np.ascontiguousarray(b.numpy(), dtype=np.float32) for b in calibration]
    if not batches:
        raise BackendUnavailable("int8 needs calibration images (got none)")

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"input": b}

    logging.disable(logging.WARNING)  # the quantiser warns on the root logger about pre-processing
    try:
        q.quantize_static(
            str(fp32_path),
            str(int8_path),
            Reader(),
            quant_format=q.QuantFormat.QDQ,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            per_channel=True,
        )
    finally:
        logging.disable(logging.NOTSET)
    return Path(int8_path)


class _Exported:
    """Exports once per backend into ``workdir`` (a temp dir by default)."""

    def _workdir(self, workdir: Path | None) -> Path:
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rtseg-bench-")
            return Path(self._tmp.name)
        Path(workdir).mkdir(parents=True, exist_ok=True)
        return Path(workdir)

    def _onnx(self, net, workdir, int8: bool, calibration) -> Path:
        wd = self._workdir(workdir)
        stem = f"{type(net).__name__}_{self.input_size[0]}x{self.input_size[1]}_b{self.batch_size}"
        fp32 = wd / f"{stem}.onnx"
        done = _WRITTEN.setdefault(net, set())
        if fp32 not in done:
            export_onnx(net, fp32, self.input_size, self.batch_size)
            done.add(fp32)
        if not int8:
            return fp32
        if calibration is None:
            calibration = random_calibration(self.input_size, batch_size=self.batch_size)
            self.note = "int8 calibrated on random input"
        q = wd / f"{stem}.int8.onnx"
        if q not in done:  # ORT and OpenVINO int8 share one quantised file per network and size
            quantize_onnx_int8(fp32, q, [_fit_batch(b, self.batch_size) for b in calibration])
            done.add(q)
        return q


# files this process exported per network (weakly keyed: a freed network forgets its files)
_WRITTEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fit_batch(b: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Repeat or cut a batch to the exported (static) batch size."""
    if len(b) == batch_size:
        return b
    reps = -(-batch_size // len(b))
    return b.repeat(reps, 1, 1, 1)[:batch_size]


# --------------------------------------------------------------------------- ONNX Runtime


class OrtBackend(Backend, _Exported):
    def __init__(
        self,
        net=None,
        input_size=(0, 0),
        batch_size=1,
        threads=None,
        *,
        name="onnxruntime",
        int8=False,
        default_session=False,
        calibration=None,
        workdir=None,
        onnx_path=None,
        **_,
    ):
        ort = require("onnxruntime", f"backend={name}")
        Backend.__init__(self, input_size, batch_size, threads)
        self.name = name
        self.precision = "int8" if int8 else "fp32"
        self.path = Path(onnx_path) if onnx_path else self._onnx(net, workdir, int8, calibration)
        opts = None
        if default_session:
            self.note = "default session (ONNX Runtime's own thread count)"
        else:
            # the ORT defaults apart from a fixed thread count (ORT uses every core otherwise)
            opts = ort.SessionOptions()
            if threads:
                opts.intra_op_num_threads = int(threads)
                opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(self.path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x):
        out = self.session.run(
            None, {self.input_name: np.ascontiguousarray(x.numpy(), dtype=np.float32)}
        )[0]
        return torch.from_numpy(out).float()


def _ort(net, input_size, batch_size=1, threads=None, calibration=None, workdir=None):
    return OrtBackend(net, input_size, batch_size, threads, workdir=workdir)


def _ort_default(net, input_size, batch_size=1, threads=None, calibration=None, workdir=None):
    return OrtBackend(
        net,
        input_size,
        batch_size,
        None,
        name="onnxruntime-default",
        default_session=True,
        workdir=workdir,
    )


def _ort_int8(net, input_size, batch_size=1, threads=None, calibration=None, workdir=None):
    return OrtBackend(
        net,
        input_size,
        batch_size,
        threads,
        name="onnxruntime-int8",
        int8=True,
        calibration=calibration,
        workdir=workdir,
    )


# --------------------------------------------------------------------------- OpenVINO


class OpenVinoBackend(Backend, _Exported):
    """OpenVINO on the CPU from the ONNX file. ``hint`` is INFERENCE_PRECISION_HINT (None: OpenVINO's default)."""

    def __init__(
        self,
        net=None,
        input_size=(0, 0),
        batch_size=1,
        threads=None,
        *,
        name="openvino",
        hint="f32",
        int8=False,
        calibration=None,
        workdir=None,
        model_path=None,
        **_,
    ):
        ov = require("openvino", f"backend={name}")
        Backend.__init__(self, input_size, batch_size, threads)
        self.name = name
        self.path = Path(model_path) if model_path else self._onnx(net, workdir, int8, calibration)
        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if hint:
            config["INFERENCE_PRECISION_HINT"] = hint
        self.compiled = core.compile_model(core.read_model(str(self.path)), "CPU", config)
        used = str(self.compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
        used = "bf16" if "bf" in used else "fp16" if "16" in used else "fp32"
        self.precision = "int8" if int8 or ".int8." in self.path.name else used
        if self.precision == "int8" and used == "bf16":
            self.note = "int8 QDQ, remaining ops bf16"
        self.request = self.compiled.create_infer_request()

    def __call__(self, x):
        self.request.infer({0: np.ascontiguousarray(x.numpy(), dtype=np.float32)})
        return torch.from_numpy(self.request.get_output_tensor(0).data.copy()).float()


def _ov(net, input_size, batch_size=1, threads=None, calibration=None, workdir=None):
    return OpenVinoBackend(net, input_size, batch_size, threads, workdir=workdir)


def _ov_default(net, input_size, batch_size=1, threads=None, calibration=None, workdir=None):
    """OpenVINO as shipped: its own precision choice (bf16 where the CPU has it), fixed threads only."""
    return OpenVinoBackend(
        net, input_size, batch_size, threads, name="openvino-default", hint=None, workdir=workdir
    )


def _ov_bf16(net, input_size, batch_size=1, threads=None, calibration=None, workdir=None):
    from rtseg.utils import has_fast_bf16

    if not has_fast_bf16():
        raise BackendUnavailable("CPU has neither AMX nor AVX512-BF16")
    return OpenVinoBackend(
        net, input_size, batch_size, threads, name="openvino-bf16", hint="bf16", workdir=workdir
    )


def _ov_int8(net, input_size, batch_size=1, threads=None, calibration=None, workdir=None):
    """The ORT static-QDQ int8 file run by OpenVINO (which fuses the QDQ pairs into int8 kernels)."""
    return OpenVinoBackend(
        net,
        input_size,
        batch_size,
        threads,
        name="openvino-int8",
        hint=None,
        int8=True,
        calibration=calibration,
        workdir=workdir,
    )


# --------------------------------------------------------------------------- registry

BACKENDS: dict[str, Callable[..., Backend]] = {
    "eager": _eager,
    "channels_last": _channels_last,
    "bf16": _bf16,
    "bf16-contiguous": _bf16_contiguous,
    "compile": _compile,
    "onnxruntime": _ort,
    "onnxruntime-default": _ort_default,
    "onnxruntime-int8": _ort_int8,
    "openvino": _ov,
    "openvino-default": _ov_default,
    "openvino-bf16": _ov_bf16,
    "openvino-int8": _ov_int8,
    "cuda": _cuda,
    "cuda-fp16": _cuda_fp16,
    "cuda-compile": _cuda_compile,
}


def create_backend(
    name: str,
    net: nn.Module,
    input_size: tuple[int, int],
    batch_size: int = 1,
    threads: int | None = None,
    calibration: Iterable[torch.Tensor] | None = None,
    workdir: Path | None = None,
) -> Backend:
    """Build one backend; ``BackendUnavailable`` says why it cannot run here."""
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r} (known: {', '.join(BACKENDS)}, auto)")
    try:
        backend = BACKENDS[name](
            net,
            tuple(input_size),
            batch_size=batch_size,
            threads=threads,
            calibration=calibration,
            workdir=workdir,
        )
    except BackendUnavailable:
        raise
    except MissingExtra as e:  # "backend=openvino needs OpenVINO: pip install 'rtseg[deploy]'"
        raise BackendUnavailable(str(e)) from None
    except ImportError as e:
        raise BackendUnavailable(f"{name}: {e}") from None
    except Exception as e:  # noqa: BLE001 - an export/compile failure means "cannot run this net here"
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise BackendUnavailable(f"{name} failed to build: {type(e).__name__}: {first}") from e
    backend.name = name
    return backend


def default_candidates() -> list[str]:
    """What ``auto`` tries: the fast paths this machine has."""
    from rtseg.utils import has_fast_bf16

    names = ["eager", "onnxruntime", "onnxruntime-int8", "openvino", "openvino-int8"]
    if has_fast_bf16():
        names += ["bf16", "openvino-bf16"]
    if torch.cuda.is_available():
        names = ["cuda", "cuda-fp16"] + names
    return names


# --------------------------------------------------------------------------- agreement


@torch.inference_mode()
def agreement(
    backend: Backend,
    reference: Callable[[torch.Tensor], torch.Tensor],
    images: Iterable[torch.Tensor],
) -> float:
    """Fraction of pixels whose class equals the reference's (eager fp32) on the same inputs."""
    equal = total = 0
    for x in images:
        n = len(x)
        xb = _fit_batch(x, backend.batch_size)
        ours = backend.labels(xb)[:n]
        ref = reference(x)
        equal += int((ours == ref).sum())
        total += ref.numel()
    return equal / max(total, 1)


def reference_labels(net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    ref = _as_module(net).eval()

    @torch.inference_mode()
    def labels(x):
        return logits_to_labels(ref(x.contiguous()))

    return labels


# --------------------------------------------------------------------------- auto


def default_cache_dir() -> Path:
    return Path(os.environ.get("RTSEG_LOG_DIR", "logs")) / "bench"


def model_key(net: nn.Module) -> str:
    """Architecture + a hash of the weights: the same file gives the same key in every process."""
    h = hashlib.sha1()
    for k, v in sorted(net.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return f"{type(net).__name__}-{h.hexdigest()[:12]}"


def auto_cache_key(cache_key: str, input_size, batch_size: int, threads: int | None) -> str:
    from rtseg.utils import cpu_name

    return f"{cpu_name()}|{cache_key}|{input_size[0]}x{input_size[1]}|b{batch_size}|t{threads or torch.get_num_threads()}"


def resolve_backend(
    name: str,
    net: nn.Module,
    input_size,
    batch_size: int = 1,
    threads: int | None = None,
    cache_key: str | None = None,
    candidates: Iterable[str] | None = None,
    calibration: Iterable[torch.Tensor] | None = None,
    workdir: Path | None = None,
    *,
    images: list[torch.Tensor] | None = None,
    agreement_tol: float = 0.995,
    cache_dir: Path | None = None,
    min_seconds: float = 1.0,
    min_runs: int = 5,
) -> Backend:
    """A named backend, or for ``auto`` the fastest candidate that agrees with eager fp32.

    The choice is cached in ``<cache_dir>/auto.json`` keyed by CPU, model (``cache_key``, default
    a hash of the weights), input size, batch and threads, so the realtime entrypoint reuses
    what the benchmark measured. ``backend.auto_trials`` lists what was measured.
    """
    if name != "auto":
        return create_backend(name, net, input_size, batch_size, threads, calibration, workdir)
    from rtseg.bench.measure import time_fn

    cache_file = Path(cache_dir or default_cache_dir()) / "auto.json"
    key = auto_cache_key(cache_key or model_key(net), input_size, batch_size, threads)
    cache = _read_cache(cache_file)
    if key in cache:
        chosen = cache[key]["backend"]
        try:
            backend = create_backend(
                chosen, net, input_size, batch_size, threads, calibration, workdir
            )
            backend.auto_trials = cache[key].get("trials", [])
            backend.note = f"auto: cached choice {chosen}"
            return backend
        except BackendUnavailable as e:
            log.warning("cached auto choice %s no longer builds (%s): measuring again", chosen, e)

    images = images or random_calibration(input_size, n=2, batch_size=1, seed=1)
    reference = reference_labels(net)
    trials, best, best_ms = [], None, float("inf")
    for cand in candidates or default_candidates():
        try:
            backend = create_backend(
                cand, net, input_size, batch_size, threads, calibration, workdir
            )
        except BackendUnavailable as e:
            trials.append({"backend": cand, "skipped": str(e)})
            continue
        agree = agreement(backend, reference, images)
        x = torch.randn(batch_size, 3, *input_size)
        ms = time_fn(
            lambda b=backend, x=x: b(x),
            warmup=2,
            min_runs=min_runs,
            min_seconds=min_seconds,
            sync=backend.sync,
        )["median_ms"]
        trials.append(
            {
                "backend": cand,
                "latency_ms": ms,
                "agreement": agree,
                "agrees": agree >= agreement_tol,
            }
        )
        log.info("auto: %s %.2f ms agreement %.4f", cand, ms, agree)
        if agree >= agreement_tol and ms < best_ms:
            best, best_ms = backend, ms
        else:
            del backend
    if best is None:
        raise BackendUnavailable(
            f"auto: no candidate agrees with eager fp32 within {agreement_tol} ({trials})"
        )
    cache[key] = {
        "backend": best.name,
        "latency_ms": best_ms,
        "trials": trials,
        "time": time.time(),
    }
    _write_cache(cache_file, cache)
    best.auto_trials = trials
    best.note = f"auto: chose {best.name}"
    return best


def _read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cache, indent=2))
    tmp.replace(path)


# --------------------------------------------------------------------------- exported files


def load_exported(
    path: str | Path, backend: str | None = None, threads: int | None = None
) -> tuple[Backend, dict]:
    """A backend straight from a file written by rtseg-export (.onnx or OpenVINO .xml) and its sidecar.

    ``backend`` picks the runtime for an .onnx file ("onnxruntime" default, or "openvino"); an
    int8 file keeps its precision.
    """
    from rtseg.bench.export import read_sidecar

    path = Path(path).expanduser()
    if not path.is_file():
        raise BackendUnavailable(f"exported model not found: {path}")
    meta = read_sidecar(path)
    size = tuple(meta.get("input_size") or (0, 0))
    batch = int(meta.get("batch_size", 1))
    int8 = ".int8." in path.name
    if path.suffix == ".xml" or (backend or "").startswith("openvino"):
        hint = {"openvino-bf16": "bf16", "openvino-default": None, "openvino-int8": None}.get(
            backend, "f32"
        )
        name = backend or ("openvino-int8" if int8 else "openvino")
        b = OpenVinoBackend(None, size, batch, threads, name=name, hint=hint, model_path=path)
    elif path.suffix == ".onnx":
        name = "onnxruntime-int8" if int8 else "onnxruntime"
        b = OrtBackend(None, size, batch, threads, name=name, int8=int8, onnx_path=path)
    else:
        raise BackendUnavailable(f"{path}: expected an exported .onnx or .xml file")
    return b, meta
