"""How close a backend's class maps are to eager fp32, and whether a reduced precision is close enough.

Every reduced precision (int8, bf16, fp16) is judged on real images only, by one rule: the val mIoU
drop where labelled images exist (what users care about), else the argmax agreement. The limits are
config values (``reduced_precision:`` of ``conf/infer``), shared by ``auto``, the benchmark, realtime
and export.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from rtseg.infer.frames import fit_batch
from rtseg.infer.options import Limits
from rtseg.models.output import logits_to_labels


@dataclass
class Evidence:
    """The real images a backend is calibrated and judged on, normalised at its input size:
    ``images`` for agreement with eager fp32, labelled ``pairs`` for the mIoU drop."""

    images: list[torch.Tensor] = field(default_factory=list)
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    calibration: list[torch.Tensor] | None = None
    num_classes: int | None = None
    ignore_index: int = 255


def reference_labels(net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    ref = net.eval()

    @torch.inference_mode()
    def labels(x):
        return logits_to_labels(ref(x.contiguous()))

    return labels


@torch.inference_mode()
def agreement(backend, reference: Callable, images: Iterable[torch.Tensor]) -> float:
    """Fraction of pixels whose class equals the reference's (eager fp32) on the same inputs."""
    equal = total = 0
    for x in images:
        n = len(x)
        ours = backend.labels(fit_batch(x, backend.batch_size))[:n]
        ref = reference(x)
        equal += int((ours == ref).sum())
        total += ref.numel()
    return equal / max(total, 1)


@torch.inference_mode()
def eval_miou(
    labels_fn, pairs, num_classes: int, batch: int | None, ignore_index: int = 255
) -> float:
    """Dataset mIoU of a labelling function on (image, mask) pairs, both at the input size."""
    from rtseg.training.metrics import SegMetrics

    metric = SegMetrics(num_classes, ignore_index=ignore_index)
    for x, mask in pairs:
        xb = x if batch is None else fit_batch(x, batch)
        metric.update(labels_fn(xb)[: len(x)], mask)
    value = float(metric.compute()["miou"])
    return value if not math.isnan(value) else 0.0


def measure(
    backend,
    net: nn.Module,
    images: Sequence[torch.Tensor],
    pairs: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
    num_classes: int | None = None,
    ignore_index: int = 255,
) -> dict:
    """Agreement on ``images`` and, given labelled ``pairs``, the mIoU drop (points) against fp32."""
    ref = reference_labels(net)
    q = {"agreement": agreement(backend, ref, images), "agreement_images": len(images)}
    if pairs and num_classes:
        fp32 = eval_miou(ref, pairs, num_classes, None, ignore_index)
        ours = eval_miou(backend.labels, pairs, num_classes, backend.batch_size, ignore_index)
        q.update(
            eval_images=len(pairs),
            miou_fp32=fp32,
            miou=ours,
            miou_drop_points=100 * (fp32 - ours),
        )
    return q


def accepts(q: dict, limits: Limits) -> tuple[bool, str]:
    """(accepted, one line saying on what): the mIoU drop where measured, else the agreement."""
    if q.get("miou_drop_points") is not None:
        ok = q["miou_drop_points"] <= limits.max_miou_drop
        return ok, (
            f"val mIoU drop {q['miou_drop_points']:.2f} points {'<=' if ok else '>'} "
            f"{limits.max_miou_drop} on {q['eval_images']} labelled images"
        )
    ok = q["agreement"] >= limits.min_agreement
    return ok, (
        f"argmax agreement {100 * q['agreement']:.2f}% {'>=' if ok else '<'} "
        f"{100 * limits.min_agreement:.2f}% on {q['agreement_images']} images"
    )
