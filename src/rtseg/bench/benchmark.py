"""The benchmark itself: one network x batch sizes x thread counts x backends -> one row each.

Every row carries two figures (model-only: tensor in, logits out; end-to-end: uint8 frame in,
class map at frame size out), the achieved GFLOP/s against this machine's GEMM peak of the
same precision, and the argmax agreement with eager fp32 on the same inputs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rtseg.bench.measure import PeakRSS
from rtseg.bench.peak import peak_for
from rtseg.errors import BackendUnavailable
from rtseg.infer.auto import agreement, reference_labels, resolve_backend
from rtseg.infer.backends import Augmented
from rtseg.infer.frames import FramePipeline
from rtseg.infer.options import InferOptions
from rtseg.infer.quality import Evidence, eval_miou
from rtseg.infer.registry import load_exported
from rtseg.models.cost import count_gflops, count_params
from rtseg.timing import latency_summary, time_fn, time_interleaved
from rtseg.utils.images import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger("rtseg.bench")

RESULT_COLUMNS = [
    "model", "input_size", "backend", "tta", "resolved", "precision", "device", "batch", "threads",
    "latency_ms_median", "latency_ms_p90", "fps", "throughput",
    "e2e_latency_ms_median", "e2e_latency_ms_p90", "e2e_fps", "frame_size",
    "peak_mem_mb", "params", "gflops", "achieved_gflops", "peak_gflops", "pct_of_peak",
    "agreement", "agrees", "miou", "miou_eval", "miou_drop", "runs", "note",
]  # fmt: skip


@dataclass
class Knobs:
    """Measurement settings (conf/benchmark.yaml ``measure``, ``e2e``)."""

    warmup: int = 5
    min_runs: int = 20
    min_seconds: float = 2.0
    e2e: bool = True
    memory: bool = True


@dataclass
class Subject:
    """What is measured: a network (None for an exported file whose source is gone) at a size,
    its recorded val mIoU and class count, and the exported file the runtime rows run, if any."""

    name: str
    net: nn.Module | None
    input_size: tuple[int, int]
    miou: float | None = None
    num_classes: int | None = None
    exported: Path | None = None


@dataclass
class Plan:
    """How: the backends x batch sizes x thread counts, timing knobs, how backends are chosen and
    judged (``InferOptions``), the GEMM peaks, the end-to-end frame size and the export folder."""

    backends: Sequence[str]
    batch_sizes: Sequence[int] = (1,)
    threads: Sequence[int | None] = (None,)
    knobs: Knobs = field(default_factory=Knobs)
    options: InferOptions = field(default_factory=InferOptions)
    peaks: dict = field(default_factory=dict)
    frame_size: Sequence[int] | None = None
    workdir: Path | None = None
    # test-time augmentation per row (None: plain); each backend is measured with every one
    tta: Sequence = (None,)


@dataclass
class Inputs:
    """Real images, already normalised at the input size: ``evidence`` for calibration, agreement
    and the reduced-precision mIoU drop; ``eval_pairs`` for the optional mIoU of every row."""

    evidence: Evidence
    eval_pairs: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    source: str = "random"

    @property
    def agreement(self) -> list[torch.Tensor]:
        return self.evidence.images


def benchmark_network(subject: Subject, inputs: Inputs, plan: Plan, progress=None) -> list[dict]:
    """Rows for every (threads, batch, backend); an unavailable backend gives a row with the reason.

    With ``subject.exported`` the onnxruntime*/openvino* rows run that file; ``subject.net`` (its
    source network, when available) is the eager reference and runs the other rows.
    """
    net, size = subject.net, tuple(int(v) for v in subject.input_size)
    frame_size = tuple(int(v) for v in (plan.frame_size or size))
    params = gflops = reference = None
    if net is not None:
        net = net.eval()
        params = count_params(net)
        try:
            gflops = count_gflops(net, size)
        except Exception as e:  # noqa: BLE001 - the network cannot run at this size: say so in one line
            raise BackendUnavailable(
                f"{subject.name} cannot run at {size[0]}x{size[1]}: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
            ) from e
        reference = reference_labels(net)
    rows = []
    for n_threads in plan.threads:
        if n_threads:
            torch.set_num_threads(int(n_threads))
        for batch in plan.batch_sizes:
            for tta, name in ((t, n) for t in plan.tta for n in plan.backends):
                base = {
                    "model": subject.name, "input_size": f"{size[0]}x{size[1]}", "backend": name,
                    "tta": tta.describe() if tta else None,
                    "batch": int(batch), "threads": int(n_threads or torch.get_num_threads()),
                    "params": params, "gflops": gflops, "miou": subject.miou,
                    "frame_size": f"{frame_size[0]}x{frame_size[1]}",
                }  # fmt: skip
                if progress:
                    progress(
                        f"{subject.name} {name} {base['tta'] or ''} b{batch} t{base['threads']}"
                    )
                try:
                    row = _measure_backend(
                        name, subject, int(batch), n_threads, inputs, reference, plan, tta
                    )
                except BackendUnavailable as e:
                    log.info("skipping %s: %s", name, e)
                    row = {"note": f"skipped: {e}"}
                row = {**base, **row}
                if row.get("latency_ms_median") and gflops:
                    peak = peak_for(plan.peaks, row["precision"], row.get("device", "cpu"))
                    row["achieved_gflops"] = gflops * batch / (row["latency_ms_median"] / 1e3)
                    row["peak_gflops"] = peak
                    row["pct_of_peak"] = 100 * row["achieved_gflops"] / peak if peak else None
                rows.append({c: row.get(c) for c in RESULT_COLUMNS})
    return rows


def _backend(name, subject: Subject, batch, threads, inputs: Inputs, plan: Plan):
    """The row's backend: the exported file for its runtimes, else built (or ``auto``) from the net."""
    if subject.exported is not None and name.startswith(("onnxruntime", "openvino")):
        backend = load_exported(subject.exported, name, threads)[0]
        if backend.batch_size != batch:
            raise BackendUnavailable(
                f"{Path(subject.exported).name} was exported for batch {backend.batch_size}"
            )
        return backend
    if subject.net is None:
        raise BackendUnavailable(
            f"{name} needs the network; the exported file's source checkpoint is not available"
        )
    evidence = replace(inputs.evidence, num_classes=subject.num_classes)
    return resolve_backend(
        name, subject.net, subject.input_size, batch, threads, plan.options, evidence, plan.workdir
    )


def _measure_backend(
    name, subject: Subject, batch, threads, inputs: Inputs, reference, plan: Plan, tta=None
) -> dict:
    knobs, size = plan.knobs, tuple(subject.input_size)
    mem = PeakRSS()
    with mem if knobs.memory else contextlib.nullcontext():
        backend = _backend(name, subject, batch, threads, inputs, plan)
        if tta is not None:  # every pass timed: the row's latency is the augmented prediction's
            backend = Augmented(backend, tta)
        x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))
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
        frames = random_frames(batch, plan.frame_size or size)
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
        # an augmented prediction is meant to differ from the plain one: its mIoU tells
        "agrees": None if tta is not None else _agrees(backend, agree, plan.options.agreement_tol),
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
    if inputs.eval_pairs and subject.num_classes:
        ours = eval_miou(backend.labels, inputs.eval_pairs, subject.num_classes, batch)
        row.update(miou_eval=ours)
        if reference:
            fp32 = eval_miou(reference, inputs.eval_pairs, subject.num_classes, None)
            row.update(miou_drop=fp32 - ours)
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
    """fp32 by the agreement tolerance; a reduced precision by the limits it was judged on."""
    q = backend.quality or {}
    if backend.precision != "fp32" and "accepted" in q:
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
    if backend.precision != "fp32" and q.get("reason"):
        bits.append(
            f"{'within' if q['accepted'] else 'outside'} {backend.precision} limits: {q['reason']}"
        )
    return "; ".join(bits) or None


def random_frames(batch: int, frame_hw: Sequence[int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, *frame_hw, 3), dtype=np.uint8)
