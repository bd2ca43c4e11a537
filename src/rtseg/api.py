"""The Python API: ``rtseg.load(spec)`` -> a model that segments numpy images.

    import rtseg, numpy as np
    m = rtseg.load("camvid")                 # any checkpoint= spec: best, run folder, .ckpt, name
    labels = m.predict(rgb)                  # HxWx3 uint8 RGB in, HxW uint8 class map out
    labels = m.predict("photo.jpg")          # or an image file (read as the datasets read it), or a PIL image

A file or PIL image is read upright: a phone photo stored sideways with an EXIF orientation is
turned as every viewer turns it, and its class map has the displayed size.

One loaded model may be called from several threads at once (a web service's workers): every
backend gives each call its own mask, identical to a single thread's. eager and ONNX Runtime run
the calls side by side; OpenVINO's calls take turns on its one infer request (a lock held for the
inference and the copy of its output: OpenVINO refuses a busy request and could hand one call
another's output), which costs one thread nothing and threads little, since OpenVINO's latency
mode runs one inference on all its threads. Pre- and post-processing run in the calling threads.
    blended = m.overlay(rgb)                 # the mask over the image, with a legend
    maps = m.predict_batch([rgb1, rgb2])     # one forward pass per batch
    rtseg.load("camvid", tta="flip")         # test-time augmentation (flip; ms = scales)

Images of any size are resized to the model's input size with the realtime pipeline's own
preprocessing (``infer.frames.Preprocess``, linear interpolation by default) and the class map is
resized back (nearest), so what a notebook sees is what rtseg-realtime draws.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rtseg.errors import BackendUnavailable, RtsegError
from rtseg.utils.images import IMAGENET_MEAN, IMAGENET_STD

EXPECTED = "expected an HxWx3 uint8 RGB array (H, W > 0), a PIL image or an image file path"


class SegModel:
    """A trained network behind one inference backend, with its classes and palette."""

    def __init__(self, net, meta: dict, backend, size: tuple[int, int], tta=None):
        from rtseg.infer.frames import Preprocess
        from rtseg.models.tta import TTA
        from rtseg.realtime.overlay import Overlay

        self.net, self.meta, self.backend, self.size = net, meta, backend, tuple(size)
        self.tta = TTA.parse(tta)
        if self.tta:
            from rtseg.infer.backends import Augmented

            try:
                self.backend = Augmented(backend, self.tta)
            except BackendUnavailable as e:
                raise RtsegError(str(e)) from None
        self.classes: list[str] = list(meta.get("class_names") or [])
        self.palette: list[list[int]] = [list(c) for c in meta.get("palette") or []]
        self._pre = Preprocess(
            self.size, meta.get("mean") or IMAGENET_MEAN, meta.get("std") or IMAGENET_STD
        )
        self._overlay = Overlay(self.palette, self.classes, hud=False)

    def __repr__(self) -> str:
        return (
            f"<SegModel {self.meta.get('model')} {len(self.classes)} classes "
            f"{self.size[0]}x{self.size[1]} on {self.backend.name}>"
        )

    @staticmethod
    def _check(image) -> np.ndarray:
        """An HxWx3 uint8 RGB array from an array, a PIL image or an image file path (read with the
        datasets' own reader, as RGB; files and PIL images upright, their EXIF orientation
        applied as viewers apply it); anything else is an ``RtsegError`` saying what is expected,
        never a cv2/numpy error from deep inside the preprocessing."""
        if isinstance(image, str | os.PathLike):
            from rtseg.data.base import read_image

            return read_image(Path(image))  # DataError naming the file when it cannot be read
        if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image, any mode
            from rtseg.data.base import rgb_array, upright

            image = rgb_array(upright(image), f"PIL image ({image.mode})")
        try:
            arr = np.asarray(image)
        except Exception as e:  # noqa: BLE001 - any object numpy cannot take
            raise RtsegError(f"cannot read a {type(image).__name__} as an image: {EXPECTED}") from e
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or 0 in arr.shape[:2]:
            raise RtsegError(f"image of shape {arr.shape} and dtype {arr.dtype}: {EXPECTED}")
        return arr

    def predict_batch(self, images: Sequence) -> list[np.ndarray]:
        """HxW uint8 class maps, one per image (array, PIL image or file path; sizes may differ)."""
        from rtseg.infer.frames import batched_maps, to_frame_size

        if isinstance(images, str | os.PathLike) or hasattr(images, "convert"):
            raise RtsegError("predict_batch takes a list of images: use predict(image) for one")
        images = [self._check(im) for im in images]
        if not images:
            return []
        # the pipeline's preprocessing takes BGR frames
        xs = np.stack([self._pre(np.ascontiguousarray(im[..., ::-1])) for im in images])
        labels = batched_maps(self.backend, torch.from_numpy(xs))
        return [
            to_frame_size(lab[None], im.shape[:2])[0]
            for im, lab in zip(images, labels, strict=True)
        ]

    def predict(self, image) -> np.ndarray:
        """HxW uint8 class map of one image: an HxWx3 uint8 RGB array, a PIL image or a file path."""
        return self.predict_batch([image])[0]

    def overlay(self, image: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """The image (RGB) with its predicted mask blended in and a legend of the classes."""
        image = self._check(image)
        if labels is None:
            labels = self.predict(image)
        else:
            labels = np.asarray(labels)
            if labels.shape != image.shape[:2] or labels.dtype.kind not in "iu":
                raise RtsegError(
                    f"labels of shape {labels.shape} and dtype {labels.dtype}: expected an integer "
                    f"class map of the image's shape {image.shape[:2]}"
                )
            if labels.size and (labels.min() < 0 or labels.max() >= max(len(self.classes), 1)):
                raise RtsegError(
                    f"labels hold classes {labels.min()}..{labels.max()}: expected 0.."
                    f"{len(self.classes) - 1} (this model's {len(self.classes)} classes)"
                )
        bgr = self._overlay.draw(np.ascontiguousarray(image[..., ::-1]), labels)
        return np.ascontiguousarray(bgr[..., ::-1])


def load(
    spec: str | Path = "best",
    backend: str = "eager",
    threads: int | None = None,
    size: Sequence[int] | None = None,
    log_dir: str | Path = "logs",
    tta=None,
) -> SegModel:
    """A trained model ready to ``predict``: ``spec`` is any ``checkpoint=`` value.

    ``tta``: test-time augmentation, ``"flip"`` (any backend), ``"ms"`` / ``"ms_flip"`` (scales:
    eager-like backends) or ``{"flip": True, "scales": [1, 1.5]}`` (``rtseg.models.tta``).

    ``backend`` is any benchmark backend name (eager, onnxruntime, openvino, auto, ...); int8
    calibrates on the data the checkpoint recorded (one line when it cannot be read: export it with
    ``rtseg-export checkpoint=... int8=true data=...`` and load the exported file instead).

    The model is safe to call from several threads on every backend (OpenVINO's calls take turns
    on its infer request; see the module's docstring).
    """
    from rtseg.infer.open import open_model
    from rtseg.models.tta import TTA
    from rtseg.utils.ranges import check_value

    if size is not None and (isinstance(size, str) or len(size) != 2):
        raise RtsegError(f"size={size!r}: expected [H, W] (two numbers) or None")
    check_value("size", None if size is None else list(size))  # the realtime size= range
    check_value("threads", threads)
    TTA.parse(tta)  # a bad tta= before the seconds of opening (and exporting) the model
    # a Path is a path even where it spells a shipped name (Path("./camvid") prints as camvid)
    spec = str(spec.absolute()) if isinstance(spec, Path) else str(spec)
    opened = open_model(spec, backend, size, threads, log_dir=log_dir)
    return SegModel(opened.net, opened.meta, opened.backend, opened.size, tta)
