"""What a user's program runs per frame: uint8 BGR frame -> resize + normalise -> backend -> class map at frame size.

The benchmark's second figure (end-to-end) times this, because pre- and post-processing are
not free at real-time speeds. It is the realtime pipeline's own processing (``rtseg.infer.frames``),
so the table's e2e overhead is what rtseg-realtime pays per frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from rtseg.infer.backends import Backend
from rtseg.infer.frames import Preprocess


class FramePipeline:
    """``(H, W, 3)`` or ``(B, H, W, 3)`` uint8 BGR frames -> ``(B, H, W)`` uint8 class maps (same H, W)."""

    def __init__(
        self,
        backend: Backend,
        mean: Sequence[float],
        std: Sequence[float],
        interpolation: str = "linear",
    ):
        self.backend = backend
        self.size_hw = tuple(backend.input_size)
        self._pre = Preprocess(self.size_hw, mean, std, interpolation)

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack([self._pre(f) for f in frames]))

    def postprocess(self, labels: torch.Tensor, frame_hw: tuple[int, int]) -> np.ndarray:
        maps = labels.to(torch.uint8).numpy()
        if maps.shape[1:] == tuple(frame_hw):
            return maps
        h, w = frame_hw
        return np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in maps])

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = frames[None] if frames.ndim == 3 else frames
        return self.postprocess(self.backend.labels(self.preprocess(frames)), frames.shape[1:3])


def random_frames(batch: int, frame_hw: Sequence[int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, *frame_hw, 3), dtype=np.uint8)
