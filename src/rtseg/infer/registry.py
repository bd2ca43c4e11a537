"""The one table of backend names (data: runtime class + options), ``create_backend`` and backends
loaded from exported files."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from rtseg.errors import BackendUnavailable, ExportError, MissingExtra, RtsegError
from rtseg.infer.backends import (
    Backend,
    CompileBackend,
    CudaBackend,
    ExportSettings,
    OpenVinoBackend,
    OrtBackend,
    TorchBackend,
)
from rtseg.infer.sidecar import read_sidecar
from rtseg.utils.machine import has_fast_bf16


@dataclass(frozen=True)
class BackendSpec:
    """A backend name: the runtime class that runs it and the options it is built with."""

    runtime: type[Backend]
    options: dict = field(default_factory=dict)


BF16 = {"dtype": torch.bfloat16}
#: every backend name. OpenVINO's ``hint`` is its INFERENCE_PRECISION_HINT (None: its own choice);
#: torch bf16 runs channels_last so oneDNN picks its blocked bf16 convolutions (measured faster
#: than contiguous bf16 on a 2-core AMX machine: 40 vs 152 ms fp32 for smp Unet-R18 at 360x480)
BACKENDS: dict[str, BackendSpec] = {
    "eager": BackendSpec(TorchBackend),
    "channels_last": BackendSpec(TorchBackend, {"channels_last": True}),
    "bf16": BackendSpec(TorchBackend, {"channels_last": True, **BF16}),
    "bf16-contiguous": BackendSpec(TorchBackend, BF16),
    "compile": BackendSpec(CompileBackend),
    "onnxruntime": BackendSpec(OrtBackend),
    "onnxruntime-default": BackendSpec(OrtBackend, {"default_session": True}),
    "onnxruntime-int8": BackendSpec(OrtBackend, {"int8": True}),
    "openvino": BackendSpec(OpenVinoBackend, {"hint": "f32"}),
    "openvino-default": BackendSpec(OpenVinoBackend, {"hint": None}),
    "openvino-bf16": BackendSpec(OpenVinoBackend, {"hint": "bf16"}),
    # the ONNX Runtime static-QDQ int8 file run by OpenVINO (it fuses the QDQ pairs into int8 kernels)
    "openvino-int8": BackendSpec(OpenVinoBackend, {"hint": None, "int8": True}),
    "cuda": BackendSpec(CudaBackend),
    "cuda-fp16": BackendSpec(CudaBackend, {"dtype": torch.float16}),
    "cuda-compile": BackendSpec(CudaBackend, {"compile": True}),
}


def unknown_backend(name: str) -> BackendUnavailable:
    return BackendUnavailable(f"unknown backend {name!r} (known: {', '.join(BACKENDS)}, auto)")


#: simplest first: when candidates are within noise of each other, ``auto`` takes the simplest
#: (fewest moving parts to deploy: in-process torch, then one runtime file, then reduced precision,
#: int8 last since it also depends on calibration)
SIMPLICITY = [
    "eager", "channels_last", "cuda", "bf16", "bf16-contiguous", "cuda-fp16", "compile",
    "cuda-compile", "onnxruntime", "onnxruntime-default", "openvino", "openvino-default",
    "openvino-bf16", "onnxruntime-int8", "openvino-int8",
]  # fmt: skip


def simplicity(name: str) -> int:
    return SIMPLICITY.index(name) if name in SIMPLICITY else len(SIMPLICITY)


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
        raise unknown_backend(name)
    spec = BACKENDS[name]
    try:
        backend = spec.runtime(
            net,
            tuple(input_size),
            batch_size,
            threads,
            name=name,
            export=ExportSettings(calibration, workdir),
            **spec.options,
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


def check_backend_names(names: Iterable[str], key: str) -> None:
    """An unknown backend name stops the run at once, in one line naming the known ones (a typo
    next to a valid name used to cost a skipped row and exit 0)."""
    known = [*BACKENDS, "auto"]
    for name in names:
        if name not in known:
            raise RtsegError(f"{key}: unknown backend {name!r} (known: {', '.join(known)})")


def default_candidates() -> list[str]:
    """What ``auto`` tries: the fast paths this machine has."""
    names = ["eager", "onnxruntime", "onnxruntime-int8", "openvino", "openvino-int8"]
    if has_fast_bf16():
        names += ["bf16", "openvino-bf16"]
    if torch.cuda.is_available():
        names = ["cuda", "cuda-fp16"] + names
    return names


def from_file(
    name: str,
    path: Path,
    input_size,
    batch_size: int = 1,
    threads: int | None = None,
    profile: Path | None = None,
) -> Backend:
    """Backend ``name`` running the given .onnx/.xml file as it is (no export, no re-quantisation);
    ``profile``: with the runtime's per-layer profiler on (see ``OrtBackend``/``OpenVinoBackend``)."""
    path = Path(path)
    spec = BACKENDS.get(name)
    if spec is None:
        raise unknown_backend(name)
    runs_files = spec.runtime is OpenVinoBackend or (
        spec.runtime is OrtBackend and path.suffix == ".onnx"
    )
    if not runs_files:
        raise BackendUnavailable(f"{name} cannot run a file ({path.name})")
    try:
        return spec.runtime(
            None, input_size, batch_size, threads, name=name, path=path, profile=profile,
            **spec.options,
        )  # fmt: skip
    except RtsegError:
        raise
    except Exception as e:  # noqa: BLE001 - InvalidProtobuf and friends: a damaged or foreign file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ExportError(f"{path}: {name} cannot load it ({type(e).__name__}: {first})") from None


def load_exported(
    path: str | Path, backend: str | None = None, threads: int | None = None
) -> tuple[Backend, dict]:
    """A backend straight from a file written by rtseg-export (.onnx or OpenVINO .xml) and its sidecar.

    ``backend`` picks the runtime for an .onnx file ("onnxruntime" default, or "openvino"); an
    int8 file keeps its precision.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise BackendUnavailable(f"exported model not found: {path}")
    meta = read_sidecar(path)
    size = tuple(meta.get("input_size") or (0, 0))
    batch = int(meta.get("batch_size", 1))
    int8 = ".int8." in path.name
    if path.suffix not in (".xml", ".onnx"):
        raise BackendUnavailable(f"{path}: expected an exported .onnx or .xml file")
    if path.suffix == ".xml" or (backend or "").startswith("openvino"):
        name = backend or ("openvino-int8" if int8 else "openvino")
    else:
        name = "onnxruntime-int8" if int8 else "onnxruntime"
    b = from_file(name, path, size, batch, threads)
    b.calibration = meta.get("calibration")
    return b, meta
