"""Segmentation losses that honour the ignore label; one class covers multi-class and binary nets."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class SegLoss(nn.Module):
    """Cross-entropy (optionally class-weighted or OHEM) plus an optional soft Dice term.

    A single-channel network is the seed article's binary form: its output is tanh in [-1, 1], read
    as probability ``(t + 1) / 2`` and trained with binary cross-entropy on that probability.
    """

    def __init__(
        self,
        ignore_index: int = 255,
        ce_weight: float = 1.0,
        dice_weight: float = 0.0,
        class_weights: Sequence[float] | None = None,
        ohem_keep: float | None = None,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        self.ignore_index = ignore_index
        self.ce_weight, self.dice_weight = ce_weight, dice_weight
        self.ohem_keep = ohem_keep
        self.label_smoothing = label_smoothing
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
            )[valid]
            if self.ohem_keep is not None and pixel.numel() > 0:
                k = max(1, int(pixel.numel() * self.ohem_keep))
                pixel = pixel.topk(k).values
            ce = pixel.mean() if pixel.numel() > 0 else output.sum() * 0
            probs = output.softmax(1) if self.dice_weight else None
        loss = self.ce_weight * ce
        if self.dice_weight:
            loss = loss + self.dice_weight * _soft_dice(probs, target, valid)
        return loss


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
