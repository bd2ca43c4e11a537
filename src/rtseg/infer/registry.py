"""The one table of backend names, ``create_backend`` and backends loaded from exported files."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from rtseg.errors import BackendUnavailable, MissingExtra, RtsegError
from rtseg.infer.backends import (
    Backend,
    OpenVinoBackend,
    OrtBackend,
    _bf16,
    _bf16_contiguous,
    _channels_last,
    _compile,
    _cuda,
    _cuda_compile,
    _cuda_fp16,
    _eager,
    _ort,
    _ort_default,
    _ort_int8,
    _ov,
    _ov_bf16,
    _ov_default,
    _ov_int8,
)
from rtseg.infer.sidecar import read_sidecar
from rtseg.utils.machine import has_fast_bf16

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
    name: str, path: Path, input_size, batch_size: int = 1, threads: int | None = None
) -> Backend:
    """Backend ``name`` running the given .onnx/.xml file as it is (no export, no re-quantisation)."""
    path = Path(path)
    int8 = ".int8." in path.name
    if name.startswith("openvino") or path.suffix == ".xml":
        hint = {"openvino-bf16": "bf16", "openvino-default": None, "openvino-int8": None}.get(
            name, "f32"
        )
        b = OpenVinoBackend(
            None, input_size, batch_size, threads, name=name, hint=hint, model_path=path
        )
    elif name.startswith("onnxruntime") and path.suffix == ".onnx":
        b = OrtBackend(None, input_size, batch_size, threads, name=name, int8=int8, onnx_path=path)
    else:
        raise BackendUnavailable(f"{name} cannot run a file ({path.name})")
    b.name = name
    return b


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
