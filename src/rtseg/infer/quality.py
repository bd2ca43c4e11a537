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
    #: a shipped model's int8 evidence (its card) and the images it is re-checked on here
    card: dict | None = None
    recheck: list[torch.Tensor] = field(default_factory=list)


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
    from rtseg.metrics import SegMetrics

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


#: how far this runtime's agreement on the re-check scenes may fall below the card's
RECHECK_TOL = 0.01


def accepts_by_card(q: dict, card: dict, key: str, limits: Limits) -> tuple[bool, str] | None:
    """A shipped model's int8 judged by its card: the val mIoU drop measured at ship time for this
    runtime and weight recipe (``key``), trusted when this runtime's agreement on the re-check
    scenes (``q``) is within ``RECHECK_TOL`` of the card's. None when the card has no such entry."""
    entry = (card.get("quality") or {}).get(key)
    if entry is None:
        return None
    drop, card_agree = entry["miou_drop_points"], entry["recheck_agreement"]
    here = q["agreement"]
    fits = drop <= limits.max_miou_drop
    same = here >= card_agree - RECHECK_TOL
    reason = (
        f"model card: val mIoU drop {drop:.2f} points {'<=' if fits else '>'} "
        f"{limits.max_miou_drop} ({card.get('eval')}, {key}); re-checked here: agreement "
        f"{100 * here:.2f}% on {q['agreement_images']} built-in scenes, card {100 * card_agree:.2f}%"
        + (
            ""
            if same
            else f": more than {100 * RECHECK_TOL:.0f} point below, the card does not hold"
        )
    )
    q.update(miou_drop_points_card=drop, evidence="model card")
    return fits and same, reason
