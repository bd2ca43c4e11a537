"""Frame sources: what every source is (iterate for BGR frames, stop from any thread, reopen).

The sources themselves: a video file, camera or stream URL (``video_source``), an image folder or
glob (``image_folder_source``), a synthetic moving scene (``synthetic_source``); ``open_source``
turns ``source=`` into one. Every source yields BGR uint8 frames (OpenCV's order, what the sinks
write) with their index in the source; a corrupt frame is skipped and counted here, so the
pipeline never sees it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("rtseg.realtime")


@dataclass
class Frame:
    index: int  # position in the source (skipped corrupt frames keep their number)
    image: np.ndarray  # H x W x 3 uint8, BGR
    t_capture: float  # time.perf_counter() when it was read


class Source:
    """Base class: iterate for frames; ``stop()`` (any thread) ends the iteration at the next frame."""

    name: str = "source"
    # a live source does not wait for us: the pipeline drops frames instead of lagging
    live: bool = False
    fps: float | None = None
    frame_count: int | None = None  # None when unknown (live streams)
    ended_early: str | None = None  # why a file ended before the frame count its header gave

    def __init__(self, max_frames: int | None = None, stop_event: threading.Event | None = None):
        self.max_frames = max_frames
        self.skipped = 0  # corrupt/unreadable frames
        self.reconnects = 0
        # shared with the caller when given, so a signal can stop a source that is still opening
        self._stop = stop_event or threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def frames(self) -> Iterator[np.ndarray | None]:
        """Raw frames in order; ``None`` stands for a corrupt frame (counted, then skipped)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        emitted = 0
        for index, image in enumerate(self.frames()):
            if self.stopped or (self.max_frames is not None and emitted >= self.max_frames):
                break
            if image is None or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
                self.skipped += 1
                log.warning(
                    "%s: frame %d is corrupt or unreadable: skipped (%d so far)",
                    self.name,
                    index,
                    self.skipped,
                )
                continue
            emitted += 1
            yield Frame(index, image, time.perf_counter())

    @property
    def expected_frames(self) -> int | None:
        n = self.frame_count
        if self.max_frames is not None:
            n = self.max_frames if n is None else min(n, self.max_frames)
        return n

    def reopen(self) -> Source:
        """A fresh source over the same input (the benchmark replays it for the sequential loop)."""
        raise NotImplementedError

    def close(self) -> None:
        pass
