"""Frame processing shared by everything that runs a network on video frames (realtime, bench e2e, API).

One uint8 BGR frame -> the network's normalised input; a class map -> the frame's size. Keeping
them in one place means the benchmark's end-to-end figure times what realtime runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from rtseg.models.output import logits_to_labels

#: realtime's default (conf/realtime.yaml ``interpolation``); the benchmark's e2e figure uses the same
DEFAULT_INTERPOLATION = "linear"


class Preprocess:
    """BGR frame -> normalised float32 RGB CHW at the model's input size (resized once)."""

    def __init__(
        self, size: tuple[int, int], mean, std, interpolation: str = DEFAULT_INTERPOLATION
    ):
        self.h, self.w = int(size[0]), int(size[1])
        self.mean = (np.asarray(mean, np.float32) * 255).reshape(3, 1, 1)
        self.inv_std = (1.0 / (np.asarray(std, np.float32) * 255)).reshape(3, 1, 1)
        self.interpolation = {
            "area": cv2.INTER_AREA,
            "linear": cv2.INTER_LINEAR,
            "nearest": cv2.INTER_NEAREST,
        }[interpolation]

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        if (h, w) != (self.h, self.w):
            interp = self.interpolation if h > self.h or w > self.w else cv2.INTER_LINEAR
            frame = cv2.resize(frame, (self.w, self.h), interpolation=interp)
        # one C pass: HWC uint8 BGR -> CHW float32 RGB
        x = cv2.dnn.blobFromImage(frame, 1.0, swapRB=True)[0]
        x -= self.mean
        x *= self.inv_std
        return x


def fit_batch(b: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Repeat or cut a batch to a backend's fixed (exported) batch size; callers keep the first
    ``len(b)`` results."""
    if len(b) == batch_size:
        return b
    reps = -(-batch_size // len(b))
    return b.repeat(reps, 1, 1, 1)[:batch_size]


def batched_maps(backend, xs: torch.Tensor) -> list[np.ndarray]:
    """Class maps of any number of inputs through a backend of fixed batch size (the last chunk
    padded by ``fit_batch``); a dynamic backend (eager torch) takes them all at once."""
    b = len(xs) if backend.dynamic else backend.batch_size
    out: list[np.ndarray] = []
    for i in range(0, len(xs), b):
        chunk = xs[i : i + b]
        out.extend(maps_from_logits(backend(fit_batch(chunk, b)), len(chunk)))
    return out


def maps_from_logits(logits: torch.Tensor, n: int | None = None) -> np.ndarray:
    """``(B, H, W)`` uint8 class maps at the input size (the first ``n`` of a padded batch): the
    step after the network that realtime's postprocess stage and the benchmark's e2e figure share."""
    return logits_to_labels(logits)[:n].to(torch.uint8).numpy()


def class_maps(backend, x: torch.Tensor, n: int | None = None) -> np.ndarray:
    """The backend's class maps for a batch (``maps_from_logits`` of its logits)."""
    return maps_from_logits(backend(x), n)


def to_frame_size(maps: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Class maps resized (nearest) to the frame's size, as the mask sink writes them."""
    if maps.shape[1:] == tuple(frame_hw):
        return maps
    h, w = frame_hw
    return np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in maps])


class FramePipeline:
    """``(H, W, 3)`` or ``(B, H, W, 3)`` uint8 BGR frames -> ``(B, H, W)`` uint8 class maps (same H, W)."""

    def __init__(
        self,
        backend,
        mean: Sequence[float],
        std: Sequence[float],
        interpolation: str = DEFAULT_INTERPOLATION,
    ):
        self.backend = backend
        self.size_hw = tuple(backend.input_size)
        self._pre = Preprocess(self.size_hw, mean, std, interpolation)

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack([self._pre(f) for f in frames]))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = frames[None] if frames.ndim == 3 else frames
        return to_frame_size(class_maps(self.backend, self.preprocess(frames)), frames.shape[1:3])
