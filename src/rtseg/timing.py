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
    return latency_summary(times)


def latency_summary(times_ms) -> dict:
    """Median, p90, mean, min (ms) and count of a list of run times (None when there are none)."""
    arr = np.asarray(times_ms)
    if arr.size == 0:
        return {"median_ms": None, "p90_ms": None, "mean_ms": None, "min_ms": None, "runs": 0}
    return {
        "median_ms": float(np.median(arr)),
        "p90_ms": float(np.percentile(arr, 90)),
        "mean_ms": float(arr.mean()),
        "min_ms": float(arr.min()),
        "runs": len(arr),
    }


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    seconds: float = 4.0,
    min_rounds: int = 5,
    warmup: int = 2,
    syncs: dict[str, Callable[[], None] | None] | None = None,
) -> dict[str, list[float]]:
    """Per-name run times (ms) taken in rounds A B C, B C A, C A B, ... for about ``seconds`` in total.

    Timed one after another, a candidate timed during a burst of other load looks slower than one
    timed after it; interleaved, every candidate sees the same load, so their medians compare.
    The start rotates every round so no candidate always runs right after another.
    """
    syncs = syncs or {}
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    start, rounds = time.perf_counter(), 0
    while rounds < min_rounds or time.perf_counter() - start < seconds:
        for name in names[rounds % len(names) :] + names[: rounds % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            if syncs.get(name):
                syncs[name]()
            times[name].append((time.perf_counter() - t0) * 1e3)
        rounds += 1
    return times
