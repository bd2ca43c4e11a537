"""Inference backends: one class per way of running a network (torch eager/autocast/inductor, CUDA,
ONNX Runtime, OpenVINO).

A backend takes a float32 NCHW normalised CPU batch and returns float32 logits NCHW on the CPU,
whatever runs inside. Backends that cannot run here raise ``BackendUnavailable`` with the reason,
so callers skip them with a note instead of crashing. The name -> (class, options) table
is ``rtseg.infer.registry.BACKENDS``; ``auto`` is ``rtseg.infer.auto``.
"""

from __future__ import annotations

import copy
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rtseg.errors import BackendUnavailable
from rtseg.infer.calibration import NO_IMAGES, describe_calibration
from rtseg.infer.frames import fit_batch
from rtseg.infer.onnx import export_onnx, quantize_onnx_int8
from rtseg.models.output import logits_to_labels
from rtseg.utils.cli import require
from rtseg.utils.machine import has_fast_bf16, set_threads
from rtseg.utils.signal_stack import keep_signal_stack


class Backend:
    """Float32 normalised NCHW (CPU) -> float32 logits NCHW (CPU)."""

    name: str = "?"
    precision: str = "fp32"
    device: str = "cpu"
    #: called after each timed run so asynchronous devices are timed to completion
    sync: Callable[[], None] | None = None
    #: the file this backend runs (exported/quantised ONNX), None for in-process torch
    path: Path | None = None
    #: int8 only: {"source": where the calibration images came from, "images": how many}
    calibration: dict | None = None
    #: measured against eager fp32 (agreement, mIoU drop, accepted) once judged
    quality: dict | None = None
    #: set by ``auto``: the cache entry (artifact, hashes, versions, trials, margin)
    auto: dict | None = None
    #: takes any batch size (eager torch); otherwise batches are padded to ``batch_size``
    dynamic: bool = False

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


class TorchBackend(Backend):
    """Eager PyTorch on the CPU, optionally channels_last and/or bf16 autocast."""

    dynamic = True

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
        set_threads(threads)
        self.name = name
        self.dtype = dtype
        self.precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:  # .to() converts parameters in place: never change the caller's network
            net = copy.deepcopy(net)
        self.net = net.eval().to(memory_format=self.memory_format)

    @torch.inference_mode()
    def __call__(self, x):
        x = x.contiguous(memory_format=self.memory_format)
        if self.dtype is None:
            return self.net(x)
        with torch.autocast("cpu", dtype=self.dtype):
            return self.net(x).float()


class CompileBackend(TorchBackend):
    """torch.compile (inductor). The first call compiles (tens of seconds on a small CPU)."""

    dynamic = False  # compiled for one shape

    def __init__(self, net, input_size, batch_size=1, threads=None, *, name="compile", **_):
        super().__init__(net, input_size, batch_size, threads, name=name)
        self.net = torch.compile(self.net, dynamic=False)
        t0 = time.perf_counter()
        with torch.inference_mode():
            self(torch.zeros(self.batch_size, 3, *self.input_size))
        self.note = f"compiled in {time.perf_counter() - t0:.0f} s"


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
        self.net = copy.deepcopy(net).eval().cuda()  # .cuda() moves in place
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


# --------------------------------------------------------------------------- ONNX files (exported once per network and size)


@dataclass
class ExportSettings:
    """Where a file-based runtime exports its network (``workdir``, a temp dir by default) and the
    real images int8 calibrates on."""

    calibration: list[torch.Tensor] | None = None
    workdir: Path | None = None


class _Exported:
    """Exports once per backend into ``workdir`` (a temp dir by default)."""

    def _workdir(self, workdir: Path | None) -> Path:
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rtseg-bench-")
            return Path(self._tmp.name)
        Path(workdir).mkdir(parents=True, exist_ok=True)
        return Path(workdir)

    def _onnx(self, net, export: ExportSettings | None, int8: bool) -> Path:
        export = export or ExportSettings()
        calibration = export.calibration
        wd = self._workdir(export.workdir)
        stem = f"{type(net).__name__}_{self.input_size[0]}x{self.input_size[1]}_b{self.batch_size}"
        fp32 = wd / f"{stem}.onnx"
        done = _WRITTEN.setdefault(net, set())
        if fp32 not in done:
            export_onnx(net, fp32, self.input_size, self.batch_size)
            done.add(fp32)
        if not int8:
            return fp32
        if not calibration:  # never noise: without real images there is no int8
            raise BackendUnavailable(NO_IMAGES)
        self.calibration = describe_calibration(calibration)
        q = wd / f"{stem}.int8.onnx"
        if q not in done:  # ORT and OpenVINO int8 share one quantised file per network and size
            images = [fit_batch(b, self.batch_size) for b in calibration]
            quantize_onnx_int8(fp32, q, images, ranges=getattr(calibration, "ranges", None))
            done.add(q)
        return q


# files this process exported per network (weakly keyed: a freed network forgets its files)
_WRITTEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
        path=None,
        export: ExportSettings | None = None,
        profile: Path | None = None,
        **_,
    ):
        """``profile``: ONNX Runtime's profiler on, its JSON written under this path prefix
        (``session.end_profiling()`` names the file; experiments/network_profile reads it)."""
        ort = require("onnxruntime", f"backend={name}")
        if default_session:
            threads = None  # ONNX Runtime's own thread count: the peer a user gets out of the box
        Backend.__init__(self, input_size, batch_size, threads)
        self.name = name
        self.path = Path(path) if path else self._onnx(net, export, int8)
        self.precision = "int8" if int8 or ".int8." in self.path.name else "fp32"
        opts = ort.SessionOptions()
        # errors only: graph optimisation otherwise prints a warning per folded initializer
        # (hundreds of lines for an exported EfficientNet), burying the run's own log
        opts.log_severity_level = 3
        if default_session:
            self.note = "default session (ONNX Runtime's own thread count)"
        else:
            # the ORT defaults apart from a fixed thread count (ORT uses every core otherwise)
            if threads:
                opts.intra_op_num_threads = int(threads)
                opts.inter_op_num_threads = 1
        if profile is not None:
            opts.enable_profiling = True
            opts.profile_file_prefix = str(profile)
        self.session = ort.InferenceSession(
            str(self.path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x):
        out = self.session.run(
            None, {self.input_name: np.ascontiguousarray(x.numpy(), dtype=np.float32)}
        )[0]
        return torch.from_numpy(out).float()


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
        path=None,
        export: ExportSettings | None = None,
        profile: Path | None = None,
        **_,
    ):
        """``profile`` (any path): OpenVINO's performance counters on (``PERF_COUNT``), read per
        inference with ``self.request.get_profiling_info()`` (experiments/network_profile)."""
        ov = require("openvino", f"backend={name}")
        if hint == "bf16" and not has_fast_bf16():
            raise BackendUnavailable("CPU has neither AMX nor AVX512-BF16")
        Backend.__init__(self, input_size, batch_size, threads)
        # callers take turns on the one infer request: OpenVINO refuses a busy request ("Infer
        # Request is busy") and, worse, one caller's infer can overwrite the output another is
        # copying (a wrong mask, no error). In LATENCY mode one inference already runs on all the
        # compiled model's threads, so turns cost threaded callers little and one thread nothing
        self._turn = threading.Lock()
        self.name = name
        self.path = Path(path) if path else self._onnx(net, export, int8)
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if hint:
            config["INFERENCE_PRECISION_HINT"] = hint
        if profile is not None:
            config["PERF_COUNT"] = True
        # the CPU plugin swaps this thread's signal stack when it compiles and when it frees a
        # model, and can leave it on a freed one (utils/signal_stack.py): kept around both
        with keep_signal_stack():
            core = ov.Core()
            self.compiled = core.compile_model(core.read_model(str(self.path)), "CPU", config)
            del core
        used = str(self.compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
        used = "bf16" if "bf" in used else "fp16" if "16" in used else "fp32"
        self.precision = "int8" if int8 or ".int8." in self.path.name else used
        if self.precision == "int8" and used == "bf16":
            self.note = "int8 QDQ, remaining ops bf16"
        self.request = self.compiled.create_infer_request()

    def close(self) -> None:
        """Free the compiled model now, with this thread's signal stack kept (also at collection)."""
        with self._turn, keep_signal_stack():
            self.request = self.compiled = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: modules may be gone already
            pass

    def __call__(self, x):
        x = np.ascontiguousarray(x.numpy(), dtype=np.float32)
        with self._turn:  # the request's input and output belong to one call until copied out
            self.request.infer({0: x})
            out = self.request.get_output_tensor(0).data.copy()
        return torch.from_numpy(out).float()


# --------------------------------------------------------------------------- test-time augmentation


class Augmented(Backend):
    """Any backend run with test-time augmentation (``rtseg.models.tta``): the logits are the mean
    class probabilities (as log-probabilities) over flips and scales. Scales other than 1 need a
    backend that takes any input size (eager-like); flips work with every backend."""

    def __init__(self, inner: Backend, tta):
        from rtseg.models.tta import TTA

        tta = TTA.parse(tta)
        if tta.scales != (1.0,) and not inner.dynamic:
            raise BackendUnavailable(
                f"tta={tta.describe()}: scales need a backend that takes any input size (eager, "
                f"bf16, channels_last); {inner.name} runs {inner.input_size[0]}x"
                f"{inner.input_size[1]} only (tta=flip works with every backend)"
            )
        Backend.__init__(self, inner.input_size, inner.batch_size, inner.threads)
        self.inner, self.tta = inner, tta
        self.name = f"{inner.name}+{tta.describe().replace(' ', '')}"
        self.precision, self.device, self.dynamic = inner.precision, inner.device, inner.dynamic
        self.path, self.calibration, self.quality = inner.path, inner.calibration, inner.quality
        self.sync, self.note = inner.sync, inner.note

    @torch.inference_mode()
    def __call__(self, x):
        from rtseg.models.tta import tta_logits

        return tta_logits(self.inner, x, self.tta)
