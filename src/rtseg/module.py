"""The LightningModule shared by every network: loss, metrics, optimisation. Nothing model-specific."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MaxMetric

from rtseg.losses import SegLoss
from rtseg.metrics import SegMetrics
from rtseg.models.output import logits_to_labels

SPLITS = ("train", "val", "test")


def to_label_size(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Bilinear upsampling of logits to the label's size (a no-op when they already match)."""
    if output.shape[-2:] == target.shape[-2:]:
        return output
    return F.interpolate(output, size=target.shape[-2:], mode="bilinear", align_corners=False)


class SegmentationModule(L.LightningModule):
    """Trains any ``nn.Module`` that maps a (B, 3, H, W) batch to (B, K, H, W) logits.

    ``meta`` (class names, palette, normalisation, input size, the model config) is stored in the
    checkpoint so that evaluation, benchmarking and realtime can rebuild the network from it alone.
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        ignore_index: int = 255,
        loss: nn.Module | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        class_names: Sequence[str] | None = None,
        meta: dict | None = None,
        train_metrics: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler"])
        self.net = net
        self.binary = num_classes == 1
        self.metric_classes = 2 if self.binary else num_classes
        self.ignore_index = ignore_index
        self.loss_fn = loss if loss is not None else SegLoss(ignore_index=ignore_index)
        self.optimizer_factory = optimizer or (lambda params: torch.optim.AdamW(params, lr=1e-3))
        self.scheduler_factory = scheduler
        self.class_names = list(class_names or [f"class_{i}" for i in range(self.metric_classes)])
        if self.binary and len(self.class_names) != 2:
            self.class_names = ["background", "foreground"]
        self.train_metrics = train_metrics
        # ModuleDict keys may not shadow nn.Module attributes such as "train"
        self.metrics = nn.ModuleDict(
            {f"{s}_scores": SegMetrics(self.metric_classes, ignore_index) for s in SPLITS}
        )
        self.val_miou_best = MaxMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        images, masks = batch
        output = self(images)
        # val/test masks may be at their own (native) size, per image when sizes differ
        pairs = (
            [(output, masks)]
            if torch.is_tensor(masks)
            else [(output[i : i + 1], m[None]) for i, m in enumerate(masks)]
        )
        loss = 0.0
        for out, target in pairs:
            out = to_label_size(out, target)
            loss = loss + self.loss_fn(out, target) * (len(target) / len(images))
            if stage != "train" or self.train_metrics:
                self.metrics[f"{stage}_scores"].update(logits_to_labels(out.detach()), target)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{stage} loss is {loss.item()} at step {self.global_step}: lower module.optimizer.lr"
            )
        self.log(
            f"{stage}/loss",
            loss,
            on_step=stage == "train",
            on_epoch=True,
            prog_bar=True,
            batch_size=len(images),
            sync_dist=stage != "train",
        )
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def _epoch_end(self, stage: str) -> None:
        metric = self.metrics[f"{stage}_scores"]
        if stage == "train" and not self.train_metrics:
            return
        scores = metric.compute()
        metric.reset()
        self.log(f"{stage}/miou", scores["miou"], prog_bar=stage != "train")
        self.log(f"{stage}/acc", scores["acc"])
        for name, value in zip(self.class_names, scores["iou"].tolist(), strict=True):
            if not math.isnan(value):
                self.log(f"{stage}/iou/{name}", value)
        if stage == "val" and not self.trainer.sanity_checking:
            self.val_miou_best(scores["miou"])
            self.log("val/miou_best", self.val_miou_best.compute(), prog_bar=True)
        self.last_confusion = {
            **getattr(self, "last_confusion", {}),
            stage: scores["confusion"].cpu(),
        }
        self.last_scores = getattr(self, "last_scores", {})
        self.last_scores[stage] = {
            "miou": float(scores["miou"]),
            "acc": float(scores["acc"]),
            "iou": dict(zip(self.class_names, scores["iou"].tolist(), strict=True)),
        }

    def on_train_epoch_end(self):
        self._epoch_end("train")

    def on_validation_epoch_end(self):
        self._epoch_end("val")

    def on_test_epoch_end(self):
        self._epoch_end("test")

    def on_validation_epoch_start(self):
        self.metrics["val_scores"].reset()

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=params)
        if self.scheduler_factory is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer, total_steps=max(1, total))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
