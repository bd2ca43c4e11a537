"""One training epoch through the project (Lightning module, callbacks, metrics) vs a minimal
plain-PyTorch loop over the same network, data, precision, memory format and threads.

    .venv/bin/python experiments/train_throughput/compare.py data.root=../shared/data/camvid

Any rtseg-train override may follow (default: experiment=camvid_ppliteseg_lite0). Both loops run
the same number of batches from the same DataLoader settings; the first WARMUP batches of each
are not timed. Prints images/s for both and the ratio; writes results.json beside this file (or
--out FILE). Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir

from rtseg.training.callbacks import TrainThroughput
from rtseg.training.train import build, choose_format
from rtseg.utils.machine import cpu_name, set_threads
from rtseg.utils.paths import CONF_DIR

WARMUP = 3


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            "train",
            overrides=[
                "experiment=camvid_ppliteseg_lite0",
                "threads=2",
                "paths.output_dir=/tmp/rtseg-throughput",
                *overrides,
            ],
        )


class Clock(L.Callback):
    """Wall time of the training batches after WARMUP, as the plain loop measures it."""

    def __init__(self):
        self.t0 = None
        self.images = 0
        self.seen = 0
        self.t1 = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.seen == WARMUP:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen += 1
        if self.seen > WARMUP:
            self.images += int(batch[0].shape[0])
            self.t1 = time.perf_counter()


def project_epoch(cfg, fmt) -> dict:
    datamodule, net, module = build(cfg)
    if fmt["memory_format"] == "channels_last":
        net.to(memory_format=torch.channels_last)
    clock, throughput = Clock(), TrainThroughput()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        precision=fmt["precision"],
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock, throughput],
    )
    trainer.fit(module, datamodule=datamodule)
    return {
        "images_per_s": clock.images / (clock.t1 - clock.t0),
        "data_wait_share": throughput.summary.get("train/data_wait_share"),
    }


def plain_epoch(cfg, fmt) -> dict:
    datamodule, net, module = build(cfg)
    if fmt["memory_format"] == "channels_last":
        net.to(memory_format=torch.channels_last)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    opt = module.optimizer_factory(params=[p for p in net.parameters() if p.requires_grad])
    loss_fn = module.loss_fn
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if fmt["precision"] == "bf16-mixed"
        else contextlib.nullcontext()
    )
    net.train()
    images, t0 = 0, None
    for i, (x, y) in enumerate(loader):
        if i == WARMUP:
            t0 = time.perf_counter()
        with autocast:
            loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= WARMUP:
            images += x.shape[0]
    return {"images_per_s": images / (time.perf_counter() - t0)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("overrides", nargs="*", help="rtseg-train overrides, e.g. data.root=...")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results.json",
                    help="the JSON to write (default: results.json beside this file)")  # fmt: skip
    args = ap.parse_args(argv)
    argv = args.overrides
    cfg = compose_cfg(argv)
    set_threads(cfg.threads)
    L.seed_everything(cfg.seed)
    _, net, module = build(cfg)
    fmt = choose_format(cfg, net, module.hparams["meta"]["model_yaml"])
    plain = plain_epoch(cfg, fmt)
    project = project_epoch(cfg, fmt)
    result = {
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "format": {k: fmt[k] for k in ("precision", "memory_format")},
        "plain_images_per_s": round(plain["images_per_s"], 3),
        "project_images_per_s": round(project["images_per_s"], 3),
        "project_data_wait_share": project["data_wait_share"],
        "ratio": round(project["images_per_s"] / plain["images_per_s"], 3),
        "overrides": argv,
    }
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
