"""rtseg-eval: score a checkpoint on val or test and print the per-class IoU table."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from rtseg.checkpoint import check_matches, load_state, read_checkpoint
from rtseg.train import build, output_dir
from rtseg.utils import CONF_DIR, set_threads, to_container, user_errors_as_one_line

log = logging.getLogger("rtseg.eval")


def evaluate(cfg: DictConfig) -> dict:
    set_threads(cfg.get("threads"))
    L.seed_everything(cfg.seed, workers=True)
    ckpt = read_checkpoint(cfg.ckpt_path)
    check_matches(ckpt, to_container(cfg.model), cfg.model.num_classes)
    datamodule, net, module = build(cfg)
    stored = ckpt["hyper_parameters"]["meta"]
    datamodule.set_normalization(stored["mean"], stored["std"])
    load_state(net, ckpt)
    split = cfg.get("split", "test")
    if split not in ("val", "test"):
        raise ValueError(f"split must be val or test, got {split!r}")
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False)
    run = trainer.validate if split == "val" else trainer.test
    run(module, datamodule=datamodule, verbose=False)
    scores = module.last_scores[split]
    print_table(scores, f"{Path(cfg.ckpt_path).name} on {datamodule.name}/{split}")
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(
        json.dumps({"checkpoint": str(cfg.ckpt_path), "split": split, **scores}, indent=2)
    )
    return scores


def print_table(scores: dict, title: str) -> None:
    table = Table(title=title)
    table.add_column("class")
    table.add_column("IoU %", justify="right")
    for name, v in scores["iou"].items():
        table.add_row(name, "absent" if v != v else f"{100 * v:.2f}")
    table.add_section()
    table.add_row("mIoU", f"{100 * scores['miou']:.2f}", style="bold")
    table.add_row("pixel acc", f"{100 * scores['acc']:.2f}")
    Console().print(table)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
@user_errors_as_one_line
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
