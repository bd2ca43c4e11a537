"""A temporal filter at inference, so labels stop flickering; any backend works (int8 and OpenVINO
included: it reads the logits, no second model). Two filters:

- ``flow`` (what ``temporal=auto`` prefers): **motion-compensated hysteresis**. The previous frame's
  class map is carried onto this frame by optical flow, and a pixel keeps its carried label unless
  this frame's best class beats that label's logit by more than ``margin``; pixels the flow leaves
  unexplained (their warped previous gray differs by more than ``motion_threshold``: occlusions,
  bad flow) or that flow in from outside the frame take this frame's own label. The flow and the
  gate work at 1/``stride`` of the model's output (90x120 for 360x480: DIS on 10,800 pixels), the
  decision at full size on the logits the plain argmax reads anyway: about a millisecond on top of
  it. Flicker lives in near-ties between classes (boundaries, look-alike textures): a near-tie keeps
  its previous label, a real change (beyond ``margin``) passes at once, so nothing lags behind.
- ``ema``: an exponential moving average of the class probabilities (softmax or sigmoid), gated by
  frame difference: ``state = p + w * (prior - p)``, ``w = 1 - alpha`` where the frame did not change
  (gray difference at most ``motion_threshold``), else 0; labels are the state's argmax. Full size,
  several times the cost of ``flow``, no motion compensation.

Issue 17's filter blended probabilities along the flow at full size (~10 ms a 360x480 frame on a
2-core Xeon, the stream's second most expensive stage); ``experiments/temporal_filter`` has the two
side by side. A filter's state is sequential: frames must come in capture order (realtime:
``workers=1``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from rtseg.errors import RtsegError
from rtseg.infer.consistency import PRESETS, dis, to_gray
from rtseg.models.output import logits_to_labels

MODES = ("none", "ema", "flow")
#: what ``temporal=auto`` tries, most consistent first (experiments/temporal_filter); it takes the
#: first whose measured cost the stream can afford (rtseg.infer.temporal_choice)
AUTO_ORDER = ("flow", "ema", "none")
AUTO_MODE = AUTO_ORDER[0]

log = logging.getLogger("rtseg.infer")


@dataclass
class FilterConfig:
    """conf/realtime.yaml ``temporal`` (the mode) and ``temporal_filter`` (the knobs)."""

    mode: str = "none"
    alpha: float = 0.3  # ema: weight of the current frame (1: no smoothing)
    motion_threshold: float = 24.0  # gray levels; larger differences reset a pixel to the frame
    flow_preset: str = "ultrafast"
    margin: float = 1.0  # flow: logits by which a new class must beat the carried label
    stride: int = 4  # flow: the flow and the gate work at 1/stride of the output size
    auto_max_share: float = 0.15  # auto on files: a filter may cost this share of the frame time
    auto_probe_seconds: float = 2.0  # auto: the stream run with and without filters (0: alone only)
    requested: str = ""  # what the config said (auto: chosen by measurement, temporal_choice.py)
    reason: str = ""  # why auto chose it
    cost: dict | None = None  # auto: the figures it chose by (end to end and isolated)

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
        known = {k for k in cls.__annotations__ if k not in ("mode", "requested", "reason", "cost")}
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
        if float(cfg.margin) < 0:
            raise RtsegError(f"temporal_filter.margin={cfg.margin} must be >= 0")
        if not float(cfg.auto_probe_seconds) >= 0:
            raise RtsegError(
                f"temporal_filter.auto_probe_seconds={cfg.auto_probe_seconds} must be >= 0"
            )
        if int(cfg.stride) < 1:
            raise RtsegError(f"temporal_filter.stride={cfg.stride} must be >= 1")
        if cfg.flow_preset not in PRESETS:
            raise RtsegError(
                f"temporal_filter.flow_preset={cfg.flow_preset} is not one of {', '.join(PRESETS)}"
            )
        if cfg.mode != "none" and workers > 1:
            raise RtsegError(
                f"temporal={cfg.mode} keeps one state across consecutive frames: it needs "
                f"workers=1 (got workers={workers})"
            )
        cfg.alpha, cfg.margin = float(cfg.alpha), float(cfg.margin)
        cfg.auto_probe_seconds = float(cfg.auto_probe_seconds)
        cfg.motion_threshold, cfg.stride = float(cfg.motion_threshold), int(cfg.stride)
        return cfg

    def describe(self) -> dict:
        return asdict(self)


def make_filter(cfg: FilterConfig, size_hw: tuple[int, int]) -> TemporalFilter | None:
    """A fresh filter (no state) for the model's output size, or None for ``temporal=none``."""
    if cfg.mode == "none":
        return None
    return (FlowHold if cfg.mode == "flow" else EmaFilter)(cfg, size_hw)


class TemporalFilter:
    """Stateful: ``cue(frame)`` (any thread, no state) then ``maps(logits, cues)`` in frame order."""

    def __init__(self, cfg: FilterConfig, size_hw: tuple[int, int]):
        self.cfg = cfg
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))
        self.cue_hw = self.size_hw  # the size of the gray cues the filter compares
        self.reset()

    def reset(self) -> None:
        self.prev_gray: np.ndarray | None = None

    def cue(self, frame: np.ndarray) -> np.ndarray:
        """The frame as gray at the filter's size: what the motion gate and the flow need."""
        return to_gray(frame, self.cue_hw)

    def post(self, cues):
        """A postprocess for ``Infer.timed``: ``(logits, n)`` of the next ``n`` frames -> their
        filtered class maps, taking the frames' ``cues`` in order (chunks of a batch included)."""
        pending = iter(cues)
        return lambda logits, n: self.maps(logits[:n], [next(pending) for _ in range(n)])

    def maps(self, logits: torch.Tensor, cues) -> np.ndarray:
        """``(n, H, W)`` uint8 class maps for ``n`` consecutive frames' logits and their cues."""
        return np.stack([self._one(logits[i].float(), cue) for i, cue in enumerate(cues)])

    def _one(self, x: torch.Tensor, gray: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class FlowHold(TemporalFilter):
    """Motion-compensated hysteresis (``temporal=flow``, see the module docstring)."""

    UNSEEN = 255  # the carried label of a pixel that flowed in from outside the frame

    def __init__(self, cfg: FilterConfig, size_hw: tuple[int, int]):
        super().__init__(cfg, size_hw)
        h, w = self.size_hw
        # DIS needs 12 pixels or more a side: small inputs get a smaller stride (16 a side kept)
        self.stride = s = max(1, min(int(cfg.stride), min(h, w) // 16))
        self.cue_hw = (-(-h // s), -(-w // s))
        sh, sw = self.cue_hw
        self._grid = np.stack(np.meshgrid(np.arange(sw), np.arange(sh)), -1).astype(np.float32)
        self._flow = dis(cfg.flow_preset)

    def reset(self) -> None:
        super().reset()
        self.prev: np.ndarray | None = None  # the last class map (uint8, full size)

    def _one(self, x: torch.Tensor, gray: np.ndarray) -> np.ndarray:
        scores = torch.cat([-x, x]) if x.shape[0] == 1 else x  # a tanh channel: two scores
        best, idx = scores.max(0)
        labels = idx.to(torch.uint8).numpy()
        if self.prev is None or self.prev.shape != labels.shape:
            self.prev, self.prev_gray = labels, gray
            return labels
        carried, steady = self._carry(gray)
        # only where holding would change this frame's label (a few % of the pixels) is the
        # carried label's own logit read: it stays if within ``margin`` of this frame's best
        where = cv2.findNonZero(cv2.bitwise_and(cv2.compare(carried, labels, cv2.CMP_NE), steady))
        if where is not None:
            xs, ys = where.reshape(-1, 2).T  # (x, y) points
            held = carried[ys, xs]
            seen = held != self.UNSEEN  # flowed in from outside the frame: nothing to hold
            xs, ys, held = xs[seen], ys[seen], held[seen]
            hold = scores.numpy()[held, ys, xs] >= best.numpy()[ys, xs] - self.cfg.margin
            labels[ys[hold], xs[hold]] = held[hold]
        self.prev, self.prev_gray = labels, gray
        return labels

    def _carry(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The previous class map carried onto this frame (``UNSEEN`` where it flowed in from
        outside), and where the flow explains the frame (255) or not (0), at full size."""
        flow = self._flow.calc(gray, self.prev_gray, None)  # this frame -> where it was before
        where = self._grid + flow
        seen = cv2.remap(self.prev_gray, where, None, cv2.INTER_LINEAR)
        steady = cv2.compare(cv2.absdiff(gray, seen), self.cfg.motion_threshold, cv2.CMP_LE)
        h, w = self.size_hw
        s = self.stride
        # full-size sampling positions straight from the small ones (bilinear): pixel X of a cell
        # of side s sits at s * j + (s - 1) / 2 in the small map's units
        full = cv2.resize(where * s + (s - 1) / 2, (w, h), interpolation=cv2.INTER_LINEAR)
        carried = cv2.remap(
            self.prev, full, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
            borderValue=self.UNSEEN,
        )  # fmt: skip
        return carried, cv2.resize(steady, (w, h), interpolation=cv2.INTER_NEAREST)


class EmaFilter(TemporalFilter):
    """An exponential moving average of the class probabilities (``temporal=ema``)."""

    def reset(self) -> None:
        super().reset()
        self.state: torch.Tensor | None = None  # C x H x W probabilities (C=1: foreground)

    def _one(self, x: torch.Tensor, gray: np.ndarray) -> np.ndarray:
        p = _probabilities(x)
        if self.state is None or self.state.shape != p.shape:
            self.state, self.prev_gray = p, gray
            return logits_to_labels(x[None])[0].to(torch.uint8).numpy()
        keep = cv2.absdiff(gray, self.prev_gray) <= self.cfg.motion_threshold
        w = torch.from_numpy(keep).to(p.dtype).mul_(1.0 - self.cfg.alpha)
        self.state = torch.lerp(p, self.state, w)  # p + w * (prior - p), w broadcast over classes
        self.prev_gray = gray
        return _labels(self.state)


def _probabilities(x: torch.Tensor) -> torch.Tensor:
    """C x H x W logits -> probabilities (a single tanh/logit channel: the sigmoid)."""
    return torch.sigmoid(x) if x.shape[0] == 1 else torch.softmax(x, 0)


def _labels(probs: torch.Tensor) -> np.ndarray:
    """Class map of C x H x W probabilities (max, not argmax: faster, see ``logits_to_labels``)."""
    if probs.shape[0] == 1:
        return (probs[0] > 0.5).to(torch.uint8).numpy()
    return probs.max(0).indices.to(torch.uint8).numpy()
