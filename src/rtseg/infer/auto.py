"""``auto``: the fastest backend whose class maps agree with eager fp32, measured and cached per machine."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from rtseg.errors import BackendUnavailable
from rtseg.infer.backends import Backend, fit_batch, random_calibration
from rtseg.infer.registry import create_backend, default_candidates
from rtseg.models.output import logits_to_labels
from rtseg.timing import time_fn
from rtseg.utils import cpu_name

log = logging.getLogger("rtseg.bench")


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
        xb = fit_batch(x, backend.batch_size)
        ours = backend.labels(xb)[:n]
        ref = reference(x)
        equal += int((ours == ref).sum())
        total += ref.numel()
    return equal / max(total, 1)


def reference_labels(net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    ref = net.eval()

    @torch.inference_mode()
    def labels(x):
        return logits_to_labels(ref(x.contiguous()))

    return labels


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
