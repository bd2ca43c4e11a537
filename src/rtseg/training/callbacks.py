"""Lightning callbacks that shape or measure training: model cost at fit start, throughput,
prediction overlays for W&B, EMA of the weights. What a run leaves in its folder: ``run_files``."""

from __future__ import annotations

import logging
import time

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.loggers import WandbLogger

from rtseg.models.cost import count_gflops, count_params, eager_latency_ms
from rtseg.models.output import logits_to_labels
from rtseg.utils.images import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)


class ModelCost(L.Callback):
    """Logs params, GFLOPs and eager latency at fit start, so every run carries its speed."""

    def __init__(
        self, input_size=None, latency_min_runs: int = 5, latency_min_seconds: float = 0.5
    ):
        self.input_size = list(input_size) if input_size is not None else None
        self.min_runs, self.min_seconds = latency_min_runs, latency_min_seconds
        self.cost: dict = {}

    def on_fit_start(self, trainer, pl_module):
        if trainer.global_rank != 0 or self.cost:
            return
        size = self.input_size or pl_module.hparams.get("meta", {}).get("input_size") or [256, 256]
        net = pl_module.net
        with torch.inference_mode():
            gflops = count_gflops(net, size)
            lat = eager_latency_ms(net, size, self.min_runs, self.min_seconds)
        self.cost = {
            "model/params": float(count_params(net)),
            "model/gflops": gflops,
            "model/latency_ms": lat["median_ms"],
            "model/latency_p90_ms": lat["p90_ms"],
            "model/fps": 1000.0 / lat["median_ms"],
        }
        log.info(
            "model cost at %sx%s: %.2fM params, %.2f GFLOPs, eager fp32 latency %.1f ms (%.1f fps, %d threads)",
            size[0],
            size[1],
            count_params(net) / 1e6,
            gflops,
            lat["median_ms"],
            1000 / lat["median_ms"],
            torch.get_num_threads(),
        )
        resumed = bool(trainer.ckpt_path)  # the step is restored after fit start: not yet here
        for logger in trainer.loggers:
            if not resumed:  # a resumed run's first session logged the row (kept in metrics.csv)
                logger.log_metrics(self.cost, step=0)
            if isinstance(logger, WandbLogger):
                logger.experiment.summary.update(self.cost)


class TrainThroughput(L.Callback):
    """Training images per second and the share of step time spent waiting for data, per epoch.

    The wait is the gap between the end of one training batch and the start of the next: the
    DataLoader's fetch (plus Lightning's bookkeeping). A share above a few percent means the data
    pipeline, not the network, sets the pace.
    """

    def __init__(self, skip_first: int = 2):
        self.skip_first = skip_first
        self.summary: dict = {}
        self._reset()

    def _reset(self):
        self._images = 0
        self._busy = self._wait = 0.0
        self._batch_start = self._last_end = None
        self._seen = 0

    def on_train_epoch_start(self, trainer, pl_module):
        self._reset()
        self._last_end = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        now = time.perf_counter()
        if self._seen >= self.skip_first and self._last_end is not None:
            self._wait += now - self._last_end
        self._batch_start = now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.perf_counter()
        if self._seen >= self.skip_first and self._batch_start is not None:
            self._busy += now - self._batch_start
            self._images += int(batch[0].shape[0])
        self._seen += 1
        self._last_end = now

    def on_train_epoch_end(self, trainer, pl_module):
        total = self._busy + self._wait
        if not self._images or total <= 0:
            return
        self.summary = {
            "train/images_per_s": self._images / total,
            "train/data_wait_share": self._wait / total,
        }
        pl_module.log_dict(self.summary, on_epoch=True, on_step=False)


class EMA(WeightAveraging):
    """An exponential moving average of the weights (BN statistics included), on Lightning's
    ``WeightAveraging``: validation, checkpoints and the weights left at the end are the average.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates (as timm's and
    YOLO's model EMA do), so the average covers roughly the last tenth of the steps taken: the
    random-ish early weights fade out in a 20-epoch run as in a 200-epoch one.
    """

    def __init__(self, decay: float = 0.9995):
        if not 0 < decay < 1:
            raise ValueError(f"callbacks.ema.decay={decay}: expected a value in (0, 1)")
        self.decay = decay
        super().__init__(use_buffers=True, avg_fn=self._average)

    def _average(self, averaged: torch.Tensor, current: torch.Tensor, num_averaged) -> torch.Tensor:
        n = float(num_averaged)
        d = min(self.decay, (1 + n) / (10 + n))
        return averaged * d + current * (1 - d)


class LogPredictions(L.Callback):
    """A few validation overlays per epoch to W&B: image with prediction and ground-truth masks."""

    def __init__(self, num_images: int = 4):
        self.num_images = num_images

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        if batch_idx != 0 or trainer.sanity_checking or trainer.global_rank != 0:
            return
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers or self.num_images <= 0:
            return
        import wandb

        images, masks = batch
        n = min(self.num_images, len(images))
        with torch.no_grad():
            preds = logits_to_labels(pl_module(images[:n]))
        meta = pl_module.hparams.get("meta") or {}
        mean = torch.tensor(meta.get("mean", IMAGENET_MEAN)).view(3, 1, 1)
        std = torch.tensor(meta.get("std", IMAGENET_STD)).view(3, 1, 1)
        labels = dict(enumerate(pl_module.class_names))
        ignore = pl_module.ignore_index
        labels[ignore] = "void"
        shown = []
        for img, pred, gt in zip(images[:n].cpu(), preds.cpu(), masks[:n], strict=True):
            if gt.shape != pred.shape:  # a native-size label: shown at the input size
                gt = torch.nn.functional.interpolate(gt[None, None].float(), size=pred.shape)
                gt = gt[0, 0].long()
            gt = gt.cpu()
            rgb = ((img.float() * std + mean).clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
            shown.append(
                wandb.Image(
                    rgb,
                    masks={
                        "prediction": {
                            "mask_data": pred.numpy().astype(np.uint8),
                            "class_labels": labels,
                        },
                        "ground_truth": {
                            "mask_data": gt.numpy().astype(np.uint8),
                            "class_labels": labels,
                        },
                    },
                )
            )
        for lg in loggers:
            lg.experiment.log(
                {"val/predictions": shown, "trainer/global_step": trainer.global_step}
            )
