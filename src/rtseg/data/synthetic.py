"""Procedural street scenes made on the fly from a seed: the default data that runs anywhere.

Road and pavement are drawn with the same asphalt texture: only their position and shape (the road
is the trapezoid that runs to the vanishing point, the pavement flanks it) tell them apart, so a
network with a small receptive field cannot separate them and a U-Net can.
"""

from __future__ import annotations

import numpy as np

from rtseg.data.base import SegmentationDataset

CLASS_NAMES = ("sky", "building", "road", "pavement", "tree", "car", "person")
PALETTE = (
    (70, 130, 180),
    (70, 70, 70),
    (128, 64, 128),
    (244, 35, 232),
    (107, 142, 35),
    (0, 0, 142),
    (220, 20, 60),
)
SKY, BUILDING, ROAD, PAVEMENT, TREE, CAR, PERSON = range(7)
_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}


def render_scene(
    rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (HxWx3 uint8 RGB image, HxW uint8 label mask)."""
    h, w = height, width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    mask = np.zeros((h, w), np.uint8)

    horizon = rng.uniform(0.32, 0.5) * h
    # Sky: vertical gradient, blue or overcast grey.
    top = (
        rng.uniform([60, 110, 170], [140, 180, 240])
        if rng.random() < 0.7
        else rng.uniform(150, 210, 3)
    )
    bottom = top + rng.uniform(20, 50)
    t = (yy / max(horizon, 1.0))[..., None]
    img[:] = top * (1 - t) + bottom * t
    mask[:] = SKY

    # Buildings: a skyline of blocks standing on the horizon, with window grids.
    x = -rng.uniform(0, 0.1) * w
    while x < w:
        bw = rng.uniform(0.12, 0.3) * w
        btop = horizon - rng.uniform(0.1, 0.9) * horizon
        if rng.random() < 0.85:
            region = (xx >= x) & (xx < x + bw) & (yy >= btop) & (yy < horizon + 1)
            colour = rng.uniform(60, 190) + rng.uniform(-25, 25, 3)
            win = colour * rng.uniform(0.35, 0.6)
            period = rng.uniform(5, 10) * h / 128
            windows = (np.mod(xx - x, period) < period * 0.5) & (
                np.mod(yy - btop, period) < period * 0.55
            )
            facade = np.where(windows[..., None], win, colour)
            img[region] = facade[region]
            mask[region] = BUILDING
        x += bw

    # Trees: noisy green blobs in front of the buildings.
    for _ in range(rng.integers(0, 4)):
        cx, r = rng.uniform(0, w), rng.uniform(0.05, 0.14) * h
        cy = horizon - r * rng.uniform(0.3, 1.2)
        blob = ((xx - cx) ** 2 + ((yy - cy) * 1.2) ** 2) < r**2
        leaf = rng.uniform([30, 80, 20], [90, 150, 70])
        img[blob] = leaf + rng.normal(0, 18, (int(blob.sum()), 3))
        mask[blob] = TREE

    # Ground: road (a trapezoid to the vanishing point) and pavement share one asphalt texture.
    vx = rng.uniform(0.35, 0.65) * w
    half_bottom = rng.uniform(0.3, 0.55) * w
    depth = np.clip((yy - horizon) / max(h - horizon, 1.0), 0, 1)
    half = 0.02 * w + depth * half_bottom
    ground = yy >= horizon
    road = ground & (np.abs(xx - vx) <= half)
    asphalt = rng.uniform(70, 140) + rng.uniform(-8, 8, 3)
    grain = rng.normal(0, 1, (h, w, 1)) * rng.uniform(6, 14)
    img[ground] = (asphalt + grain)[ground]
    mask[ground] = PAVEMENT
    mask[road] = ROAD
    # Lane markings (road) and a thin kerb line: the only local cues, and both are sparse.
    dash = np.mod(np.log1p(depth * 12) * 6 + rng.uniform(0, 1), 1.0) < 0.5
    lane = road & (np.abs(xx - vx) < 0.012 * w + depth * 0.01 * w) & dash
    img[lane] = rng.uniform(200, 240)
    kerb = ground & (np.abs(np.abs(xx - vx) - half) < 0.004 * w + depth * 0.006 * w)
    img[kerb] = np.clip(asphalt + rng.uniform(10, 30), 0, 255)

    # Cars on the road, people on the pavement; sizes follow perspective.
    for _ in range(rng.integers(0, 4)):
        d = rng.uniform(0.15, 1.0)
        cy = horizon + d * (h - horizon)
        side = rng.uniform(-0.8, 0.8)
        cx = vx + side * (0.02 * w + d * half_bottom)
        cw, ch = (0.1 + 0.35 * d) * w * 0.5, (0.06 + 0.22 * d) * h * 0.5
        body = (np.abs(xx - cx) < cw) & (yy > cy - ch) & (yy < cy)
        paint = rng.uniform(20, 230, 3)
        img[body] = paint
        glass = (np.abs(xx - cx) < cw * 0.7) & (yy > cy - ch) & (yy < cy - ch * 0.6)
        img[glass] = rng.uniform(20, 60, 3)
        mask[body] = CAR
    for _ in range(rng.integers(0, 5)):
        d = rng.uniform(0.2, 1.0)
        cy = horizon + d * (h - horizon)
        off = (0.02 * w + d * half_bottom) * rng.uniform(1.1, 1.8)
        cx = vx + off * (1 if rng.random() < 0.5 else -1)
        ph = (0.08 + 0.3 * d) * h
        pw = ph * 0.16
        torso = (((xx - cx) / pw) ** 2 + ((yy - (cy - ph * 0.45)) / (ph * 0.42)) ** 2) < 1
        head = ((xx - cx) ** 2 + (yy - (cy - ph * 0.92)) ** 2) < (pw * 0.8) ** 2
        person = (torso | head) & (yy < cy)
        img[torso] = rng.uniform(10, 240, 3)
        img[head] = rng.uniform([150, 100, 80], [240, 190, 160])
        mask[person] = PERSON

    # Lighting: global gain, a soft left-right shadow, sensor noise.
    gain = rng.uniform(0.6, 1.3)
    shade = 1 - rng.uniform(0, 0.35) * np.clip((xx - rng.uniform(0, w)) / w, 0, 1)
    img = img * gain * shade[..., None] + rng.normal(0, rng.uniform(2, 10), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), mask


class SyntheticScenes(SegmentationDataset):
    """A deterministic split of procedural scenes: sample i of a split is always the same picture."""

    class_names = CLASS_NAMES
    palette = PALETTE

    def __init__(
        self,
        split: str = "train",
        length: int = 512,
        size: tuple[int, int] = (128, 160),
        seed: int = 0,
        cache: bool = True,
        transform=None,
    ):
        super().__init__(transform)
        if split not in _SPLIT_STREAM:
            raise ValueError(f"split must be one of {sorted(_SPLIT_STREAM)}, got {split!r}")
        self.split, self.length, self.size, self.seed = split, int(length), tuple(size), int(seed)
        # rendering costs ~10-40 ms a scene: keep them (512 scenes at 128x160 are ~40 MB)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return self.length

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng((self.seed, _SPLIT_STREAM[self.split], index))
        scene = render_scene(rng, *self.size)
        if self._cache is not None:
            self._cache[index] = scene
        return scene
