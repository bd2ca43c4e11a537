"""Every training run leaves its PNGs (confusion matrix, per-class IoU, learning curves) beside metrics.csv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rtseg.training import plots
from rtseg.utils.paths import REPO_ROOT

PNGS = ("confusion_matrix.png", "class_iou.png", "learning_curves.png")


def _is_drawn_png(path: Path) -> None:
    img = np.asarray(Image.open(path).convert("L"))
    assert img.shape[0] > 200 and img.shape[1] > 300, img.shape
    assert img.std() > 10, f"{path} looks blank"


def test_rtseg_train_writes_the_pngs_and_sends_them_to_wandb(tmp_path, tiny_train_overrides):
    run = tmp_path / "run"
    exe = Path(sys.executable).parent / "rtseg-train"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "rtseg.training.train"]
    env = {
        **os.environ,
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "RTSEG_LOG_DIR": str(tmp_path / "logs"),
    }
    proc = subprocess.run(
        [*cmd, *tiny_train_overrides, "logger=wandb", "trainer.max_epochs=2", f"hydra.run.dir={run}"],
        capture_output=True, text=True, env=env, timeout=400, cwd=REPO_ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in PNGS:
        _is_drawn_png(run / name)
    assert (run / "metrics.csv").is_file()
    media = {
        p.name.split("_")[0] for p in run.glob("wandb/offline-run-*/files/media/images/plots/*.png")
    }
    assert media == {"confusion", "iou", "curves"}, media


def test_tensorboard_logger_gets_the_plots(compose_cfg, tmp_path, tiny_train_overrides):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rtseg.training.train import train

    cfg = compose_cfg(overrides=[*tiny_train_overrides, "logger=tensorboard", "trainer.max_epochs=1", "test=false"])  # fmt: skip
    train(cfg)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    assert {"plots/confusion", "plots/iou", "plots/curves"} <= set(events.Tags()["images"])
    assert "val/miou" in events.Tags()["scalars"]


def test_plots_read_the_numbers_they_are_given(tmp_path):
    cm = np.array([[8, 2, 0], [0, 5, 5], [0, 0, 0]])
    iou = plots.class_iou_png(cm, ["road", "car", "sky"], tmp_path / "iou.png", "t")
    conf = plots.confusion_matrix_png(cm, ["road", "car", "sky"], tmp_path / "cm.png", "t")
    hist = [{"epoch": 0, "train_loss": 1.0, "val_loss": 0.9, "val_miou": 0.3}, {"epoch": 1, "train_loss": 0.5, "val_miou": 0.5}]  # fmt: skip
    curves = plots.learning_curves_png(hist, tmp_path / "curves.png", "t")
    for p in (iou, conf, curves):
        _is_drawn_png(p)
