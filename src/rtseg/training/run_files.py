"""What a training run leaves in its folder: the run record (``run.json``), the checkpoint it
resumes from (``checkpoints/last.ckpt``) and the run's PNGs."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.loggers import WandbLogger

from rtseg.tracking.csv_logger import ResumableCSVLogger
from rtseg.tracking.runs import RunRecord
from rtseg.training.callbacks import ModelCost, TrainThroughput
from rtseg.utils.paths import atomic_path

log = logging.getLogger(__name__)


class LastCheckpoint(L.Callback):
    """``last.ckpt``: weights and trainer state at the end of every training epoch, which
    ``ckpt_path=auto`` resumes from and which holds the last epoch's weights.

    Lightning >= 2.6 writes ModelCheckpoint's ``save_last`` only at a step where it also saved a
    top-k checkpoint; with ``save_top_k: 1`` last.ckpt was a copy of the best epoch (a CamVid fold
    run ended at epoch 7 with last.ckpt from epoch 3), so a resume went back to the best epoch.
    Written to a temporary name and renamed: a Ctrl-C mid-save leaves the previous file whole.
    """

    def __init__(self, dirpath: str | Path, filename: str = "last.ckpt"):
        self.path = Path(dirpath) / filename

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        # the full state (optimiser, loops, callbacks): a resume needs it; said explicitly, as
        # Lightning otherwise logs a line about its default at every epoch
        if trainer.is_global_zero:
            with atomic_path(self.path) as tmp:
                trainer.save_checkpoint(tmp, weights_only=False)
        else:  # only rank 0 writes; the others take part in the state dump and its barrier
            trainer.save_checkpoint(self.path, weights_only=False)


class RunRecordWriter(L.Callback):
    """Owns the run record: writes ``run.json`` at fit start, after each validation, at the end, and
    marks it failed/interrupted when fit or test raises. ``rtseg-train`` hands it the record it
    filled from the config (``attach``); without one it starts a bare record in the run folder."""

    def __init__(self, record: RunRecord | None = None):
        self.record = record
        self._t0 = time.time()

    @classmethod
    def attach(cls, callbacks: list, record: RunRecord) -> RunRecordWriter:
        """The writer among ``callbacks`` (added when the config has none), now owning ``record``."""
        writer = next((c for c in callbacks if isinstance(c, cls)), None)
        if writer is None:
            writer = cls()
            callbacks.append(writer)
        writer.record = record
        return writer

    def setup(self, trainer, pl_module, stage):
        if stage != "fit" or trainer.global_rank != 0:
            return
        if self.record is None:
            self.record = RunRecord(run_dir=trainer.default_root_dir)
        self._t0 = time.time()
        datamodule = trainer.datamodule
        if hasattr(datamodule, "describe_splits"):  # set up before the callbacks: splits are built
            self.record.val_protocol = datamodule.val_protocol()
            self.record.splits = datamodule.describe_splits()
        self.record.save()

    def on_train_start(self, trainer, pl_module):
        """A fit resumed from a checkpoint starts metrics.csv over from it: the rows the interrupted
        session logged after the checkpoint (the aborted epoch's steps) are dropped, as that epoch
        runs again. (Here, not at fit start: Lightning restores the epoch and step in between.)"""
        if not trainer.ckpt_path or trainer.global_rank != 0:
            return
        for lg in trainer.loggers:
            if isinstance(lg, ResumableCSVLogger):
                dropped = lg.resume_at(trainer.current_epoch, trainer.global_step)
                if dropped:
                    log.info(
                        "metrics.csv: %d row(s) of the interrupted epoch %d dropped (it runs again)",
                        dropped,
                        trainer.current_epoch,
                    )

    def _update(self, trainer, pl_module):
        rec = self.record
        if rec is None:
            return
        for cb in trainer.callbacks:
            if isinstance(cb, ModelCost) and cb.cost:
                rec.params = int(cb.cost["model/params"])
                rec.gflops = cb.cost["model/gflops"]
                rec.latency_ms = cb.cost["model/latency_ms"]
                rec.latency_p90_ms = cb.cost["model/latency_p90_ms"]
                rec.fps = cb.cost["model/fps"]
                rec.latency_backend = "eager-fp32"
            if isinstance(cb, TrainThroughput) and cb.summary:
                rec.train_images_per_s = round(cb.summary["train/images_per_s"], 3)
                rec.data_wait_share = round(cb.summary["train/data_wait_share"], 4)
        ckpt = trainer.checkpoint_callback
        if ckpt is not None:
            if ckpt.best_model_path:
                rec.best_ckpt = str(Path(ckpt.best_model_path).resolve())
            if ckpt.best_model_score is not None:
                rec.val_miou_best = float(ckpt.best_model_score)
        # the file LastCheckpoint writes, wherever it was configured to write it
        for cb in trainer.callbacks:
            if isinstance(cb, LastCheckpoint) and cb.path.is_file():
                rec.last_ckpt = str(cb.path.resolve())
        best = trainer.callback_metrics.get("val/miou_best")
        if best is not None and rec.val_miou_best is None:
            rec.val_miou_best = float(best)
        scores = getattr(pl_module, "last_scores", {}).get("val")
        # the module's running best, not ModelCheckpoint's score: that callback runs after this one,
        # so at the best epoch its score still holds the previous best
        if scores and best is not None and abs(scores["miou"] - float(best)) < 1e-6:
            rec.val_iou = {k: v for k, v in scores["iou"].items() if not np.isnan(v)}
        rec.epochs = min(trainer.current_epoch + 1, trainer.max_epochs or 10**9)
        rec.wall_time_s = time.time() - self._t0 + rec.extra.get("resumed_wall_time_s", 0.0)
        rec.save()

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking and trainer.global_rank == 0:
            self._update(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module):
        if trainer.global_rank == 0:
            self._update(trainer, pl_module)

    def on_exception(self, trainer, pl_module, exception):
        if self.record is not None and trainer.global_rank == 0:
            # Ctrl-C, and SIGTERM (a scheduler's stop: the entrypoint guard's Terminated, a
            # KeyboardInterrupt, or Lightning's own SIGTERMException) are saved and resumed alike;
            # so is a SLURM job's time-out signal, on which submitit requeues the job and exits
            # (sys.exit in its signal handler: a SystemExit raised in the middle of the fit)
            stopped = isinstance(exception, KeyboardInterrupt | SystemExit)
            self.record.status = "interrupted" if stopped else "failed"
            self.record.error = f"{type(exception).__name__}: {exception}"[:500]
            self.record.ended = time.time()
            self.record.save()


class RunPlots(L.Callback):
    """Writes the run's PNGs at fit end (and on interruption) and sends them to W&B / TensorBoard.

    ``confusion_matrix.png`` and ``class_iou.png`` show validation at the ``confusion_epoch``
    (``best``: the epoch of the best val mIoU, the one ``checkpoint=best`` loads; or ``last``);
    ``learning_curves.png`` shows train/val loss and val mIoU per epoch. The values are collected
    here as the run goes (and kept in checkpoints, so a resumed run plots its whole history).
    """

    NAMES = {
        "confusion": "confusion_matrix.png",
        "iou": "class_iou.png",
        "curves": "learning_curves.png",
    }

    def __init__(self, dirpath: str | None = None, confusion_epoch: str = "best"):
        if confusion_epoch not in ("best", "last"):
            raise ValueError(f"confusion_epoch must be best or last, got {confusion_epoch!r}")
        self.dirpath, self.confusion_epoch = dirpath, confusion_epoch
        self.history: list[dict] = []
        self.chosen: dict | None = None  # {"epoch", "miou", "confusion"} of the plotted epoch

    def _row(self, epoch: int) -> dict:
        if not self.history or self.history[-1]["epoch"] != epoch:
            self.history.append({"epoch": epoch})
        return self.history[-1]

    def on_train_epoch_end(self, trainer, pl_module):
        # the module logs train/loss on_epoch (weighted by batch size): read Lightning's mean
        # rather than pulling every step's loss to the host
        loss = trainer.callback_metrics.get("train/loss_epoch")
        if loss is not None:
            self._row(trainer.current_epoch)["train_loss"] = float(loss)

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or trainer.global_rank != 0:
            return
        scores = getattr(pl_module, "last_scores", {}).get("val")
        cm = getattr(pl_module, "last_confusion", {}).get("val")
        if scores is None or cm is None:
            return
        row = self._row(trainer.current_epoch)
        row["val_miou"] = scores["miou"]
        loss = trainer.callback_metrics.get("val/loss")
        if loss is not None:
            row["val_loss"] = float(loss)
        if (
            self.confusion_epoch == "last"
            or self.chosen is None
            or scores["miou"] > self.chosen["miou"]
        ):
            self.chosen = {
                "epoch": trainer.current_epoch,
                "miou": scores["miou"],
                "confusion": cm.tolist(),
            }

    def state_dict(self) -> dict:
        return {"history": self.history, "chosen": self.chosen}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))
        self.chosen = state_dict.get("chosen")

    def write(self, trainer, pl_module) -> dict[str, Path]:
        """Draw the PNGs into ``dirpath`` (default: the trainer's root dir); returns their paths."""
        from rtseg.training import plots

        out = Path(self.dirpath or trainer.default_root_dir)
        names = list(pl_module.class_names)
        written = {}
        if self.chosen is not None:
            cm = np.asarray(self.chosen["confusion"])
            which = f"{self.confusion_epoch} epoch {self.chosen['epoch']}"
            written["confusion"] = plots.confusion_matrix_png(
                cm, names, out / self.NAMES["confusion"],
                f"val confusion matrix, rows normalised ({which})",
            )  # fmt: skip
            written["iou"] = plots.class_iou_png(
                cm, names, out / self.NAMES["iou"], f"val IoU per class ({which})"
            )
        if self.history:
            written["curves"] = plots.learning_curves_png(
                self.history, out / self.NAMES["curves"], f"learning curves: {out.name}"
            )
        self._send(trainer, written)
        return written

    def _send(self, trainer, written: dict[str, Path]) -> None:
        from lightning.pytorch.loggers import TensorBoardLogger

        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                import wandb

                lg.experiment.log(
                    {f"plots/{k}": wandb.Image(str(p)) for k, p in written.items()}
                    | {"trainer/global_step": trainer.global_step}
                )
            elif isinstance(lg, TensorBoardLogger):
                import matplotlib.image as mpimg

                for k, p in written.items():
                    lg.experiment.add_image(
                        f"plots/{k}", mpimg.imread(p)[..., :3], trainer.global_step,
                        dataformats="HWC",
                    )  # fmt: skip

    def on_fit_end(self, trainer, pl_module):
        if trainer.global_rank == 0:
            self.write(trainer, pl_module)

    def on_exception(self, trainer, pl_module, exception):
        if trainer.global_rank != 0:
            return
        try:  # an interrupted run still gets the plots of the epochs it finished
            self.write(trainer, pl_module)
        except Exception as e:  # noqa: BLE001 - never hide the original exception
            log.warning("run plots not written: %s", e)
