"""Albumentations pipelines built from config, always ending in normalisation + tensor conversion."""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A
from albumentations.pytorch import ToTensorV2


def build_transform(
    augmentations: Sequence | None, mean: Sequence[float], std: Sequence[float]
) -> A.Compose:
    """Compose the configured augmentations (already instantiated) with normalisation.

    Normalisation is appended here rather than written in every config so that it can follow the
    network's pretrained weights (see ``SegDataModule.set_normalization``). A teacher's stored
    probabilities (``soft``, HxWxK) move with the image as a mask does: the same scale, crop and
    flip, nearest-neighbour, never the colour changes.
    """
    steps = list(augmentations or [])
    steps += [A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0), ToTensorV2()]
    return A.Compose(steps, strict=True, additional_targets={"soft": "mask"})


def reseed_worker(worker_id: int) -> None:
    """Give each DataLoader worker its own augmentation stream.

    albumentations' Compose keeps a private RNG that is copied into every worker, so without this
    all workers (and every epoch of non-persistent workers) repeat the same augmentations.
    """
    import torch
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    transform = _transform_of(info.dataset) if info else None
    if transform is not None and hasattr(transform, "set_random_seed"):
        transform.set_random_seed(torch.initial_seed() % 2**32)


def _transform_of(dataset, depth: int = 4):
    """The albumentations pipeline of a dataset, looking through wrappers (``.base``, Subset's ``.dataset``)."""
    for _ in range(depth):
        if dataset is None or getattr(dataset, "transform", None) is not None:
            break
        inner = getattr(dataset, "base", None)
        dataset = inner if inner is not None else getattr(dataset, "dataset", None)
    return getattr(dataset, "transform", None)
