"""The built-in moving scene: a camera panning and zooming over one procedural street scene, with
its label map for every frame, so ``source=synthetic`` is a video with ground truth and no files."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np

from rtseg.realtime.sources import Source


class SyntheticSource(Source):
    """A camera panning and zooming over one procedural street scene: a moving video with no files.

    The scene is rendered once at ``overscan`` times the frame size; each frame is a moving crop of it
    resized to ``size``. With ``live=true`` frames come at ``fps`` in real time, like a camera.
    ``frames=None`` runs until stopped (a demo to watch), repeating the motion every ``PERIOD`` frames.
    The scene's label map goes through the same crops: ``label(index)`` is frame ``index``'s ground
    truth, so the stream can be scored (realtime's stream mIoU). ``scene``: a rendered
    ``(BGR image, label map)`` to reuse.
    """

    PERIOD = 150

    def __init__(
        self,
        frames: int | None = 120,
        size: tuple[int, int] = (360, 480),
        fps: float = 30.0,
        seed: int = 0,
        overscan: float = 1.5,
        live: bool = False,
        max_frames: int | None = None,
        scene: tuple[np.ndarray, np.ndarray] | None = None,
        stop_event: threading.Event | None = None,
    ):
        super().__init__(max_frames, stop_event)
        from rtseg.data.synthetic import render_scene

        self.n, self.size, self.fps, self.seed, self.overscan, self.live = (
            None if frames is None else int(frames),
            tuple(size),
            float(fps),
            seed,
            overscan,
            live,
        )
        self.name = f"synthetic ({self.n or 'endless'} frames, {self.size[0]}x{self.size[1]}, {self.fps:g} fps)"
        self.frame_count = self.n
        big_h, big_w = int(self.size[0] * overscan), int(self.size[1] * overscan)
        if scene is None:
            rgb, labels = render_scene(np.random.default_rng(seed), big_h, big_w)
            scene = (cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), labels)
        self.scene, self.scene_labels = scene

    def _view(self, i: int) -> tuple[slice, slice]:
        """The crop of the big scene that frame ``i`` shows (pan and zoom, periodic)."""
        big_h, big_w = self.scene.shape[:2]
        phase = 2 * np.pi * i / max(self.n or self.PERIOD, 1)
        # fraction of the big scene in view: zooms out and back in over the clip
        zoom = 1 / self.overscan + (1 - 1 / self.overscan) * 0.5 * (1 - np.cos(phase))
        ch, cw = max(int(big_h * zoom), 2), max(int(big_w * zoom), 2)
        y = int((big_h - ch) * 0.5 * (1 + np.sin(phase)))
        x = int((big_w - cw) * 0.5 * (1 + np.sin(2 * phase)))
        return slice(y, y + ch), slice(x, x + cw)

    @property
    def class_names(self) -> list[str]:
        """What the ids of ``label()`` mean."""
        from rtseg.data.synthetic import CLASS_NAMES

        return list(CLASS_NAMES)

    def label(self, index: int, size_hw: tuple[int, int] | None = None) -> np.ndarray:
        """Frame ``index``'s label map (uint8 class ids) at ``size_hw`` (default: the frame size),
        cut from the scene's labels by the frame's own crop, resized nearest (pixel centres
        aligned as in the frame's linear resize)."""
        h, w = size_hw or self.size
        ys, xs = self._view(index)
        return cv2.resize(self.scene_labels[ys, xs], (w, h), interpolation=cv2.INTER_NEAREST_EXACT)

    def frames(self) -> Iterator[np.ndarray]:
        h, w = self.size
        t0 = time.perf_counter()
        for i in itertools.count() if self.n is None else range(self.n):
            ys, xs = self._view(i)
            if self.live:  # pace like a camera: frame i is available at t0 + i / fps
                wait = t0 + i / self.fps - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            yield cv2.resize(self.scene[ys, xs], (w, h), interpolation=cv2.INTER_LINEAR)

    def reopen(self) -> SyntheticSource:
        return SyntheticSource(
            self.n,
            self.size,
            self.fps,
            self.seed,
            self.overscan,
            self.live,
            self.max_frames,
            scene=(self.scene, self.scene_labels),
        )
