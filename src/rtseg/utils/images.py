"""Image conventions every layer shares: ImageNet normalisation and the fallback palette."""

from __future__ import annotations

# ImageNet's channel statistics (RGB, 0-1 scale): what pretrained encoders expect, and the
# normalisation assumed wherever a checkpoint or a data config names none
IMAGENET_MEAN = (0.485, 0.456, 0.406)


IMAGENET_STD = (0.229, 0.224, 0.225)


def default_palette(n: int) -> list[list[int]]:
    """``n`` RGB colours, the same on every call: for datasets and checkpoints that name none."""
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (n, 3)).tolist()
