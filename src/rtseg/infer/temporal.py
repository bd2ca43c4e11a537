"""A temporal filter at inference: class probabilities averaged over frames, so labels stop flickering.

Per frame, the class probabilities (softmax of the logits, or the sigmoid of a single channel, so
any backend works, int8 and OpenVINO included: no second model) are blended with the filter's
state, an exponential moving average::

    state = p + w * (prior - p),   w = (1 - alpha) where the prior can be trusted, else 0

- ``ema``: the prior is the previous state where the frame did not change (gray difference at most
  ``motion_threshold``); where it changed, the current frame alone decides (motion gating).
- ``flow``: the prior is the previous state carried onto the current frame by optical flow (DIS,
  ``flow_preset``, nearest neighbour); pixels that flow out of the frame, or whose warped previous frame
  differs by more than ``motion_threshold`` (occlusions, bad flow), take the current frame alone.

The state is kept at the model's output size, planar (C x H x W, as the logits come): softmax,
warp, blend and the class map cost about 3-4 times the plain argmax they replace (11 classes at
360x480, measured on a loaded 2-core EPYC; a state at half resolution was no cheaper, the pooling
and the extra full-resolution argmax eating the saving, and smoothed less). The state is
sequential: frames must come in capture order (realtime: ``workers=1``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from rtseg.errors import RtsegError
from rtseg.infer.consistency import PRESETS, backward_maps, dis, to_gray
from rtseg.models.output import logits_to_labels

MODES = ("none", "ema", "flow")
#: what ``temporal=auto`` (the default) runs with one inference worker: it raised TC on the dash-cam
#: clip and the synthetic video without lowering the stream mIoU (experiments/temporal_filter)
AUTO_MODE = "flow"

log = logging.getLogger("rtseg.infer")


@dataclass
class FilterConfig:
    """conf/realtime.yaml ``temporal`` (the mode) and ``temporal_filter`` (the knobs)."""

    mode: str = "none"
    alpha: float = 0.3  # weight of the current frame (1: no smoothing)
    motion_threshold: float = 24.0  # gray levels; larger differences reset a pixel to the frame
    flow_preset: str = "ultrafast"
    requested: str = ""  # what the config said (auto resolves by the worker count)

    @classmethod
    def from_cfg(cls, mode, opts=None, workers: int = 1) -> FilterConfig:
        """Validated, bad values as one ``RtsegError`` line. The state is sequential (frames
        finishing out of order would blend the wrong neighbours): ``auto`` is ``AUTO_MODE`` with one
        worker and off with more; a filter named explicitly with ``workers`` > 1 is refused."""
        opts = dict(opts or {})
        requested = "none" if mode is None else str(mode)
        mode = requested
        if requested == "auto":
            mode = AUTO_MODE if workers <= 1 else "none"
            if workers > 1:
                log.info(
                    "temporal=auto: no filter with workers=%d (its state is sequential)", workers
                )
        known = {k for k in cls.__annotations__ if k not in ("mode", "requested")}
        unknown = sorted(set(opts) - known)
        if unknown:
            raise RtsegError(f"temporal_filter: unknown key(s) {', '.join(unknown)}")
        cfg = cls(mode=mode, requested=requested, **opts)
        if cfg.mode not in MODES:
            raise RtsegError(f"temporal={cfg.mode} is not one of auto, {', '.join(MODES)}")
        if not 0 < float(cfg.alpha) <= 1:
            raise RtsegError(f"temporal_filter.alpha={cfg.alpha} must be in (0, 1]")
        if float(cfg.motion_threshold) < 0:
            raise RtsegError(
                f"temporal_filter.motion_threshold={cfg.motion_threshold} must be >= 0"
            )
        if cfg.flow_preset not in PRESETS:
            raise RtsegError(
                f"temporal_filter.flow_preset={cfg.flow_preset} is not one of {', '.join(PRESETS)}"
            )
        if cfg.mode != "none" and workers > 1:
            raise RtsegError(
                f"temporal={cfg.mode} keeps one state across consecutive frames: it needs "
                f"workers=1 (got workers={workers})"
            )
        cfg.alpha = float(cfg.alpha)
        cfg.motion_threshold = float(cfg.motion_threshold)
        return cfg

    def describe(self) -> dict:
        return asdict(self)


def make_filter(cfg: FilterConfig, size_hw: tuple[int, int]) -> TemporalFilter | None:
    """A fresh filter (no state) for the model's output size, or None for ``temporal=none``."""
    return None if cfg.mode == "none" else TemporalFilter(cfg, size_hw)


class TemporalFilter:
    """Stateful: ``cue(frame)`` (any thread, no state) then ``maps(logits, cues)`` in frame order."""

    def __init__(self, cfg: FilterConfig, size_hw: tuple[int, int]):
        if cfg.mode == "none":
            raise ValueError("temporal=none needs no filter")
        self.cfg = cfg
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))
        self._flow = dis(cfg.flow_preset) if cfg.mode == "flow" else None
        self.reset()

    def reset(self) -> None:
        self.state: torch.Tensor | None = None  # C x h x w probabilities (C=1: foreground)
        self.prev_gray: np.ndarray | None = None

    def cue(self, frame: np.ndarray) -> np.ndarray:
        """The frame as gray at the model's size: what the motion gate and the flow need."""
        return to_gray(frame, self.size_hw)

    def post(self, cues):
        """A postprocess for ``Infer.timed``: ``(logits, n)`` of the next ``n`` frames -> their
        filtered class maps, taking the frames' ``cues`` in order (chunks of a batch included)."""
        pending = iter(cues)
        return lambda logits, n: self.maps(logits[:n], [next(pending) for _ in range(n)])

    def maps(self, logits: torch.Tensor, cues) -> np.ndarray:
        """``(n, H, W)`` uint8 class maps for ``n`` consecutive frames' logits and their cues."""
        return np.stack([self._one(logits[i : i + 1], cue) for i, cue in enumerate(cues)])

    def _one(self, logits: torch.Tensor, gray: np.ndarray) -> np.ndarray:
        x = logits[0].float()
        p = _probabilities(x)
        if self.state is None or self.state.shape != p.shape:
            self.state, self.prev_gray = p, gray
            return logits_to_labels(x[None])[0].to(torch.uint8).numpy()
        prior, keep = self._prior(gray)
        w = torch.from_numpy(keep).to(p.dtype).mul_(1.0 - self.cfg.alpha)
        self.state = torch.lerp(p, prior, w)  # p + w * (prior - p), w broadcast over classes
        self.prev_gray = gray
        return _labels(self.state)

    def _prior(self, gray: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """The previous state as seen from this frame, and where it may be trusted."""
        thr = self.cfg.motion_threshold
        if self._flow is None:
            return self.state, cv2.absdiff(gray, self.prev_gray) <= thr
        map_x, map_y, inside = backward_maps(self._flow, gray, self.prev_gray)
        seen = cv2.remap(self.prev_gray, map_x, map_y, cv2.INTER_LINEAR)
        return _warp(self.state, map_x, map_y), inside & (cv2.absdiff(gray, seen) <= thr)


def _probabilities(x: torch.Tensor) -> torch.Tensor:
    """C x H x W logits -> probabilities (a single tanh/logit channel: the sigmoid)."""
    return torch.sigmoid(x) if x.shape[0] == 1 else torch.softmax(x, 0)


def _labels(probs: torch.Tensor) -> np.ndarray:
    """Class map of C x H x W probabilities (max, not argmax: faster, see ``logits_to_labels``)."""
    if probs.shape[0] == 1:
        return (probs[0] > 0.5).to(torch.uint8).numpy()
    return probs.max(0).indices.to(torch.uint8).numpy()


def _warp(state: torch.Tensor, map_x: np.ndarray, map_y: np.ndarray) -> torch.Tensor:
    """The C x h x w state carried by the flow, nearest neighbour, plane by plane (the planar
    layout of the logits: no interleaved copy)."""
    fixed, _ = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2, nninterpolation=True)
    src = state.numpy()
    out = np.empty_like(src)
    for c in range(len(src)):
        cv2.remap(
            src[c], fixed, None, cv2.INTER_NEAREST, dst=out[c], borderMode=cv2.BORDER_REPLICATE
        )
    return torch.from_numpy(out)
