"""Frame processing shared by everything that runs a network on video frames (realtime, bench e2e, API).

One uint8 BGR frame -> the network's normalised input; a class map -> the frame's size. Keeping
them in one place means the benchmark's end-to-end figure times what realtime runs.
"""

from __future__ import annotations

import cv2
import numpy as np


class Preprocess:
    """BGR frame -> normalised float32 RGB CHW at the model's input size (resized once)."""

    def __init__(self, size: tuple[int, int], mean, std, interpolation: str = "area"):
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
