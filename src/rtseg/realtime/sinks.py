"""Where overlaid frames (and optionally the raw masks) go: an mp4 file, a frame folder, a window,
a local web page (``realtime/http.py``), nothing.

Every sink has ``write(index, frame, labels)`` and ``close()``; the pipeline closes them on every
exit path (end of stream, Ctrl-C, SIGTERM, error), so an mp4 is always finalised and playable.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from rtseg.errors import SinkError
from rtseg.infer.frames import to_frame_size
from rtseg.realtime.video import open_video_writer

log = logging.getLogger("rtseg.realtime")


class Sink:
    path: Path | None = None
    frames = 0

    def write(self, index: int, frame: np.ndarray, labels: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NullSink(Sink):
    def write(self, index, frame, labels) -> None:
        self.frames += 1


class VideoFileSink(Sink):
    """An mp4 at the source's resolution and frame rate; opened at the first frame, when its size is known.

    ``codec=h264`` (browser-playable, via PyAV) falls back to ``mp4v`` when no H.264 encoder exists.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | None = 30.0,
        codec: str = "h264",
        preset: str = "ultrafast",
        crf: int = 23,
    ):
        if codec not in ("h264", "mp4v"):
            raise SinkError(f"video.codec={codec} is not one of h264, mp4v")
        self.path = Path(path)
        self.fps = float(fps or 30.0)
        self.codec, self.h264 = codec, {"preset": preset, "crf": crf}
        self.writer = None
        self.size: tuple[int, int] | None = None

    def write(self, index, frame, labels) -> None:
        h, w = frame.shape[:2]
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.writer = open_video_writer(
                    self.path, self.fps, (w, h), self.codec, **self.h264
                )
            except Exception as e:  # PyAV and OpenCV raise their own types
                raise SinkError(f"cannot write video {self.path} ({w}x{h}): {e}") from e
            self.size = (w, h)
        elif (w, h) != self.size:  # an image folder with mixed sizes: keep the first size
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class FolderSink(Sink):
    """One image per frame, named by the frame's index in the source."""

    def __init__(self, path: str | Path, ext: str = "jpg"):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.ext = ext.lstrip(".")

    def write(self, index, frame, labels) -> None:
        cv2.imwrite(str(self.path / f"{index:06d}.{self.ext}"), frame)
        self.frames += 1


class WindowSink(Sink):
    """An OpenCV window; 'q' or Esc asks the pipeline to stop (``on_quit``)."""

    def __init__(self, title: str = "rtseg", on_quit=None):
        self.title, self.on_quit = title, on_quit

    @staticmethod
    def available() -> bool:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt"):
            return False
        info = cv2.getBuildInformation()
        gui = next((ln for ln in info.splitlines() if ln.strip().startswith("GUI:")), "GUI: NONE")
        return "NONE" not in gui

    def write(self, index, frame, labels) -> None:
        cv2.imshow(self.title, frame)
        if (cv2.waitKey(1) & 0xFF) in (ord("q"), 27) and self.on_quit:
            self.on_quit()
        self.frames += 1

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass


class MaskSink(Sink):
    """The class map of every frame at the source's resolution, as PNG (uint8 ids) or npz, for downstream use."""

    def __init__(self, path: str | Path, fmt: str = "png"):
        if fmt not in ("png", "npz"):
            raise SinkError(f"mask_export must be png or npz, got {fmt!r}")
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.fmt = fmt

    def write(self, index, frame, labels) -> None:
        labels = to_frame_size(labels[None], frame.shape[:2])[0]
        if self.fmt == "png":
            cv2.imwrite(str(self.path / f"{index:06d}.png"), labels)
        else:
            np.savez_compressed(self.path / f"{index:06d}.npz", mask=labels)
        self.frames += 1
