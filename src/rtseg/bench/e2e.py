"""What a user's program runs per frame: uint8 frame -> resize + normalise -> backend -> class map at frame size.

The benchmark's second figure (end-to-end) times this, because pre- and post-processing are
not free at real-time speeds; the realtime pipeline can use the same object.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from rtseg.bench.backends import Backend


class FramePipeline:
    """``(H, W, 3)`` or ``(B, H, W, 3)`` uint8 RGB frames -> ``(B, H, W)`` uint8 class maps (same H, W)."""

    def __init__(self, backend: Backend, mean: Sequence[float], std: Sequence[float]):
        self.backend = backend
        self.size_hw = backend.input_size
        # (x / 255 - mean) / std folded into one multiply-add per pixel
        std = np.asarray(std, dtype=np.float32)
        self.scale = (1.0 / (255.0 * std)).reshape(1, 1, 3)
        self.shift = (-np.asarray(mean, dtype=np.float32) / std).reshape(1, 1, 3)

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        h, w = self.size_hw
        out = np.empty((len(frames), 3, h, w), dtype=np.float32)
        for i, f in enumerate(frames):
            if f.shape[:2] != (h, w):
                f = cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)
            out[i] = (f.astype(np.float32) * self.scale + self.shift).transpose(2, 0, 1)
        return torch.from_numpy(out)

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
