"""Temporal consistency of segmented video: how much of each mask changes where nothing moved.

Two figures per pair of consecutive masks:
- **change rate**: share of pixels whose class differs from the previous mask (raw flicker, which
  also counts every pixel that really moved);
- **TC** (temporal consistency, as in Liu et al., "Efficient Semantic Video Segmentation with
  Per-frame Inference", ECCV 2020): optical flow (OpenCV DIS, medium preset) from the current
  frame to the previous one carries the previous mask onto the current frame (nearest neighbour);
  TC is the share of pixels whose class equals the warped previous class, over the pixels whose
  flow stays inside the frame. Motion is compensated, so what is left is flicker.

The flow helpers are shared with the temporal filter (``rtseg.infer.temporal``).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def dis(preset: str = "medium") -> cv2.DISOpticalFlow:
    if preset not in PRESETS:
        raise ValueError(f"optical flow preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    return cv2.DISOpticalFlow_create(PRESETS[preset])


def to_gray(frame: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """A BGR frame as uint8 gray at ``size_hw``: converted first, then resized linearly (area
    beyond 2x, against aliasing). 960x540 -> 480x360 took 0.5 ms against 3 ms for an area
    resize of the colour frame (2-core EPYC): it runs once per frame in the pipeline."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    h, w = size_hw
    if gray.shape != (h, w):
        shrink = max(gray.shape[0] / h, gray.shape[1] / w)
        interp = cv2.INTER_AREA if shrink > 2 else cv2.INTER_LINEAR
        gray = cv2.resize(gray, (w, h), interpolation=interp)
    return gray


def backward_maps(
    flow_calc: cv2.DISOpticalFlow, cur: np.ndarray, prev: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(map_x, map_y, inside) for ``cv2.remap``: where each pixel of ``cur`` was in ``prev``.

    ``inside`` is False for pixels whose flow leads out of the previous frame (nothing to compare).
    """
    flow = flow_calc.calc(cur, prev, None)
    h, w = cur.shape
    map_x = flow[..., 0] + np.arange(w, dtype=np.float32)[None, :]
    map_y = flow[..., 1] + np.arange(h, dtype=np.float32)[:, None]
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    return map_x, map_y, inside


def warp_nearest(prev: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    return cv2.remap(prev, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)


def temporal_consistency(
    masks: Sequence[np.ndarray], grays: Sequence[np.ndarray], preset: str = "medium"
) -> dict:
    """TC and change rate of consecutive ``masks`` (uint8 HxW) over their frames ``grays`` (uint8 HxW, same size).

    Both are means over the pairs (each pair counts the same, whatever its valid area); ``tc_min``
    is the worst pair. Fewer than two masks: the figures are None.
    """
    if len(masks) != len(grays):
        raise ValueError(f"{len(masks)} masks but {len(grays)} frames")
    flow_calc = dis(preset)
    tcs, changes = [], []
    for i in range(1, len(masks)):
        prev, cur = masks[i - 1], masks[i]
        if prev.shape != cur.shape or grays[i].shape != cur.shape:
            raise ValueError(f"pair {i}: masks {prev.shape}, {cur.shape}, frame {grays[i].shape}")
        changes.append(float(np.mean(prev != cur)))
        map_x, map_y, inside = backward_maps(flow_calc, grays[i], grays[i - 1])
        warped = warp_nearest(prev, map_x, map_y)
        n = int(inside.sum())
        tcs.append(float(np.sum((warped == cur) & inside)) / n if n else 1.0)
    if not tcs:
        return {"tc": None, "tc_min": None, "change_rate": None, "pairs": 0}
    return {
        "tc": float(np.mean(tcs)),
        "tc_min": float(np.min(tcs)),
        "change_rate": float(np.mean(changes)),
        "pairs": len(tcs),
    }
