"""Facts about the machine and the checkout that run records and measurements carry."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rtseg.utils.paths import CHECKOUT


def git_commit(repo: Path | None = CHECKOUT) -> str | None:
    """The checkout's commit (``-dirty`` with local changes); None for an installed wheel."""
    if repo is None:
        return None
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "-uno"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def int8_saturates() -> bool:
    """An x86 CPU without VNNI (AVX512-VNNI, AVX-VNNI or AMX): its u8 x s8 dot product sums pairs in
    16 bits and saturates, which costs int8 networks accuracy unless weights use 7 bits."""
    flags = cpu_flags()
    x86 = "sse2" in flags
    return x86 and not {"avx512_vnni", "avx_vnni", "amx_int8"} & flags


def has_fast_bf16() -> bool:
    """AMX or AVX512-BF16: where bf16 autocast is a speed-up on CPU rather than a slow-down."""
    flags = cpu_flags()
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's or taskset's share), else
    ``os.cpu_count()``: the most threads worth asking for (``cpus`` in ``conf/ranges.yaml``)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(int(threads))
