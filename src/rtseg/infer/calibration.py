"""Real images for int8 calibration, agreement checks and mIoU: a checkpoint's own dataset, read once.

int8 is never calibrated on noise: callers get an empty list and a reason when the data cannot be
read, and decide whether to refuse (int8) or to fall back for timing only (agreement).
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rtseg.checkpoints.meta import recorded_data_config
from rtseg.errors import RtsegError

log = logging.getLogger("rtseg.infer")

NO_IMAGES = (
    "int8 needs real calibration images and none could be read: pass the checkpoint's data=... "
    "(and data.root=...); rtseg never calibrates int8 on random input"
)


class Calibration(list):
    """Calibration images (``(1, 3, H, W)`` tensors) that remember where they came from, so every int8
    artifact can record its calibration source and count.

    ``ranges``: the activation ranges a calibration produced (ONNX Runtime's calibration cache, as
    a shipped model's card carries them): int8 is then quantised from those, no images needed, and
    the file is the one the card measured."""

    def __init__(
        self, images=(), source: str = "images given by the caller", ranges: dict | None = None,
        count: int | None = None,
    ):  # fmt: skip
        super().__init__(images)
        self.source, self.ranges, self.count = source, ranges, count

    def __bool__(self) -> bool:
        return len(self) > 0 or self.ranges is not None

    def describe(self) -> dict:
        return {"source": self.source, "images": self.count if self.ranges else len(self)}


def recheck_images(size, mean, std, n: int = 8) -> list[torch.Tensor]:
    """The images a shipped model's int8 evidence is re-checked on, identical on every machine:
    built-in scenes (``rtseg.data.synthetic``, seed 0, the test stream) at ``size``, normalised
    with the model's mean/std. What the card measured on them is compared with this runtime."""
    import numpy as np

    from rtseg.data.synthetic import SyntheticScenes

    scenes = SyntheticScenes("test", length=n, size=tuple(size), seed=0, cache=False)
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    out = []
    for i in range(n):
        rgb, _ = scenes.load(i)
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
        out.append(((x - m) / s)[None])
    return out


def describe_calibration(images) -> dict:
    return images.describe() if isinstance(images, Calibration) else Calibration(images).describe()


class DatasetImages:
    """(image, mask) pairs of one data config, normalised with the checkpoint's mean/std, at an input size."""

    def __init__(self, data_cfg: DictConfig | dict, meta: dict):
        self.unavailable: str | None = None
        self.datamodule = None
        # resolved here: the data config may refer to top-level keys (${seed}) absent below it
        try:
            if isinstance(data_cfg, DictConfig):
                data_cfg = OmegaConf.to_container(data_cfg, resolve=True)
            else:  # a copy: the cache setting below must not change the caller's config
                data_cfg = copy.deepcopy(data_cfg)
        except OmegaConfBaseException as e:
            self.name, self.unavailable = data_cfg.get("name"), f"data config unusable ({e})"
            return
        self.name = data_cfg.get("name")
        # a handful of images is read once: decoding a whole split into memory first (the training
        # cache, ``cache_mb``) cost seconds and hundreds of MB for 32 calibration images
        for split_cfg in (data_cfg.get("datasets") or {}).values():
            if isinstance(split_cfg, dict) and "cache_mb" in split_cfg:
                split_cfg["cache_mb"] = 0
        # every split read as the network sees images at inference: the training augmentations
        # (random crops, flips, colour) made int8 calibration, and so its files, differ per export
        augs = data_cfg.get("augmentations") or {}
        if isinstance(augs, dict):
            data_cfg["augmentations"] = {k: augs.get("val") for k in ("train", "val", "test")}
        trained, given = meta.get("num_classes"), data_cfg.get("num_classes")
        other_classes = trained and given and trained != given and not data_cfg.get("binary_class")
        if meta.get("dataset") not in (None, self.name) or other_classes:
            self.unavailable = (
                f"checkpoint was trained on {meta.get('dataset')} ({trained} classes) but "
                f"data={self.name} has {given}: pass data={meta.get('dataset')}"
            )
            return
        try:
            self.datamodule = instantiate(OmegaConf.create(data_cfg), _convert_="all")
            self.datamodule.set_normalization(meta["mean"], meta["std"])
        except (RtsegError, OSError, ValueError) as e:
            self.unavailable = f"data {self.name} unavailable ({e})"

    def pairs(self, split: str, n: int, input_size) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Up to ``n`` pairs ``((1, 3, H, W) float, (1, H, W) long)``; [] when unreadable (logged)."""
        if self.datamodule is None or n <= 0:
            return []
        size = tuple(int(v) for v in input_size)
        try:
            ds = self.datamodule.dataset(split)
            out = []
            for i in range(min(n, len(ds))):
                img, mask = ds[i]
                img = F.interpolate(
                    img[None].float(), size=size, mode="bilinear", align_corners=False
                )
                mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest")[0].long()
                out.append((img, mask))
            return out
        except (RtsegError, OSError, ValueError) as e:
            log.warning("cannot read %s/%s (%s)", self.name, split, e)
            self.unavailable = f"cannot read {self.name}/{split} ({e})"
            return []

    def calibration(self, split: str, n: int, input_size) -> Calibration:
        """The first ``n`` images of ``split`` as a ``Calibration`` naming them (empty when unreadable)."""
        images = [x for x, _ in self.pairs(split, n, input_size)]
        return Calibration(images, f"{self.name}/{split} images (the first {len(images)})")


def dataset_images(data_cfg, meta: dict) -> DatasetImages | None:
    """``data=...`` when given, else the data config the checkpoint recorded; None when it has none."""
    data_cfg = data_cfg if data_cfg is not None else recorded_data_config(meta)
    return None if data_cfg is None else DatasetImages(data_cfg, meta)
