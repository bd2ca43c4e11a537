"""``auto``: the fastest backend whose class maps agree with eager fp32, measured as artifacts and cached.

How it chooses, and why:
- every candidate is built (int8 ones from real calibration images only) and judged on real images:
  fp32 by argmax agreement >= ``agreement_tol``; every reduced precision (int8, bf16, fp16) by
  ``options.limits`` (val mIoU drop where labelled images are given, else agreement);
- the accepted ones are timed in interleaved rounds (A B C, B C A, ...) for ``seconds`` in total, so
  a burst of load from another process hits all of them alike; each gets the median of its runs;
- among those whose median is within ``margin`` (relative, default 5%) of the fastest, the simplest
  (``registry.SIMPLICITY``) wins: a difference that small is inside this kind of machine's noise,
  and the simpler backend has fewer ways to go wrong. A relative margin rather than overlapping
  IQRs because the goal is stated that way (within 5% of the fastest), and on a busy 2-core VM
  the IQRs of a few dozen runs overlap for nearly everything, which would always pick eager.

The choice is cached as an artifact (``rtseg.infer.artifacts``): realtime runs that very file.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rtseg.errors import BackendUnavailable
from rtseg.infer.artifacts import (
    ArtifactCache,
    model_key,
    record_int8,
    runtime_versions,
    weights_hash,
)
from rtseg.infer.backends import Backend
from rtseg.infer.options import InferOptions
from rtseg.infer.quality import (
    Evidence,
    accepts,
    accepts_by_card,
    agreement,
    measure,
    reference_labels,
)
from rtseg.infer.registry import create_backend, default_candidates, from_file, simplicity
from rtseg.timing import time_interleaved
from rtseg.utils.machine import cpu_name, int8_saturates
from rtseg.utils.paths import file_sha256

__all__ = ["agreement", "reference_labels", "resolve_backend", "judge", "choose"]

log = logging.getLogger("rtseg.bench")


def judge(backend: Backend, net: nn.Module, evidence: Evidence, options: InferOptions) -> dict:
    """Quality against eager fp32 and whether it is accepted; int8 files record it in their sidecar.

    One rule for every reduced precision: the val mIoU drop where labelled pairs are given, else
    the argmax agreement (``options.limits``); fp32 by agreement >= ``options.agreement_tol``.
    """
    reduced = backend.precision != "fp32"
    images = evidence.images or [x for x, _ in evidence.pairs]
    pairs = evidence.pairs if reduced else ()
    by_card = None
    if backend.precision == "int8" and not pairs and evidence.card and evidence.recheck:
        # no labels here: a shipped model's card, re-checked on this runtime (quality.accepts_by_card)
        q = measure(backend, net, evidence.recheck)
        key = f"{backend.name}|{7 if int8_saturates() else 8}-bit"
        by_card = accepts_by_card(q, evidence.card, key, options.limits)
    else:
        q = measure(backend, net, images, pairs, evidence.num_classes, evidence.ignore_index)
    if by_card is not None:
        q["accepted"], q["reason"] = by_card
    elif reduced:
        q["accepted"], q["reason"] = accepts(q, options.limits)
    else:
        q["accepted"] = q["agreement"] >= options.agreement_tol
        tol = options.agreement_tol
        q["reason"] = f"argmax agreement {100 * q['agreement']:.2f}% vs {100 * tol:.2f}%"
    if backend.precision == "int8":
        q["calibration"] = backend.calibration
        record_int8(backend, q)
    backend.quality = q
    return q


def choose(medians: dict[str, float], margin: float) -> tuple[str, str]:
    """The simplest name whose median is within ``margin`` of the fastest, and a line saying why."""
    fastest = min(medians, key=medians.get)
    near = [n for n, ms in medians.items() if ms <= medians[fastest] * (1 + margin)]
    chosen = min(near, key=simplicity)
    rest = sorted(ms for n, ms in medians.items() if n not in near)
    lead = f"; next outside the margin {rest[0] / medians[chosen]:.2f}x slower" if rest else ""
    if chosen == fastest:
        why = f"{chosen} fastest at {medians[chosen]:.2f} ms"
    else:
        why = (
            f"{chosen} ({medians[chosen]:.2f} ms) within {100 * margin:.0f}% of the fastest "
            f"{fastest} ({medians[fastest]:.2f} ms): the simpler wins"
        )
    return chosen, why + lead


def _one_run_measures(resolve):
    """``auto`` holds the cache's lock from lookup to store: concurrent runs measure once and share."""

    @functools.wraps(resolve)
    def locked(name, *args, **kwargs):
        if name != "auto":
            return resolve(name, *args, **kwargs)
        options = kwargs.get("options") or (args[4] if len(args) > 4 else None) or InferOptions()
        with ArtifactCache(options.cache_dir).locked():
            return resolve(name, *args, **kwargs)

    return locked


@_one_run_measures
def resolve_backend(
    name: str,
    net: nn.Module,
    input_size,
    batch_size: int = 1,
    threads: int | None = None,
    options: InferOptions | None = None,
    evidence: Evidence | None = None,
    workdir: Path | None = None,
    cache_key: str | None = None,
) -> Backend:
    """A named backend, or for ``auto`` the cached/measured artifact (see the module docstring).

    ``evidence``: real images for agreement, labelled pairs for the mIoU drop, calibration images
    for int8. A named reduced precision is judged too (``backend.quality``) but not refused here:
    the caller decides. ``backend.auto`` holds the cache entry (artifact, hashes, trials, margin).
    """
    options = options or InferOptions()
    evidence = evidence or Evidence()
    calibration = evidence.calibration
    if name != "auto":
        backend = create_backend(name, net, input_size, batch_size, threads, calibration, workdir)
        if backend.precision != "fp32" and (evidence.images or evidence.pairs):
            judge(backend, net, evidence, options)
        return backend
    cache, key, weights, threads = _cache_slot(
        net, input_size, batch_size, threads, cache_key, options.cache_dir
    )
    entry, why = cache.lookup(key, weights, _expected(net, input_size, batch_size))
    if entry is None:  # a damaged cached file: exported again when that gives the very same file
        entry = cache.repair(
            key,
            weights,
            lambda cand, wd: create_backend(
                cand, net, input_size, batch_size, threads, calibration, wd
            ),
        )
    if entry is not None:
        try:
            backend = _from_entry(entry, net, input_size, batch_size, threads)
            backend.note = f"auto: cached artifact {entry['backend']} ({entry['why']})"
            return backend
        except BackendUnavailable as e:
            why = f"cached {entry['backend']} no longer builds ({e})"
    if not options.measure:
        log.warning(
            "backend=auto: nothing measured for this model at %dx%d with threads=%d on this machine "
            "yet, and this run does not wait the minutes measuring takes (a live source): running "
            "eager (fp32, the reference) now. Measure once on a file (live=false) or with "
            "rtseg-bench backends=[auto]; later runs use that choice",
            *input_size,
            threads,
        )
        backend = create_backend("eager", net, input_size, batch_size, threads)
        backend.note = "auto: nothing measured here yet; a live source does not wait: eager"
        return backend
    log.info("auto: measuring candidates (%s)", why)

    if not (evidence.images or evidence.pairs):
        g = torch.Generator().manual_seed(1)
        noise = [torch.randn(1, 3, *input_size, generator=g) for _ in range(2)]
        evidence = replace(evidence, images=noise)
        log.warning("auto: no real images given: agreement judged on random input")
    trials, kept = [], {}
    with tempfile.TemporaryDirectory(prefix="rtseg-auto-") as tmp:
        for cand in options.candidates or default_candidates():
            try:
                backend = create_backend(
                    cand, net, input_size, batch_size, threads, calibration, Path(tmp)
                )
            except BackendUnavailable as e:
                trials.append({"backend": cand, "skipped": str(e)})
                continue
            q = judge(backend, net, evidence, options)
            trials.append({"backend": cand, **q})
            log.info(
                "auto: %s %s (%s)", cand, "accepted" if q["accepted"] else "rejected", q["reason"]
            )
            if q["accepted"]:
                kept[cand] = backend
        if not kept:
            raise BackendUnavailable(
                f"auto: no candidate agrees with eager fp32 ({[(t['backend'], t.get('reason') or t.get('skipped')) for t in trials]})"
            )
        x = torch.randn(batch_size, 3, *input_size, generator=torch.Generator().manual_seed(0))
        times = time_interleaved(
            {n: (lambda b=b: b(x)) for n, b in kept.items()},
            seconds=options.seconds,
            min_rounds=5,
            syncs={n: b.sync for n, b in kept.items()},
        )
        medians = {n: float(np.median(t)) for n, t in times.items()}
        for t in trials:
            if t["backend"] in times:
                ms = np.asarray(times[t["backend"]])
                t.update(
                    median_ms=medians[t["backend"]],
                    p25_ms=float(np.percentile(ms, 25)),
                    p75_ms=float(np.percentile(ms, 75)),
                    runs=len(ms),
                )
        margin = options.margin
        chosen, why = choose(medians, margin)
        log.info("auto: %s (margin %.0f%%, %d rounds)", why, 100 * margin, len(times[chosen]))
        entry = cache.store(
            key,
            {
                "backend": chosen,
                "why": why,
                "margin": margin,
                "fastest": min(medians, key=medians.get),
                "weights_hash": weights,
                "versions": runtime_versions(),
                "cpu": cpu_name(),
                "threads": threads,
                **_expected(net, input_size, batch_size),
                "trials": trials,
            },
            kept[chosen],
        )
        # an in-process backend (torch, compiled) is the one just measured: no second build
        backend = kept[chosen] if entry.get("artifact") is None else None
        if backend is not None:
            backend.auto = entry
        kept.clear()
    if backend is None:
        backend = _from_entry(entry, net, input_size, batch_size, threads)
    backend.note = f"auto: {why}"
    return backend


def _cache_slot(net, input_size, batch_size, threads, cache_key=None, cache_dir=None):
    """(cache, key, weights hash, threads) of a network and shape: where auto's choice is kept."""
    threads = int(threads or torch.get_num_threads())  # fixed: what is measured is what runs
    cache = ArtifactCache(cache_dir)
    weights = weights_hash(net)
    key = cache.key(cache_key or model_key(net, weights), input_size, batch_size, threads)
    return cache, key, weights, threads


def _expected(net, input_size, batch_size) -> dict:
    """What a cached artifact's sidecar must record to be run for ``net`` at this shape."""
    classes = getattr(net, "num_classes", None)
    return {
        "input_size": [int(v) for v in input_size],
        "batch_size": int(batch_size),
        "num_classes": int(classes) if isinstance(classes, int) else None,
    }


def has_choice(net, input_size, batch_size=1, threads=None, cache_dir=None) -> bool:
    """Whether ``auto`` already measured this network and shape here (its file is checked, and
    repaired if need be, when it is used): nothing is measured to answer."""
    cache, key, weights, _ = _cache_slot(net, input_size, batch_size, threads, None, cache_dir)
    entry = cache.entry(key)
    return bool(entry) and entry.get("weights_hash") == weights


def _from_entry(entry: dict, net, input_size, batch_size: int, threads: int) -> Backend:
    """The cached artifact as a backend: its very file, or the weights for in-process torch."""
    name = entry["backend"]
    if entry.get("artifact"):
        path = Path(entry["artifact"])
        if not path.is_file() or file_sha256(path) != entry.get("sha256"):  # checked at every use
            raise BackendUnavailable(f"artifact {path} is not the file auto measured (sha256)")
        backend = from_file(name, path, input_size, batch_size, threads)
        trial = next((t for t in entry.get("trials", []) if t.get("backend") == name), {})
        backend.calibration = trial.get("calibration")
        backend.quality = {k: v for k, v in trial.items() if k != "backend"}
    else:
        backend = create_backend(name, net, input_size, batch_size, threads)
    backend.auto = entry
    return backend
