"""Pick the faster CPU training precision and memory format by measuring, not from CPU flags.

CPU flags do not predict speed: one 2-core Xeon with AVX512-BF16 (no AMX) ran bf16 GEMMs at half
its fp32 rate, an AMD EPYC with the same flags ran a U-Net training step twice as fast in bf16.
So at fit start a few forward+backward passes of the actual network at the actual batch shape are
timed for each candidate (interleaved rounds, median per candidate), and the result is cached per
machine, torch version, thread count, network and shape, so reruns pay nothing.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from rtseg.errors import RtsegError
from rtseg.models.output import split_output
from rtseg.utils.machine import cpu_flags, cpu_name
from rtseg.utils.paths import write_atomic

log = logging.getLogger(__name__)

PRECISIONS = ("32-true", "bf16-mixed")
MEMORY_FORMATS = ("contiguous", "channels_last")


def cache_file() -> Path:
    base = (
        os.environ.get("RTSEG_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rtseg"
    )
    return Path(base) / "train_precision.json"


def candidates(precision: str, memory_format: str) -> list[tuple[str, str]]:
    """The (precision, memory format) pairs to time: ``auto`` expands to every option."""
    # any precision other than auto (a Lightning string) is the user's choice, not measured
    precisions = list(PRECISIONS) if precision == "auto" else [precision]
    if memory_format == "auto":
        formats = list(MEMORY_FORMATS)
    elif memory_format in MEMORY_FORMATS:
        formats = [memory_format]
    else:
        raise RtsegError(
            f"memory_format={memory_format!r}: expected auto, {' or '.join(MEMORY_FORMATS)}"
        )
    return [(p, f) for p in precisions for f in formats]


def _step_fn(net: nn.Module, x: torch.Tensor, precision: str):
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if precision == "bf16-mixed"
        else contextlib.nullcontext()
    )

    def step() -> None:
        with autocast:
            out, aux = split_output(net(x))
        sum((o.float().square().mean() for o in [out, *aux]), torch.zeros(())).backward()
        net.zero_grad(set_to_none=True)

    return step


def measure(
    net: nn.Module,
    batch_shape: Sequence[int],
    options: Sequence[tuple[str, str]],
    rounds: int = 3,
) -> dict[tuple[str, str], float]:
    """Median seconds per forward+backward step for each option, timed in interleaved rounds."""
    steps = {}
    for precision, fmt in options:
        clone = copy.deepcopy(net).train()
        x = torch.randn(*batch_shape)
        if fmt == "channels_last":
            clone = clone.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        steps[(precision, fmt)] = _step_fn(clone, x, precision)
        steps[(precision, fmt)]()  # warm-up: oneDNN builds its kernels on the first call
    times: dict[tuple[str, str], list[float]] = {o: [] for o in steps}
    for _ in range(rounds):
        for option, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[option].append(time.perf_counter() - t0)
    return {o: statistics.median(t) for o, t in times.items()}


def cache_key(model_yaml: str, batch_shape: Sequence[int], options) -> str:
    ident = {
        "cpu": cpu_name(),
        "flags": hashlib.sha1(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:12],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": hashlib.sha1(model_yaml.encode()).hexdigest()[:12],
        "shape": list(batch_shape),
        "options": sorted(f"{p}/{f}" for p, f in options),
    }
    return json.dumps(ident, sort_keys=True)


def choose(
    net: nn.Module,
    batch_shape: Sequence[int],
    precision: str = "auto",
    memory_format: str = "auto",
    model_yaml: str = "",
    rounds: int = 3,
    use_cache: bool = True,
) -> dict:
    """The fastest (precision, memory format) for training ``net`` on batches of ``batch_shape``.

    Returns ``{"precision", "memory_format", "step_s": {option: seconds}, "source"}`` where source is
    ``measured``, ``cache`` or ``given`` (nothing to choose).
    """
    options = candidates(precision, memory_format)
    if len(options) == 1:
        return {
            "precision": options[0][0],
            "memory_format": options[0][1],
            "step_s": {},
            "source": "given",
        }
    key = cache_key(model_yaml or repr(net), batch_shape, options)
    path = cache_file()
    cache = {}
    if use_cache and path.is_file():
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError):
            cache = {}
    if use_cache and key in cache:
        hit = dict(cache[key])
        hit["source"] = "cache"
        return hit
    timed = measure(net, batch_shape, options, rounds=rounds)
    best = min(timed, key=timed.get)
    choice = {
        "precision": best[0],
        "memory_format": best[1],
        "step_s": {f"{p}/{f}": round(t, 4) for (p, f), t in timed.items()},
        "source": "measured",
    }
    if use_cache:
        cache[key] = {k: v for k, v in choice.items() if k != "source"}
        try:
            write_atomic(path, json.dumps(cache, indent=1))
        except OSError as e:  # a read-only home must not stop training
            log.warning("cannot cache the precision choice in %s: %s", path, e)
    return choice
