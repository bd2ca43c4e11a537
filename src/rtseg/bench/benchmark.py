"""The benchmark itself: one network x batch sizes x thread counts x backends -> one row each.

Every row carries two figures (model-only: tensor in, logits out; end-to-end: uint8 frame in,
class map at frame size out), the achieved GFLOP/s against this machine's GEMM peak of the
same precision, and the argmax agreement with eager fp32 on the same inputs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rtseg.bench.measure import PeakRSS
from rtseg.bench.peak import peak_for
from rtseg.errors import BackendUnavailable
from rtseg.infer.auto import agreement, reference_labels, resolve_backend
from rtseg.infer.frames import FramePipeline
from rtseg.infer.quality import Int8Limits, eval_miou
from rtseg.infer.registry import load_exported
from rtseg.models.cost import count_gflops, count_params
from rtseg.timing import latency_summary, time_fn, time_interleaved
from rtseg.utils.images import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger("rtseg.bench")

RESULT_COLUMNS = [
    "model", "input_size", "backend", "resolved", "precision", "device", "batch", "threads",
    "latency_ms_median", "latency_ms_p90", "fps", "throughput",
    "e2e_latency_ms_median", "e2e_latency_ms_p90", "e2e_fps", "frame_size",
    "peak_mem_mb", "params", "gflops", "achieved_gflops", "peak_gflops", "pct_of_peak",
    "agreement", "agrees", "miou", "miou_eval", "miou_drop", "runs", "note",
]  # fmt: skip


@dataclass
class Knobs:
    """Measurement settings (conf/benchmark.yaml ``measure``, ``agreement``, ``auto``)."""

    warmup: int = 5
    min_runs: int = 20
    min_seconds: float = 2.0
    agreement_tol: float = 0.995
    e2e: bool = True
    memory: bool = True
    auto_candidates: Sequence[str] | None = None
    auto_seconds: float = 4.0
    auto_margin: float = 0.05
    auto_cache_dir: Path | None = None
    int8_limits: Int8Limits = field(default_factory=Int8Limits)


@dataclass
class Inputs:
    """Images for agreement / calibration / optional mIoU, already normalised at the input size."""

    agreement: list[torch.Tensor]
    calibration: list[torch.Tensor] | None = None
    # labelled images for the int8 limits (val mIoU drop); empty: int8 is judged on agreement
    int8_pairs: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    eval_pairs: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    source: str = "random"


def benchmark_network(
    model: str,
    net: nn.Module,
    input_size: Sequence[int],
    backends: Sequence[str],
    inputs: Inputs,
    batch_sizes: Sequence[int] = (1,),
    threads: Sequence[int | None] = (None,),
    frame_size: Sequence[int] | None = None,
    knobs: Knobs | None = None,
    peaks: dict | None = None,
    miou: float | None = None,
    num_classes: int | None = None,
    workdir: Path | None = None,
    progress=None,
    exported: Path | None = None,
) -> list[dict]:
    """Rows for every (threads, batch, backend); an unavailable backend gives a row with the reason.

    ``exported``: an rtseg-export file run by the onnxruntime*/openvino* rows; ``net`` (its source
    network, or None when unavailable) is then the eager reference and the other rows.
    """
    knobs = knobs or Knobs()
    input_size = tuple(int(v) for v in input_size)
    frame_size = tuple(int(v) for v in (frame_size or input_size))
    params = gflops = reference = None
    if net is not None:
        net = net.eval()
        params = count_params(net)
        try:
            gflops = count_gflops(net, input_size)
        except Exception as e:  # noqa: BLE001 - the network cannot run at this size: say so in one line
            raise BackendUnavailable(
                f"{model} cannot run at {input_size[0]}x{input_size[1]}: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
            ) from e
        reference = reference_labels(net)
    rows = []
    for n_threads in threads:
        if n_threads:
            torch.set_num_threads(int(n_threads))
        for batch in batch_sizes:
            for name in backends:
                base = {
                    "model": model, "input_size": f"{input_size[0]}x{input_size[1]}", "backend": name,
                    "batch": int(batch), "threads": int(n_threads or torch.get_num_threads()),
                    "params": params, "gflops": gflops, "miou": miou, "frame_size": f"{frame_size[0]}x{frame_size[1]}",
                }  # fmt: skip
                if progress:
                    progress(f"{model} {name} b{batch} t{base['threads']}")
                try:
                    row = _measure_backend(
                        name,
                        net,
                        input_size,
                        int(batch),
                        n_threads,
                        inputs,
                        reference,
                        frame_size,
                        knobs,
                        workdir,
                        num_classes,
                        exported,
                    )
                except BackendUnavailable as e:
                    log.info("skipping %s: %s", name, e)
                    row = {"note": f"skipped: {e}"}
                row = {**base, **row}
                if row.get("latency_ms_median") and gflops:
                    peak = peak_for(peaks or {}, row["precision"], row.get("device", "cpu"))
                    row["achieved_gflops"] = gflops * batch / (row["latency_ms_median"] / 1e3)
                    row["peak_gflops"] = peak
                    row["pct_of_peak"] = 100 * row["achieved_gflops"] / peak if peak else None
                rows.append({c: row.get(c) for c in RESULT_COLUMNS})
    return rows


def _measure_backend(
    name,
    net,
    input_size,
    batch,
    threads,
    inputs: Inputs,
    reference,
    frame_size,
    knobs: Knobs,
    workdir,
    num_classes,
    exported=None,
) -> dict:
    mem = PeakRSS()
    with mem if knobs.memory else contextlib.nullcontext():
        if exported is not None and name.startswith(("onnxruntime", "openvino")):
            backend = load_exported(exported, name, threads)[0]
            if backend.batch_size != batch:
                raise BackendUnavailable(
                    f"{Path(exported).name} was exported for batch {backend.batch_size}"
                )
        elif net is None:
            raise BackendUnavailable(
                f"{name} needs the network; the exported file's source checkpoint is not available"
            )
        else:
            backend = resolve_backend(
                name, net, input_size, batch, threads,
                candidates=knobs.auto_candidates, calibration=inputs.calibration, workdir=workdir,
                images=inputs.agreement, pairs=inputs.int8_pairs, num_classes=num_classes,
                agreement_tol=knobs.agreement_tol, int8_limits=knobs.int8_limits,
                cache_dir=knobs.auto_cache_dir, seconds=knobs.auto_seconds, margin=knobs.auto_margin,
            )  # fmt: skip
        x = torch.randn(batch, 3, *input_size, generator=torch.Generator().manual_seed(0))
        if backend.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(2):
            backend(x)
    agree = agreement(backend, reference, inputs.agreement) if reference else None
    e2e = None
    if knobs.e2e:
        # model-only and end-to-end in alternating rounds: a burst of load from elsewhere hits
        # both alike, so their difference (the frame pre/post-processing) is not noise
        pipe = FramePipeline(backend, inputs.mean, inputs.std)
        frames = random_frames(batch, frame_size)
        times = time_interleaved(
            {"model": lambda: backend(x), "e2e": lambda: pipe(frames)},
            seconds=2 * knobs.min_seconds,
            min_rounds=knobs.min_runs,
            warmup=knobs.warmup,
            syncs={"model": backend.sync, "e2e": backend.sync},
        )
        stats, e2e = latency_summary(times["model"]), latency_summary(times["e2e"])
    else:
        stats = time_fn(
            lambda: backend(x), knobs.warmup, knobs.min_runs, knobs.min_seconds, sync=backend.sync
        )
    row = {
        "resolved": backend.name if name == "auto" else None,
        "precision": backend.precision,
        "device": backend.device,
        "latency_ms_median": stats["median_ms"],
        "latency_ms_p90": stats["p90_ms"],
        "fps": 1e3 / stats["median_ms"],
        "throughput": batch * 1e3 / stats["median_ms"],
        "runs": stats["runs"],
        "agreement": agree,
        "agrees": _agrees(backend, agree, knobs.agreement_tol),
        "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20
        if backend.device == "cuda"
        else (mem.peak_mb if knobs.memory else None),
        "note": _note(backend),
    }
    if e2e is not None:
        row.update(
            e2e_latency_ms_median=e2e["median_ms"],
            e2e_latency_ms_p90=e2e["p90_ms"],
            e2e_fps=1e3 / e2e["median_ms"],
        )
    if inputs.eval_pairs and num_classes:
        ours = eval_miou(backend.labels, inputs.eval_pairs, num_classes, batch)
        row.update(miou_eval=ours)
        if reference:
            row.update(miou_drop=eval_miou(reference, inputs.eval_pairs, num_classes, None) - ours)
    return row


def peer_network(num_classes: int) -> nn.Module:
    """torchvision's LRASPP-MobileNetV3-Large, untrained (weights do not change latency): the peer a user would run."""
    from rtseg.models.tv import create

    return create("lraspp_mobilenet_v3_large", num_classes).eval()


PEER_MODEL = "peer:torchvision-lraspp-mbv3-large"
PEER_BACKENDS = ("eager", "onnxruntime-default")


def speedups(rows: list[dict]) -> list[str]:
    """For each of our models: its fastest agreeing row against each peer row at the same input/batch/threads."""
    lines = []
    # a multirun measures the peers in every job: compare with the fastest of each (conservative)
    fastest: dict[tuple, dict] = {}
    for r in rows:
        if r["model"] == PEER_MODEL and r.get("fps"):
            key = (r["backend"], r["input_size"], r["batch"], r["threads"])
            if key not in fastest or r["fps"] > fastest[key]["fps"]:
                fastest[key] = r
    peers = list(fastest.values())
    for model in dict.fromkeys(r["model"] for r in rows if r["model"] != PEER_MODEL):
        ours = [r for r in rows if r["model"] == model and r.get("fps") and r.get("agrees")]
        for best in sorted(ours, key=lambda r: -r["fps"])[:1]:
            for p in peers:
                if (p["input_size"], p["batch"], p["threads"]) != (
                    best["input_size"],
                    best["batch"],
                    best["threads"],
                ):
                    continue
                lines.append(
                    f"{model} {best['backend']}{'->' + best['resolved'] if best.get('resolved') else ''} ({best['fps']:.1f} fps) "
                    f"is {best['fps'] / p['fps']:.2f}x torchvision LRASPP-MobileNetV3-L {p['backend']} ({p['fps']:.1f} fps) at {p['input_size']}"
                )
    return lines


def _agrees(backend, agree: float | None, tol: float) -> bool | None:
    """fp32/bf16 by the agreement tolerance; int8 by the int8 limits it was judged on (mIoU drop)."""
    q = backend.quality or {}
    if backend.precision == "int8" and "accepted" in q:
        return bool(q["accepted"])
    return agree >= tol if agree is not None else None


def _note(backend) -> str | None:
    """The backend's note, plus for int8 where it was calibrated and whether it passed the limits."""
    bits = [backend.note] if backend.note else []
    if backend.calibration:
        bits.append(
            f"int8 calibrated on {backend.calibration['images']} {backend.calibration['source']}"
        )
    q = backend.quality or {}
    if backend.precision == "int8" and q.get("reason"):
        bits.append(f"{'within' if q['accepted'] else 'outside'} int8 limits: {q['reason']}")
    return "; ".join(bits) or None


def random_frames(batch: int, frame_hw: Sequence[int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, *frame_hw, 3), dtype=np.uint8)
