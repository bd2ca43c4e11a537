"""This machine's physical limit: GFLOP/s of a large matrix multiply, per precision.

Every benchmark row is reported as a fraction of the peak that matches its precision, so a
number like "12 ms" comes with "and that is 8 % of what these cores can do".
"""

from __future__ import annotations

import torch

from rtseg.timing import time_fn


def gemm_gflops(
    precision: str = "fp32",
    n: int = 2048,
    threads: int | None = None,
    min_seconds: float = 0.5,
    device: str = "cpu",
) -> float:
    """Median GFLOP/s of an n x n x n matmul (2 n^3 FLOPs) in fp32, bf16, fp16 or int8."""
    if threads and device == "cpu":
        torch.set_num_threads(int(threads))
    sync = torch.cuda.synchronize if device == "cuda" else None
    if precision == "int8":
        a = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=device)
        b = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=device)
        fn = lambda: torch._int_mm(a, b)  # noqa: E731 - int8 x int8 -> int32, the VNNI/AMX path
    else:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)
        fn = lambda: a @ b  # noqa: E731
    stats = time_fn(fn, warmup=2, min_runs=3, min_seconds=min_seconds, sync=sync)
    return 2 * n**3 / (stats["median_ms"] / 1e3) / 1e9


def measure_peaks(
    precisions=("fp32", "bf16", "int8"),
    n: int = 2048,
    threads: int | None = None,
    min_seconds: float = 0.5,
) -> dict[str, float]:
    """``{"fp32": ..., "bf16": ..., "int8": ..., "cuda-fp32": ..., "cuda-fp16": ...}`` (GFLOP/s; int8 as GOP/s)."""
    # a 256^3 probe first: a fallback kernel at n=2048 takes minutes (bf16 at 0.4 GFLOP/s on AVX2)
    probes, peaks = {}, {}
    for p in precisions:
        try:
            probes[p] = gemm_gflops(p, 256, threads, 0.05)
        except (RuntimeError, NotImplementedError):
            pass  # e.g. no int8 matmul kernel for this CPU build
    for p in without_fallback_kernels(probes):
        peaks[p] = gemm_gflops(p, n, threads, min_seconds)
    peaks = without_fallback_kernels(peaks)
    if torch.cuda.is_available():
        for p in ("fp32", "fp16"):
            peaks[f"cuda-{p}"] = gemm_gflops(p, 4096, None, min_seconds, device="cuda")
    return peaks


def without_fallback_kernels(peaks: dict[str, float]) -> dict[str, float]:
    """A reduced precision slower than fp32 ran torch's reference kernel (no AVX512-BF16, VNNI or
    AMX: e.g. int8 at 2 GOP/s on an AVX2-only CPU), not this CPU's ceiling; the runtimes use other
    int8 kernels there, so a "% of peak" against it would read thousands of percent. Left out."""
    fp32 = peaks.get("fp32")
    if fp32 is None:
        return peaks
    return {p: v for p, v in peaks.items() if p == "fp32" or v >= fp32}


def peak_for(peaks: dict[str, float], precision: str, device: str = "cpu") -> float | None:
    key = precision if device == "cpu" else f"{device}-{precision}"
    return peaks.get(key)
