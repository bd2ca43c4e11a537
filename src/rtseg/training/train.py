"""rtseg-train: compose data + network + module from conf/train.yaml, fit, then test the best checkpoint."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from rtseg.checkpoints.reading import check_matches, read_checkpoint
from rtseg.tracking.runs import RunRecord
from rtseg.tracking.wandb import finish_wandb, flat_config, prepare_wandb_logger
from rtseg.training.precision import choose
from rtseg.training.run_files import RunRecordWriter
from rtseg.training.teacher_targets import TeacherTargets
from rtseg.training.warm_start import warm_start
from rtseg.utils.cli import (
    Interrupted,
    command_line_checked,
    interrupt_signal,
    user_errors_as_one_line,
)
from rtseg.utils.config import hydra_context, instantiate_all, output_dir, to_container
from rtseg.utils.machine import git_commit, set_threads
from rtseg.utils.paths import CONF_DIR, atomic_path, owned_folder

log = logging.getLogger("rtseg.training.train")


def build(cfg: DictConfig):
    """Datamodule, network and LightningModule, wired so that data follows the network's
    normalisation and, with ``teacher_targets``, carries the teacher's stored probabilities (built
    here first where they are missing)."""
    datamodule = instantiate(cfg.data, _convert_="all")
    net = instantiate(cfg.model)
    norm = getattr(net, "input_normalization", None)
    if norm is not None:
        log.info(
            "network %s expects mean=%s std=%s: data normalisation set accordingly",
            type(net).__name__,
            *norm,
        )
        datamodule.set_normalization(*norm)
    # stored as YAML text: a dict with _target_ would be instantiated by Hydra along with the module
    meta = {
        **datamodule.meta(),
        "model_yaml": OmegaConf.to_yaml(cfg.model, resolve=True),
        # lets rtseg-eval checkpoint=X rebuild the data without data=... on the command line
        "data_yaml": OmegaConf.to_yaml(cfg.data, resolve=True),
    }
    targets = teacher_targets(cfg, datamodule)
    module = instantiate(cfg.module, net=net, meta=meta, teacher_targets=targets, _convert_="all")
    return datamodule, net, module


def teacher_targets(cfg: DictConfig, datamodule) -> TeacherTargets | None:
    """The configured ``teacher_targets`` with every training image's entry built and checked,
    attached to the training split; None when off."""
    if not cfg.get("teacher_targets"):
        return None
    targets: TeacherTargets = instantiate(cfg.teacher_targets)
    soft = targets.prepare(datamodule.dataset("train"), datamodule.num_classes)
    datamodule.use_soft_targets(soft)
    return targets


def choose_format(cfg: DictConfig, net, meta_yaml: str) -> dict:
    """Resolve ``trainer.precision=auto`` / ``memory_format=auto`` by timing the real network."""
    import torch

    precision = str(cfg.trainer.get("precision", "32-true"))
    memory_format = str(cfg.get("memory_format") or "contiguous")
    if str(cfg.trainer.get("accelerator", "cpu")) not in ("cpu",) and precision == "auto":
        # on a GPU the answer does not need a probe: bf16 where the card has it, else fp16
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        precision = "bf16-mixed" if bf16 else "16-mixed"
        memory_format = "contiguous" if memory_format == "auto" else memory_format
    size = list(cfg.data.get("crop_size") or cfg.data.input_size)
    shape = (int(cfg.data.batch_size), 3, *size)
    fmt = choose(net, shape, precision, memory_format, model_yaml=meta_yaml)
    if fmt["source"] != "given":
        log.info(
            "training format: %s, %s (%s; seconds per step at batch %s: %s)",
            fmt["precision"],
            fmt["memory_format"],
            fmt["source"],
            "x".join(map(str, shape)),
            fmt["step_s"],
        )
    if fmt["memory_format"] == "channels_last":
        # weights in channels_last make every conv emit channels_last, inputs included
        net.to(memory_format=torch.channels_last)
    return fmt


def model_name(cfg: DictConfig, ctx: dict) -> str:
    """The model config's name, or the architecture when the run overrides ``model.arch`` (unet -> linknet)."""
    name = ctx["choices"].get("model") or str(cfg.model._target_).rsplit(".", 1)[-1]
    if any(o.lstrip("+").startswith("model.arch=") for o in ctx["overrides"]):
        return str(cfg.model.arch).lower()
    return name


def train_without_val(callbacks: list) -> dict:
    """No val split: nothing to select on, so the checkpoints keep the last (or EMA) weights.

    The val cadence goes back to 1: ModelCheckpoint saves at the end of each training epoch only
    when ``check_val_every_n_epoch == 1``; with another value it waits for a validation that never
    comes, and the run would end without a checkpoint."""
    for cb in callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.monitor is not None:
            cb.monitor, cb.filename = None, "epoch{epoch:03d}"
    return {"limit_val_batches": 0, "num_sanity_val_steps": 0, "check_val_every_n_epoch": 1}


def val_cadence_reaching_the_last_epoch(trainer_cfg: DictConfig) -> dict:
    """The last epoch is always validated: Lightning validates when ``(epoch + 1) % n == 0`` only,
    so one epoch with ``check_val_every_n_epoch=2`` never validates (no val score, no checkpoint)
    and five leave the last epoch's weights unsaved. The cadence becomes gcd(n, max_epochs)."""
    every, epochs = trainer_cfg.get("check_val_every_n_epoch"), trainer_cfg.get("max_epochs")
    if not every or not epochs or epochs < 1 or epochs % every == 0:
        return {}
    cadence = math.gcd(int(every), int(epochs))
    log.info(
        "validating every %d epoch(s) instead of %d, so that epoch %d (the last) is validated",
        cadence,
        every,
        epochs,
    )
    return {"check_val_every_n_epoch": cadence}


def resolve_resume(cfg: DictConfig, run_dir: Path) -> str | None:
    ckpt = cfg.get("ckpt_path")
    if ckpt in (None, "", "none"):
        return None
    if ckpt == "auto":
        last = run_dir / "checkpoints" / "last.ckpt"
        if last.is_file():
            log.info("resuming the interrupted run from %s", last)
            return str(last)
        return None
    return str(ckpt)


def train(cfg: DictConfig) -> dict:
    """One training run in its run folder, which it owns for the run (``owned_folder``: a second
    run given the same folder stops with one line naming this one's pid)."""
    run_dir = output_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    with owned_folder(run_dir):
        return train_in(cfg, run_dir)


def train_in(cfg: DictConfig, run_dir: Path) -> dict:
    set_threads(cfg.get("threads"))
    L.seed_everything(cfg.seed, workers=True)
    ctx = hydra_context()
    with atomic_path(run_dir / "config.yaml") as tmp:
        OmegaConf.save(cfg, tmp, resolve=False)

    datamodule, net, module = build(cfg)
    resume = resolve_resume(cfg, run_dir)
    if resume:
        check_matches(read_checkpoint(resume), to_container(cfg.model), cfg.model.num_classes)

    previous = RunRecord.load(run_dir / "run.json") if (run_dir / "run.json").is_file() else None
    record = RunRecord(
        run_dir=str(run_dir.resolve()),
        dataset=cfg.data.name,
        model=model_name(cfg, ctx),
        encoder=getattr(net, "encoder_name", cfg.model.get("encoder_name")),
        encoder_weights=cfg.model.get("encoder_weights"),
        input_size=list(cfg.data.input_size),
        num_classes=int(cfg.model.num_classes),
        class_names=list(datamodule.meta()["class_names"]),
        experiment=cfg.get("experiment_name"),
        tags=list(cfg.get("tags") or []),
        sweep_dir=ctx["sweep_dir"],
        overrides=ctx["overrides"],
        seed=int(cfg.seed),
        git_commit=git_commit(),
    )
    if module.distill is not None:
        record.extra["distill"] = module.distill.record
    if module.teacher_targets is not None:
        record.extra["teacher_targets"] = module.teacher_targets.record()
    if cfg.get("init_weights") and resume:
        log.info("init_weights=%s ignored: the run resumes from %s", cfg.init_weights, resume)
        record.extra["init_weights"] = (previous.extra if previous else {}).get("init_weights")
    elif cfg.get("init_weights"):
        record.extra["init_weights"] = warm_start(
            net, str(cfg.init_weights), to_container(cfg.model)
        )
    if previous is not None and resume:
        record.started = previous.started
        record.extra["resumed_wall_time_s"] = previous.wall_time_s or 0.0

    loggers = instantiate_all(cfg.get("logger"))
    for lg in loggers:
        prepare_wandb_logger(lg, ctx["sweep_dir"], cfg)
        lg.log_hyperparams(flat_config(cfg))
    callbacks = instantiate_all(cfg.get("callbacks"))
    RunRecordWriter.attach(callbacks, record)  # it saves the record and marks failures from now on
    if not loggers:  # LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    datamodule.dataset("train")  # missing data stops the run here, not after minutes of probing
    fmt = choose_format(cfg, net, meta_yaml=module.hparams["meta"]["model_yaml"])
    record.extra["train_format"] = fmt
    if datamodule.has_split("val"):
        val_settings = val_cadence_reaching_the_last_epoch(cfg.trainer)
    else:
        val_settings = train_without_val(callbacks)
        log.info("the data has no val split: no validation, the last weights are kept")
    trainer = instantiate(
        cfg.trainer,
        precision=fmt["precision"],
        callbacks=callbacks,
        logger=loggers or False,
        **val_settings,
    )

    t0 = time.time()
    try:
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
        except SystemExit as e:
            # Lightning ends a Ctrl-C'd fit with exit(1), a crash's code, and a SIGTERM'd one with
            # its SIGTERMException: 128 + the signal (130, 143), as in rtseg-realtime, once it has
            # saved and the writer has marked the record interrupted
            if trainer.interrupted:
                log.warning("interrupted: rerun the same command to resume from last.ckpt")
                raise Interrupted(interrupt_signal(e)) from e
            raise
        if trainer.interrupted:  # the writer has marked the record
            return {}
        results = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if cfg.get("test") and datamodule.has_split("test"):
            out = trainer.test(module, datamodule=datamodule, ckpt_path=best or None, verbose=False)
            results.update(out[0] if out else {})
            record.test_miou = results.get("test/miou")
            test_set = datamodule.dataset("test")
            record.test_split = (
                getattr(getattr(test_set, "base", test_set), "split", None) or "test"
            )
        elif cfg.get("test"):
            log.info("the data has no test split: test stage skipped")
            record.test_split = "none"
        if (
            trainer.global_rank != 0
        ):  # DDP: rank 0 alone writes the run record and prints the summary
            return results
        record.status = "finished"
        record.ended = time.time()
        if record.wall_time_s is None:
            record.wall_time_s = time.time() - t0
        if record.val_miou_best is None and "val/miou_best" in results:
            record.val_miou_best = results["val/miou_best"]
        record.save()
        for lg in loggers:
            summary = {"val/miou_best": record.val_miou_best, "test/miou": record.test_miou}
            if hasattr(lg, "experiment") and hasattr(lg.experiment, "summary"):
                lg.experiment.summary.update({k: v for k, v in summary.items() if v is not None})
        print_summary(record)
        return results
    finally:
        finish_wandb(loggers)


def print_summary(record: RunRecord) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{record.model} on {record.dataset}: {Path(record.run_dir).name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        (
            "val mIoU (best)",
            f"{100 * record.val_miou_best:.2f}" if record.val_miou_best is not None else "-",
        ),
        (
            "test mIoU"
            if record.test_split in (None, "test", "none")
            else f"test mIoU (on {record.test_split}: no test split)",
            "none (no test split)"
            if record.test_split == "none"
            else f"{100 * record.test_miou:.2f}"
            if record.test_miou is not None
            else "-",
        ),
        ("params", f"{record.params / 1e6:.3f} M" if record.params else "-"),
        ("GFLOPs @ input", f"{record.gflops:.2f}" if record.gflops else "-"),
        (
            "eager fp32 latency",
            f"{record.latency_ms:.1f} ms ({record.fps:.1f} fps)" if record.latency_ms else "-",
        ),
        (
            "epochs / wall time",
            f"{record.epochs} / {record.wall_time_s:.0f} s" if record.wall_time_s else "-",
        ),
        (
            "train throughput",
            f"{record.train_images_per_s:.2f} img/s, {100 * (record.data_wait_share or 0):.1f}% waiting for data"
            if record.train_images_per_s
            else "-",
        ),
        (
            "train precision / format",
            "{precision} / {memory_format} ({source})".format(**record.extra["train_format"])
            if record.extra.get("train_format")
            else "-",
        ),
        ("best checkpoint", record.best_ckpt or "-"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    if record.val_iou:
        for name, v in record.val_iou.items():
            table.add_row(f"  val IoU {name}", f"{100 * v:.2f}")
    Console().print(table)


@command_line_checked
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@user_errors_as_one_line
def main(cfg: DictConfig) -> float | None:
    results = train(cfg)
    # returned for Hydra sweepers (Optuna maximises val/miou_best)
    value = results.get("val/miou_best")
    return float(value) if value is not None else None


if __name__ == "__main__":
    main()
