"""Tiny checkpoints, videos and configs for the realtime tests (made here, no files needed)."""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from rtseg.data.synthetic import CLASS_NAMES, PALETTE
from rtseg.models.baseline import ThreeConvNet
from rtseg.module import SegmentationModule
from rtseg.utils import CONF_DIR

FRAME_H, FRAME_W = 64, 96
BITS = 8  # frame index encoded as 8 black/white blocks along the bottom of each test frame


def save_checkpoint(path, width: int = 8, yaml_width: int | None = None, val_miou: float = 0.5):
    """A checkpoint laid out as rtseg-train writes it (Lightning keys, meta in hyper_parameters)."""
    torch.manual_seed(0)
    model_cfg = {
        "_target_": "rtseg.models.baseline.ThreeConvNet",
        "num_classes": len(CLASS_NAMES),
        "width": yaml_width or width,
    }
    meta = {
        "dataset": "synthetic",
        "num_classes": len(CLASS_NAMES),
        "class_names": list(CLASS_NAMES),
        "palette": [list(c) for c in PALETTE],
        "ignore_index": 255,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "input_size": [32, 48],
        "model_yaml": OmegaConf.to_yaml(OmegaConf.create(model_cfg)),
    }
    module = SegmentationModule(
        ThreeConvNet(len(CLASS_NAMES), width=width),
        num_classes=len(CLASS_NAMES),
        class_names=list(CLASS_NAMES),
        meta=meta,
    )
    ckpt = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val/miou'}": {"best_model_score": torch.tensor(val_miou)}
        },
    }
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


def encode_index(frame: np.ndarray, index: int) -> None:
    h, w = frame.shape[:2]
    bw = w // BITS
    for b in range(BITS):
        frame[h - 16 :, b * bw : (b + 1) * bw] = 255 if (index >> b) & 1 else 0


def decode_index(frame: np.ndarray) -> int:
    h, w = frame.shape[:2]
    bw = w // BITS
    return sum(
        1 << b
        for b in range(BITS)
        if frame[h - 12 : h - 4, b * bw + 3 : (b + 1) * bw - 3].mean() > 127
    )


@pytest.fixture(scope="session")
def indexed_video(tmp_path_factory):
    """An mp4 of 30 frames whose index is written into the pixels."""
    path = tmp_path_factory.mktemp("video") / "indexed.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (FRAME_W, FRAME_H))
    rng = np.random.default_rng(0)
    for i in range(30):
        frame = rng.integers(60, 200, (FRAME_H, FRAME_W, 3), dtype=np.uint8)
        encode_index(frame, i)
        writer.write(frame)
    writer.release()
    return path


def video_info(path) -> tuple[int, int, int, list[np.ndarray]]:
    """(reported frame count, width, height, the frames actually decoded)."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return count, w, h, frames


@pytest.fixture
def realtime_cfg(tmp_path):
    """compose(realtime, overrides) with the run folder and log dir inside tmp_path."""

    def make(*overrides):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(
                "realtime",
                overrides=[
                    f"paths.output_dir={tmp_path / 'run'}",
                    f"paths.log_dir={tmp_path / 'logs'}",
                    "backend=eager",
                    "threads=1",
                    *overrides,
                ],
            )

    yield make
    GlobalHydra.instance().clear()
