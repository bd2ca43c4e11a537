"""The LightningModule shared by every network: loss, metrics, optimisation. Nothing model-specific."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MaxMetric

from rtseg.metrics import SegMetrics
from rtseg.models.output import logits_to_labels, split_output
from rtseg.training.distill import Distillation
from rtseg.training.losses import SegLoss
from rtseg.training.teacher_targets import TeacherTargets

SPLITS = ("train", "val", "test")


def reference_precision(device: torch.device):
    """Scores are taken in fp32 whatever the training format: under bf16-mixed autocast a CamVid fold
    model read 41.34 val mIoU in training and 40.72 in rtseg-eval (fp32), so checkpoint selection
    and the logged curve measured another network than the one users score. A ``*-true`` half
    precision keeps its half weights: there is no fp32 network to score."""
    return torch.autocast(device.type, enabled=False)


def to_label_size(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Bilinear upsampling of logits to the label's size (a no-op when they already match)."""
    if output.shape[-2:] == target.shape[-2:]:
        return output
    return F.interpolate(output, size=target.shape[-2:], mode="bilinear", align_corners=False)


class SegmentationModule(L.LightningModule):
    """Trains any ``nn.Module`` that maps a (B, 3, H, W) batch to (B, K, H, W) logits.

    ``meta`` (class names, palette, normalisation, input size, the model config) is stored in the
    checkpoint so that evaluation, benchmarking and realtime can rebuild the network from it alone.

    Training-only terms: a network with deep supervision returns ``(logits, aux logits)`` while
    training, each aux head adding ``aux_weight`` x the loss; ``distill`` adds a teacher's
    distillation loss computed in the step; ``teacher_targets`` learns from a teacher's stored
    probabilities, which training batches then carry as a third item. None of them changes what is validated, checkpointed as the network or exported.
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
        aux_weight: float = 1.0,
        distill: Distillation | None = None,
        teacher_targets: TeacherTargets | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(
            ignore=["net", "loss", "optimizer", "scheduler", "distill", "teacher_targets"]
        )
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
        # per-image group names (e.g. video sequences) of a split scored by rtseg-eval
        self.groups: dict[str, list[str]] = {}
        self.group_metrics = nn.ModuleDict()
        self._seen = {s: 0 for s in SPLITS}
        self.aux_weight = float(aux_weight)
        self.distill = distill
        self.teacher_targets = teacher_targets
        if distill is not None:
            norm = meta or {}
            distill.bind(num_classes, norm.get("mean", (0.0,) * 3), norm.get("std", (1.0,) * 3))

    def score_groups(self, stage: str, groups: list[str]) -> None:
        """Also score ``stage`` per group: ``groups[i]`` names the group of the split's i-th image.

        Needs an unshuffled loader on one device (rtseg-eval); the whole-split score is unchanged.
        """
        self.groups[stage] = list(groups)
        for g in sorted(set(groups)):
            self.group_metrics[f"{stage}|{g}"] = SegMetrics(self.metric_classes, self.ignore_index)

    def _update_groups(self, stage: str, preds: torch.Tensor, target: torch.Tensor) -> None:
        for p, t in zip(preds, target, strict=True):
            group = self.groups[stage][self._seen[stage]]
            self.group_metrics[f"{stage}|{group}"].update(p[None], t[None])
            self._seen[stage] += 1

    def on_fit_start(self):
        if self.distill is not None:
            self.distill.match(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        images, masks, *soft = batch
        output, aux = split_output(self(images))
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
                preds = logits_to_labels(out.detach())
                self.metrics[f"{stage}_scores"].update(preds, target)
                if stage in self.groups:
                    self._update_groups(stage, preds, target)
        if stage == "train":
            loss = loss + self._training_terms(images, masks, output, aux, *soft)
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

    def _training_terms(self, images, masks, output, aux, soft=None) -> torch.Tensor | float:
        """Deep-supervision and distillation losses (training masks are one stacked tensor)."""
        extra = 0.0
        if aux:
            aux_loss = sum(self.loss_fn(to_label_size(a, masks), masks) for a in aux)
            self.log(
                "train/loss_aux", aux_loss, on_step=False, on_epoch=True, batch_size=len(images)
            )
            extra = extra + self.aux_weight * aux_loss
        if self.distill is not None:
            kd = self.distill(output, images, valid=masks != self.ignore_index)
            self.log("train/loss_kd", kd, on_step=False, on_epoch=True, batch_size=len(images))
            extra = extra + kd
        if soft is not None and self.teacher_targets is not None:
            kd = self.teacher_targets.loss(
                to_label_size(output, masks), soft, valid=masks != self.ignore_index, labels=masks
            )
            self.log("train/loss_targets", kd, on_step=False, on_epoch=True, batch_size=len(images))
            extra = extra + kd
        return extra

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        with reference_precision(self.device):
            self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        with reference_precision(self.device):
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
        self.last_scores[stage] = self._summary(scores)
        if stage in self.groups:
            self.last_scores[stage]["groups"] = {}
            for g in sorted(set(self.groups[stage])):
                metric = self.group_metrics[f"{stage}|{g}"]
                entry = self._summary(metric.compute())
                entry["images"] = self.groups[stage].count(g)
                self.last_scores[stage]["groups"][g] = entry
                metric.reset()
            self._seen[stage] = 0

    def _summary(self, scores: dict) -> dict:
        return {
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
