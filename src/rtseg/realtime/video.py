"""Writing an mp4 that browsers play: H.264 (yuv420p) through PyAV, else OpenCV's mp4v.

OpenCV's pip wheels cannot encode H.264 (licensing), and browsers do not play MPEG-4 Part 2
(``mp4v``). PyAV's wheels bundle FFmpeg with libx264 (or openh264), so H.264 comes from there; when
no H.264 encoder is present the writer falls back to mp4v with one warning line. The output keeps
the frames' size, odd ones included (see ``AvWriter``; OpenCV's mp4v writer would crop them, so an
odd size in mp4v goes through PyAV's MPEG-4 encoder when PyAV is there).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("rtseg.realtime")


def h264_encoder() -> str | None:
    """Name of an H.264 encoder PyAV can use here, or None (PyAV missing or built without one)."""
    try:
        import av
    except ImportError:
        return None
    for name in ("libx264", "libopenh264"):
        if name in av.codec.codecs_available:
            return name
    return None


class AvWriter:
    """Frames (BGR uint8, one size) -> an mp4 through PyAV at ``fps``, timestamps frame / fps.

    H.264 is yuv420p (what browsers play) when the size is even. 4:2:0 cannot hold an odd width or
    height, so an odd size is kept exactly in yuv444p with libx264 (VLC, ffmpeg, Firefox and Chrome
    on most systems play it; Safari does not): the output always has the source's size. Only an
    encoder without 4:4:4 (openh264) pads one edge pixel, said in one warning.
    """

    def __init__(
        self,
        path: Path,
        fps: float,
        size: tuple[int, int],
        encoder: str,
        preset: str = "ultrafast",
        crf: int = 23,
    ):
        import av

        w, h = size
        odd = bool(w % 2 or h % 2)
        self.codec = "mp4v" if encoder == "mpeg4" else "h264"
        self.pix_fmt = "yuv444p" if odd and encoder == "libx264" else "yuv420p"
        # only openh264 cannot keep an odd size: pad one edge pixel there
        self.pad = (h % 2, w % 2) if encoder == "libopenh264" else (0, 0)
        if any(self.pad):
            log.warning(
                "%s cannot encode an odd size: %dx%d is written as %dx%d (pip install av brings "
                "libx264, which keeps it)",
                encoder,
                w,
                h,
                w + self.pad[1],
                h + self.pad[0],
            )
        self.container = av.open(str(path), "w", options={"movflags": "+faststart"})
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream(encoder, rate=rate)
        self.stream.width, self.stream.height = w + self.pad[1], h + self.pad[0]
        self.stream.pix_fmt = self.pix_fmt
        if encoder == "libx264":
            self.stream.options = {"preset": str(preset), "crf": str(crf)}
        ctx = self.stream.codec_context  # PyAV's defaults (0: the encoder picks), for the record
        kind = getattr(ctx.thread_type, "name", ctx.thread_type)
        self.threads = {"encoder": encoder, "thread_count": ctx.thread_count, "thread_type": kind}
        self._frame = av.VideoFrame

    def write(self, frame: np.ndarray) -> None:
        if any(self.pad):
            frame = cv2.copyMakeBorder(frame, 0, self.pad[0], 0, self.pad[1], cv2.BORDER_REPLICATE)
        vf = self._frame.from_ndarray(frame, format="bgr24")
        for packet in self.stream.encode(vf):
            self.container.mux(packet)

    def release(self) -> None:
        try:
            for packet in self.stream.encode():  # flush the encoder's delayed frames
                self.container.mux(packet)
        finally:
            self.container.close()


class Mp4vWriter:
    """OpenCV's MPEG-4 Part 2 writer: plays in VLC/ffmpeg, not in browsers."""

    codec = "mp4v"
    threads = {"encoder": "mpeg4 (OpenCV's FFmpeg writer)", "thread_count": None}

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise OSError(f"OpenCV cannot write {path} (mp4v, {size[0]}x{size[1]})")

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame)

    def release(self) -> None:
        self.writer.release()


_warned = False


def open_video_writer(
    path: Path, fps: float, size: tuple[int, int], codec: str = "h264", **h264
) -> AvWriter | Mp4vWriter:
    """``codec=h264``: PyAV when it has an H.264 encoder, else mp4v (one warning per process)."""
    global _warned
    if codec == "h264":
        encoder = h264_encoder()
        if encoder is not None:
            return AvWriter(path, fps, size, encoder, **h264)
        if not _warned:
            log.warning(
                "no H.264 encoder (pip install av): writing mp4v, which browsers do not play"
            )
            _warned = True
    if (size[0] % 2 or size[1] % 2) and _has_pyav():  # OpenCV would crop an odd size
        return AvWriter(path, fps, size, "mpeg4")
    return Mp4vWriter(path, fps, size)


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True
