"""Dataset-level IoU from one accumulated confusion matrix (the metric the papers report)."""

from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassConfusionMatrix


class SegMetrics(MulticlassConfusionMatrix):
    """Accumulates a confusion matrix over a whole split, skipping the ignore label.

    ``compute`` returns mIoU over the classes that occur in prediction or target (a class absent
    from both is left out of the mean, as torchmetrics' macro Jaccard does), per-class IoU (NaN
    for absent classes) and pixel accuracy.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, **kwargs):
        super().__init__(
            num_classes=num_classes, ignore_index=ignore_index, normalize=None, **kwargs
        )

    def compute(self) -> dict[str, torch.Tensor]:
        """Scores plus the raw ``confusion`` matrix (rows: true class), e.g. for run plots."""
        cm = super().compute()
        return {**scores_from_confusion(cm), "confusion": cm}


def scores_from_confusion(cm: torch.Tensor) -> dict[str, torch.Tensor]:
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    present = union > 0
    miou = iou[present].mean() if present.any() else torch.tensor(0.0, dtype=torch.float64)
    acc = tp.sum() / cm.sum().clamp(min=1)
    return {"miou": miou.float(), "iou": iou.float(), "acc": acc.float()}
