"""Timing done right: warm-up, then repeat until both a minimum count and a minimum time are reached."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def time_fn(
    fn: Callable[[], object],
    warmup: int = 3,
    min_runs: int = 10,
    min_seconds: float = 1.0,
    max_runs: int = 10_000,
    sync: Callable[[], None] | None = None,
) -> dict:
    """Latency statistics of ``fn`` in milliseconds (median and p90, never the mean alone).

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called after each run so that asynchronous
    devices are timed to completion.
    """
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    start = time.perf_counter()
    while len(times) < max_runs and (
        len(times) < min_runs or time.perf_counter() - start < min_seconds
    ):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t0) * 1e3)
    arr = np.asarray(times)
    return {
        "median_ms": float(np.median(arr)),
        "p90_ms": float(np.percentile(arr, 90)),
        "mean_ms": float(arr.mean()),
        "min_ms": float(arr.min()),
        "runs": len(arr),
    }


class PeakRSS:
    """Peak resident memory (MB) above the level at entry, sampled by a thread every few ms.

    CPU runtimes allocate outside torch's allocator (oneDNN, ONNX Runtime, OpenVINO), so the
    process RSS is the one figure that sees them all. Used on a short separate pass, never while
    timing, so the sampler cannot disturb the latency figures.
    """

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self.peak_mb = 0.0

    def __enter__(self):
        import threading

        import psutil

        self._proc = psutil.Process()
        self._base = self._proc.memory_info().rss
        self._peak = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.peak_mb = (self._peak - self._base) / 2**20
        return False
