"""How good the masks are on the stream itself, not on a dataset: what a person watching it sees.

- Temporal consistency and the raw change rate of consecutive masks (``benchmark=true``): the
  pipeline hands every written frame to a ``StreamRecorder``, which keeps a small copy (mask and gray
  frame at most ``max_side`` pixels on a side, the first ``max_frames`` frames); TC is computed from
  them after the run (``rtseg.infer.consistency``), so it costs the pipeline's timing nothing but
  that copy, made after each frame's timing is taken.
- mIoU over the stream (``benchmark=true``, a source that knows its labels: ``source=synthetic``):
  one confusion matrix over the recorded frames, at the masks' resolution.
- Agreement of a reduced-precision backend (int8, bf16, fp16) with the eager fp32 network on a few
  frames of the stream (every run): int8 is accepted on the checkpoint's own labelled data, but
  a user's camera can be far from it; a warning when below ``stream_agreement.min``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import cv2
import numpy as np
import torch

from rtseg.errors import RtsegError
from rtseg.infer.consistency import temporal_consistency, to_gray
from rtseg.infer.quality import agreement, reference_labels

log = logging.getLogger("rtseg.realtime")

REDUCED_PRECISION = ("int8", "bf16", "fp16")


class StreamRecorder:
    """``record(index, frame, labels)`` for the pipeline: keeps small masks and gray frames, in order."""

    def __init__(self, max_frames: int = 600, max_side: int = 480):
        self.max_frames, self.max_side = int(max_frames), int(max_side)
        self.indices: list[int] = []
        self.masks: list[np.ndarray] = []
        self.grays: list[np.ndarray] = []
        self.truncated = False

    def __call__(self, index: int, frame: np.ndarray, labels: np.ndarray) -> None:
        if len(self.masks) >= self.max_frames:
            self.truncated = True
            return
        h, w = labels.shape
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1:
            size = (max(round(w * scale), 1), max(round(h * scale), 1))
            labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
        self.indices.append(int(index))
        self.masks.append(np.array(labels, np.uint8, copy=True))
        self.grays.append(to_gray(frame, labels.shape))


def stream_report(rec: StreamRecorder | None, source, class_names, preset="medium") -> dict | None:
    """realtime.json's ``stream_quality``: TC and change rate, and the stream mIoU where the
    source knows its labels (None there otherwise); None with fewer than two frames recorded."""
    tc = consistency(rec, preset) if rec is not None else None
    if tc is None:
        return None
    miou = stream_miou(rec, source, class_names)
    log.info(
        "stream quality: TC %.2f%%, change rate %.2f%% (%d frames at %dx%d)%s",
        100 * tc["tc"],
        100 * tc["change_rate"],
        tc["frames"],
        *tc["size"],
        f"; stream mIoU {100 * miou['miou']:.2f}" if miou and miou["miou"] is not None else "",
    )
    return {**tc, "miou": miou}


def consistency(rec: StreamRecorder, preset: str = "medium") -> dict | None:
    """TC and change rate of the recorded masks, with what they were measured on."""
    if len(rec.masks) < 2:
        return None
    res = temporal_consistency(rec.masks, rec.grays, preset)
    return {
        **res,
        "frames": len(rec.masks),
        "size": list(rec.masks[0].shape),
        "flow": f"OpenCV DIS {preset}, current -> previous frame; previous mask warped nearest",
        "note": _scope(rec),
    }


def stream_miou(rec: StreamRecorder, source, class_names) -> dict | None:
    """mIoU of the recorded masks against the source's own labels (one confusion matrix), or None
    when the source has none; when the model's classes are not the source's, why not."""
    from rtseg.metrics import SegMetrics

    if not hasattr(source, "label") or not rec.masks:
        return None
    names = list(getattr(source, "class_names", ()))
    if list(class_names or ()) != names:
        return {"miou": None, "reason": f"the model's classes are not the source's ({names})"}
    metric = SegMetrics(len(names))
    for index, mask in zip(rec.indices, rec.masks, strict=True):
        target = source.label(index, mask.shape)
        metric.update(torch.from_numpy(mask)[None].long(), torch.from_numpy(target)[None].long())
    scores = metric.compute()
    iou = [None if math.isnan(v) else float(v) for v in scores["iou"].tolist()]
    return {
        "miou": float(scores["miou"]),
        "pixel_acc": float(scores["acc"]),
        "iou": dict(zip(names, iou, strict=True)),
        "frames": len(rec.masks),
        "size": list(rec.masks[0].shape),
        "note": _scope(rec),
    }


def _scope(rec: StreamRecorder) -> str:
    h, w = rec.masks[0].shape
    first = f"the first {len(rec.masks)} frames written" if rec.truncated else "every frame written"
    return f"{first}, masks at {h}x{w} (the model's output, at most stream_quality.max_side)"


def stream_agreement(
    backend, net, read_frames: Callable[[], tuple[list, str]], min_agreement: float
) -> dict | None:
    """Agreement of a reduced-precision ``backend`` with the eager fp32 ``net`` on frames of the
    stream (``read_frames() -> (list of (1, 3, H, W) inputs, description)``), mean and worst frame;
    a warning below ``min_agreement``. None for fp32 backends."""
    if backend.precision not in REDUCED_PRECISION:
        return None
    if net is None:
        return {"agreement": None, "reason": "no fp32 network to compare with (an exported file)"}
    try:
        frames, described = read_frames()
    except RtsegError as e:  # e.g. a camera that cannot be opened twice
        return {"agreement": None, "reason": f"frames of the source could not be read: {e}"}
    if not frames:
        return {"agreement": None, "reason": "no frames could be read from the source"}
    ref = reference_labels(net)
    per_frame = [agreement(backend, ref, [x]) for x in frames]
    res = {
        "agreement": float(np.mean(per_frame)),
        "worst_frame": float(np.min(per_frame)),
        "frames": len(per_frame),
        "frames_source": described,
        "min": float(min_agreement),
        "backend": f"{backend.name} ({backend.precision})",
    }
    res["below_min"] = res["agreement"] < res["min"]
    if res["below_min"]:
        log.warning(
            "%s: its masks agree with eager fp32 on %.1f%% of the pixels of this stream (worst "
            "frame %.1f%%, %d frames), below stream_agreement.min=%.1f%%: consider backend=openvino (fp32)",
            res["backend"],
            100 * res["agreement"],
            100 * res["worst_frame"],
            res["frames"],
            100 * res["min"],
        )
    else:
        log.info(
            "%s agrees with eager fp32 on %.1f%% of this stream's pixels (worst frame %.1f%%)",
            res["backend"],
            100 * res["agreement"],
            100 * res["worst_frame"],
        )
    return res
