"""rtseg-eval: score a checkpoint on val or test and print the per-class IoU table."""

from __future__ import annotations

import json
import logging

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from rtseg.checkpoints.meta import recorded_data_config, stored_model_config
from rtseg.checkpoints.reading import load_network
from rtseg.checkpoints.spec import choose_checkpoint
from rtseg.data.sequences import sequence_of
from rtseg.errors import CheckpointError, RtsegError, SplitNotFound
from rtseg.models.tta import TTA, TestTimeAugmented
from rtseg.training.module import SegmentationModule
from rtseg.utils.cli import command_line_checked, user_errors_as_one_line
from rtseg.utils.config import hydra_context, output_dir
from rtseg.utils.machine import set_threads
from rtseg.utils.paths import CONF_DIR, write_atomic

log = logging.getLogger("rtseg.training.eval")


def data_config(cfg: DictConfig, meta: dict) -> DictConfig:
    """``data=...`` when given, else the data config recorded in the checkpoint."""
    if cfg.get("data") is not None:
        return cfg.data
    recorded = recorded_data_config(meta)
    if recorded is None:
        raise RtsegError(
            f"{meta.get('checkpoint')} records no data config (written before rtseg stored one): "
            f"pass data={meta.get('dataset') or '...'} (and data.root=...)"
        )
    return recorded


def network_size(cfg: DictConfig, data_cfg: DictConfig, meta: dict):
    """``input_size=``; else ``data.input_size`` where the command line sets it; else the size the
    checkpoint was trained at, so that ``data=camvid``'s preset 360x480 does not shrink a model
    trained for 450x600 frames; else the data config's."""
    if cfg.get("input_size"):
        return list(cfg.input_size)
    given = [o.lstrip("+~") for o in hydra_context()["overrides"]]
    if any(o.startswith("data.input_size=") for o in given):
        return list(data_cfg.input_size)
    size = meta.get("input_size") or data_cfg.get("input_size")
    return list(size) if size else None


def evaluate(cfg: DictConfig) -> dict:
    set_threads(cfg.get("threads"))
    L.seed_everything(cfg.seed, workers=True)
    split = cfg.get("split", "test")
    if split not in ("val", "test"):
        raise RtsegError(f"split={split!r}: expected val or test")
    choice = choose_checkpoint(cfg.get("checkpoint"), cfg.paths.log_dir)
    log.info("checkpoint: %s (%s)", choice.path, choice.reason)
    if choice.exported:
        raise RtsegError(
            f"rtseg-eval scores networks, not exported files: pass the checkpoint {choice.path.name} came from"
        )
    net, meta = load_network(choice.path)
    data_cfg = data_config(cfg, meta)
    # the size the network runs at (the images are resized to it and the logits back, then scored
    # at each label's size); the data pipeline resizes straight to it, one resampling
    size = network_size(cfg, data_cfg, meta)
    if size and data_cfg.get("input_size") is not None:
        data_cfg.input_size = [int(v) for v in size]
    datamodule = instantiate(data_cfg, _convert_="all")
    trained = int(meta["num_classes"])
    if int(data_cfg.num_classes) != trained and data_cfg.get("binary_class") is None:
        raise CheckpointError(
            f"{choice.path} was trained for {trained} classes ({meta.get('dataset')}) but data={data_cfg.name} "
            f"has {data_cfg.num_classes}: use data={meta.get('dataset')}"
        )
    datamodule.set_normalization(meta["mean"], meta["std"])
    # the size and test-time augmentation both wrap the network, nothing else changes
    tta = TTA.parse(cfg.get("tta"))
    net = TestTimeAugmented(net, tta, size)
    module = SegmentationModule(
        net,
        # the network's own output count (1 for the binary tanh form, whose meta lists 2 classes)
        num_classes=int(stored_model_config(meta).get("num_classes") or meta["num_classes"]),
        ignore_index=int(meta.get("ignore_index", 255)),
        class_names=meta.get("class_names"),
        meta=meta,
        train_metrics=False,
    )
    try:
        dataset = datamodule.dataset(split)
    except SplitNotFound as e:
        raise SplitNotFound(f"{e}: nothing to score (split=val scores the val split)") from None
    sequences = frame_sequences(dataset)
    if sequences:  # even one: the table says which sequence the split is
        module.score_groups(split, sequences)
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    if trainer_cfg.get("precision") == "auto":
        trainer_cfg["precision"] = "32-true"  # scores are taken in fp32, the reference precision
    trainer = instantiate(trainer_cfg, logger=False, callbacks=[], enable_checkpointing=False)
    run = trainer.validate if split == "val" else trainer.test
    run(module, datamodule=datamodule, verbose=False)
    scores = {
        **module.last_scores[split],
        "input_size": list(net.size or []),
        "tta": tta and tta.describe(),
    }
    how = f" at {net.size[0]}x{net.size[1]}" if net.size else ""
    how += f", tta {tta.describe()} ({tta.passes} passes)" if tta else ""
    print_scores(scores, f"{choice.path.name} on {datamodule.name}/{split}{how}")
    if scores.get("groups"):
        print_sequence_scores(scores["groups"], f"{datamodule.name}/{split} per video sequence")
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(
        out / "eval.json",
        json.dumps({"checkpoint": str(choice.path), "split": split, **scores}, indent=2),
    )
    return scores


def frame_sequences(dataset) -> list[str]:
    """The video sequence of each image of a file-backed split (empty when the names carry none)."""
    base = getattr(dataset, "base", dataset)
    pairs = getattr(base, "pairs", None) or []
    names = [sequence_of(img) for img, _ in pairs]
    return [] if not names or None in names else names


def print_scores(scores: dict, title: str) -> None:
    table = Table(title=title)
    table.add_column("class")
    table.add_column("IoU %", justify="right")
    for name, v in scores["iou"].items():
        table.add_row(name, "absent" if v != v else f"{100 * v:.2f}")
    table.add_section()
    table.add_row("mIoU", f"{100 * scores['miou']:.2f}", style="bold")
    table.add_row("pixel acc", f"{100 * scores['acc']:.2f}")
    Console().print(table)


@command_line_checked
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
@user_errors_as_one_line
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


def print_sequence_scores(groups: dict[str, dict], title: str) -> None:
    """Per-class IoU with one column per sequence: where a model generalises and where it memorises."""
    table = Table(title=title)
    table.add_column("class")
    for name in groups:
        table.add_column(name, justify="right")
    classes = next(iter(groups.values()))["iou"]
    for cls in classes:
        cells = [groups[g]["iou"][cls] for g in groups]
        table.add_row(cls, *("absent" if v != v else f"{100 * v:.2f}" for v in cells))
    table.add_section()
    table.add_row("mIoU", *(f"{100 * g['miou']:.2f}" for g in groups.values()), style="bold")
    table.add_row("pixel acc", *(f"{100 * g['acc']:.2f}" for g in groups.values()))
    table.add_row("frames", *(str(g["images"]) for g in groups.values()))
    Console().print(table)


if __name__ == "__main__":
    main()
