"""mIoU must be the papers' dataset-level metric: one confusion matrix, ignore label skipped."""

import math

import torch
from torchmetrics.classification import MulticlassJaccardIndex

from rtseg.metrics import SegMetrics, scores_from_confusion


def test_miou_matches_hand_computed_value():
    # 4 classes; class 3 never occurs in target or prediction; 255 is ignored.
    target = torch.tensor([[0, 0, 1, 1, 2, 255]])
    pred = torch.tensor([[0, 1, 1, 1, 2, 0]])
    m = SegMetrics(num_classes=4, ignore_index=255)
    m.update(pred, target)
    out = m.compute()
    # class 0: tp=1, fp=0, fn=1 -> 1/2 ; class 1: tp=2, fp=1, fn=0 -> 2/3 ; class 2: 1/1
    expected = (1 / 2 + 2 / 3 + 1) / 3
    assert math.isclose(out["miou"].item(), expected, rel_tol=1e-6)
    assert math.isnan(out["iou"][3].item())  # absent class is not a zero in the mean
    assert math.isclose(out["acc"].item(), 4 / 5, rel_tol=1e-6)  # ignored pixel not counted
    ref = MulticlassJaccardIndex(num_classes=4, ignore_index=255, average="macro")
    assert math.isclose(ref(pred, target).item(), expected, rel_tol=1e-6)


def test_accumulates_over_batches_not_mean_of_batches():
    m = SegMetrics(num_classes=2)
    m.update(torch.tensor([[0, 0, 0, 0]]), torch.tensor([[0, 0, 0, 1]]))  # batch IoU0=3/4, IoU1=0
    m.update(torch.tensor([[1]]), torch.tensor([[1]]))  # batch IoU1 = 1
    out = m.compute()
    cm = torch.tensor([[3, 0], [1, 1]])
    assert torch.allclose(out["miou"], scores_from_confusion(cm)["miou"])
    assert math.isclose(out["miou"].item(), (3 / 4 + 1 / 2) / 2, rel_tol=1e-6)
