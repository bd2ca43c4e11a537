"""``source=`` -> the right frame source: synthetic, a camera (index or /dev/videoN), a URL, an image
folder or glob, or a video file."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from omegaconf import DictConfig

from rtseg.errors import SourceError
from rtseg.infer.frames import Preprocess
from rtseg.realtime.image_folder_source import IMAGE_EXTS, ImageFolderSource
from rtseg.realtime.sources import Source
from rtseg.realtime.synthetic_source import SyntheticSource
from rtseg.realtime.video_source import Reconnect, VideoSource
from rtseg.utils.config import to_container
from rtseg.utils.redact import redact

CAMERA_DEVICE = re.compile(r"/dev/video(\d+)")


def source_files(source: Source) -> list[Path]:
    """The files a source reads (a video file, an image folder's images): what no output may replace."""
    if isinstance(source, ImageFolderSource):
        return list(source.files)
    spec = getattr(source, "spec", None)
    if isinstance(spec, str) and "://" not in spec and Path(spec).expanduser().is_file():
        return [Path(spec).expanduser()]
    return []


def open_source(
    spec: str | int,
    max_frames: int | None = None,
    live: bool | None = None,
    synthetic: dict | None = None,
    reconnect: dict | None = None,
    folder_fps: float = 10.0,
    stop_event: threading.Event | None = None,
    rate: float | None = 1.0,
) -> Source:
    """The right source for ``spec``: ``synthetic``, a camera (index or /dev/videoN), a URL, a folder,
    a glob or a video file. ``stop_event`` (set by a signal handler) also aborts a source still opening.
    ``rate``: the speed of a video file played live (1.0: its own frame rate; None: unpaced).
    """
    text = str(spec).strip()
    if text == "synthetic":
        opts = dict(synthetic or {})
        if live is not None:
            opts["live"] = live
        return SyntheticSource(max_frames=max_frames, stop_event=stop_event, **opts)
    retry = Reconnect(**(reconnect or {}))
    camera = CAMERA_DEVICE.fullmatch(text)
    if camera:  # OpenCV's V4L2 backend opens a device by its index
        text = camera.group(1)
    if isinstance(spec, int) or text.isdigit():
        return VideoSource(int(text), live, max_frames, retry, stop_event)
    if "://" in text:
        return VideoSource(text, live, max_frames, retry, stop_event)
    path = Path(text).expanduser()
    if path.is_dir() or (not path.exists() and any(c in text for c in "*?[")):
        return ImageFolderSource(text, max_frames, folder_fps, stop_event)
    if path.is_file() and path.suffix.lower() in IMAGE_EXTS:
        return ImageFolderSource(text, max_frames, folder_fps, stop_event)
    if not path.exists():
        raise SourceError(
            f"cannot open source {redact(text)}: no such file, folder, camera index or URL"
        )
    check_video_file(path)
    return VideoSource(str(path), live, max_frames, retry, stop_event, rate)


# FFmpeg demuxers that read any text file as a video of its characters (notes.txt played as
# 42 frames of rendered text): never what a source= means
TEXT_DEMUXERS = {"tty"}


def check_video_file(path: Path) -> None:
    """Refuse a file that is no video before the model loads: FFmpeg (under OpenCV) plays a text
    file through its tty demuxer and a subtitle file has no picture. A file FFmpeg cannot open at
    all is left to ``VideoSource``, whose one line says why."""
    import av

    try:
        with av.open(str(path)) as container:
            demuxer = container.format.name
            pictures = [s for s in container.streams if s.type == "video"]
    except (av.FFmpegError, OSError, ValueError):
        return
    if demuxer in TEXT_DEMUXERS or not pictures:
        what = "text" if demuxer in TEXT_DEMUXERS else f"{demuxer} with no video stream"
        raise SourceError(
            f"source={path}: not a video (FFmpeg reads it as {what}): expected a video file, a "
            "camera index or /dev/videoN, a stream URL, an image, an image folder or glob, or "
            "synthetic"
        )


def synthetic_options(cfg: DictConfig) -> dict:
    """``synthetic.frames``/``live`` null: a finite clip for file outputs, an endless live scene to watch."""
    opts = to_container(cfg.synthetic)
    watched = cfg.sink in ("http", "window")
    if opts.get("frames") is None and not watched:
        opts["frames"] = SyntheticSource.PERIOD
    if opts.get("live") is None:
        opts["live"] = watched
    return opts


def build_source(
    cfg: DictConfig,
    max_frames: int | None = None,
    stop_event: threading.Event | None = None,
    paced: bool = True,
) -> Source:
    """``paced=False``: a file played live, or the live synthetic scene, is read at full speed
    (calibration frames need no clock; temporal=auto's probe times the stream's own capacity)."""
    synthetic = synthetic_options(cfg)
    if not paced:
        synthetic["live"] = False
    return open_source(
        cfg.source,
        max_frames=cfg.get("max_frames") if max_frames is None else max_frames,
        live=cfg.get("live"),
        synthetic=synthetic,
        reconnect=to_container(cfg.reconnect),
        folder_fps=cfg.get("folder_fps", 10),
        stop_event=stop_event,
        rate=cfg.get("rate", 1.0) if paced else None,
    )


def calibration_frames(cfg: DictConfig, size, mean, std, n=None, stride=None) -> tuple[list, str]:
    """Real frames of the stream itself, preprocessed as the pipeline does: agreement with eager
    fp32 is judged on them (and int8 calibrates on them when the dataset cannot be read).

    Every ``stride``-th of the first ``n`` * ``stride`` frames is taken so the set is not one
    near-identical shot (default: ``calibration.frames`` / ``calibration.stride``).
    """
    import torch

    n = int(n or cfg.calibration.frames)
    stride = int(stride or cfg.calibration.stride)
    source = build_source(cfg, max_frames=n * stride, paced=False)
    pre = Preprocess(size, mean, std, cfg.interpolation)
    frames = []
    try:
        for i, frame in enumerate(source):
            if frame.image is not None and i % stride == 0:
                frames.append(torch.from_numpy(pre(frame.image))[None])
            if len(frames) >= n:
                break
    finally:
        source.close()
    return frames, f"frames of {source.name} (every {stride}th of the first {n * stride})"
