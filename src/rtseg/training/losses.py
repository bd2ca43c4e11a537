"""Segmentation losses that honour the ignore label; one class covers multi-class and binary nets."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class SegLoss(nn.Module):
    """Cross-entropy (optionally class-weighted, boundary-weighted, OHEM) plus an optional soft Dice.

    OHEM (online hard example mining, as PSPNet/PP-LiteSeg/PIDNet train on CamVid and Cityscapes)
    keeps only the pixels whose predicted probability of their true class is below
    ``ohem_thresh``, and at least the ``ohem_min_kept`` hardest ones; void pixels never count.

    Boundary weighting (``boundary_weight`` > 0) multiplies the cross-entropy of every pixel within
    ``boundary_width`` pixels of a label edge by ``1 + boundary_weight``, as U-Net's border weights
    and boundary-aware segmentation losses do: thin objects (pole, sign, fence, pedestrian) are
    mostly edge, so they gain weight without a per-class table. The edges are the label map's own
    (void edges included), taken at the resolution the loss sees.

    A single-channel network is the seed article's binary form: its output is tanh in [-1, 1], read
    as probability ``(t + 1) / 2`` and trained with binary cross-entropy on that probability.
    """

    def __init__(
        self,
        ignore_index: int = 255,
        ce_weight: float = 1.0,
        dice_weight: float = 0.0,
        class_weights: Sequence[float] | None = None,
        ohem_thresh: float | None = None,
        ohem_min_kept: int = 0,
        label_smoothing: float = 0.0,
        boundary_weight: float = 0.0,
        boundary_width: int = 2,
    ):
        super().__init__()
        if ohem_thresh is not None and not 0 < ohem_thresh <= 1:
            raise ValueError(
                f"module.loss.ohem_thresh={ohem_thresh}: expected a probability in (0, 1]"
            )
        self.ignore_index = ignore_index
        self.ce_weight, self.dice_weight = ce_weight, dice_weight
        self.ohem_thresh, self.ohem_min_kept = ohem_thresh, int(ohem_min_kept)
        self.label_smoothing = label_smoothing
        if boundary_weight < 0 or int(boundary_width) < 1:
            raise ValueError(
                f"module.loss.boundary_weight={boundary_weight}, boundary_width={boundary_width}:"
                " expected a weight >= 0 and a width >= 1 pixel"
            )
        self.boundary_weight, self.boundary_width = float(boundary_weight), int(boundary_width)
        weights = (
            torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        )
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        output = output.float()
        valid = target != self.ignore_index
        if output.shape[1] == 1:
            prob = ((output[:, 0] + 1) / 2).clamp(1e-6, 1 - 1e-6)
            tgt = (target == 1).float()
            ce = (
                F.binary_cross_entropy(prob[valid], tgt[valid]) if valid.any() else output.sum() * 0
            )
            probs = torch.stack([1 - prob, prob], 1)
        else:
            pixel = F.cross_entropy(
                output,
                target,
                weight=self.class_weights,
                ignore_index=self.ignore_index,
                reduction="none",
                label_smoothing=self.label_smoothing,
            )
            if self.boundary_weight:
                pixel = pixel * (
                    1 + self.boundary_weight * near_label_edge(target, self.boundary_width)
                )
            pixel = pixel[valid]
            if self.ohem_thresh is not None and pixel.numel() > 0:
                pixel = pixel[
                    ohem_keep(output, target, valid, self.ohem_thresh, self.ohem_min_kept)
                ]
            ce = pixel.mean() if pixel.numel() > 0 else output.sum() * 0
            probs = output.softmax(1) if self.dice_weight else None
        loss = self.ce_weight * ce
        if self.dice_weight:
            loss = loss + self.dice_weight * _soft_dice(probs, target, valid)
        return loss


@torch.no_grad()
def near_label_edge(target: torch.Tensor, width: int) -> torch.Tensor:
    """1.0 where a pixel of the (B, H, W) label map has another label within ``width`` pixels
    (a (2 * width + 1)^2 window), else 0.0."""
    labels = target.unsqueeze(1).float()
    size = 2 * width + 1
    high = F.max_pool2d(labels, size, stride=1, padding=width)
    low = -F.max_pool2d(-labels, size, stride=1, padding=width)
    return (high != low).squeeze(1).float()


@torch.no_grad()
def ohem_keep(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, thresh: float, min_kept: int
) -> torch.Tensor:
    """Which valid pixels OHEM trains on: true-class probability below ``thresh``, raised so that
    at least ``min_kept`` (the hardest) are kept. Returns a mask over ``target[valid]``."""
    prob = logits.softmax(1).gather(1, (target * valid).unsqueeze(1)).squeeze(1)[valid]
    threshold = torch.tensor(thresh, dtype=prob.dtype, device=prob.device)
    if 0 < min_kept < prob.numel():
        # the min_kept-th smallest probability: a harder batch keeps more, never fewer
        threshold = torch.maximum(threshold, prob.kthvalue(min_kept).values)
    elif min_kept >= prob.numel():
        threshold = prob.max()
    return prob <= threshold if min_kept else prob < threshold


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    kind: str = "cwd",
    temperature: float = 1.0,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Knowledge distillation between two (B, K, H, W) logit maps, scaled by T^2.

    ``logit``: per-pixel KL(teacher || student) of the class distributions at temperature T
    (Hinton et al.), averaged over ``valid`` pixels. ``cwd``: channel-wise distillation (Shu et
    al., ICCV 2021): each class channel is a distribution over the image's (``valid``) pixels, and
    the KL of those distributions is averaged over channels and images. Zero when student equals
    teacher.
    """
    t = float(temperature)
    student, teacher = student.float() / t, teacher.float() / t
    if kind == "logit":
        kl = (teacher.softmax(1) * (teacher.log_softmax(1) - student.log_softmax(1))).sum(1)
        if valid is not None:
            kl = kl[valid] if valid.any() else kl.sum() * 0
        return kl.mean() * t * t
    if kind == "cwd":
        if valid is not None:  # pixels outside ``valid`` take no mass in either distribution
            off = ~valid.unsqueeze(1)
            student, teacher = student.masked_fill(off, -1e4), teacher.masked_fill(off, -1e4)
        s, te = student.flatten(2), teacher.flatten(2)  # (B, K, HW): a distribution per channel
        kl = (te.softmax(2) * (te.log_softmax(2) - s.log_softmax(2))).sum(2)
        return kl.mean() * t * t
    raise ValueError(f"distillation kind={kind!r}: expected logit or cwd")


def _soft_dice(probs: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean soft Dice loss over the classes present in the batch, ignoring void pixels."""
    k = probs.shape[1]
    onehot = F.one_hot(target.clamp(0, k - 1) * valid, k).permute(0, 3, 1, 2).float()
    mask = valid.unsqueeze(1).float()
    p, t = probs * mask, onehot * mask
    inter = (p * t).sum((0, 2, 3))
    denom = p.sum((0, 2, 3)) + t.sum((0, 2, 3))
    present = t.sum((0, 2, 3)) > 0
    dice = (2 * inter + 1) / (denom + 1)
    return 1 - dice[present].mean() if present.any() else probs.sum() * 0
