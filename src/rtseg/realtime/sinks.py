"""Where overlaid frames (and optionally the raw masks) go: an mp4 file, a frame folder, a window,
a local web page (``realtime/http.py``), nothing.

Every sink has ``write(index, frame, labels)`` and ``close()``; the pipeline closes them on every
exit path (end of stream, Ctrl-C, SIGTERM, error), so an mp4 is always finalised and playable.
Every file is written to a temporary name and published at the end without replacing anything
unasked (``rtseg.utils.paths.publish``); ``check_output`` refuses, before anything slow, an output
that is the source, one that exists (unless ``overwrite=true``), one that cannot be a file
(``/dev/full``, a folder) and a file name that is not a video's.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from rtseg.errors import OutputExists, SinkError
from rtseg.infer.frames import to_frame_size
from rtseg.realtime.video import open_video_writer
from rtseg.utils.paths import (
    keep_under_free_name,
    publish,
    remove_stale_temporaries,
    temporary_name,
    write_atomic,
)

log = logging.getLogger("rtseg.realtime")


def check_output(
    output: str | Path, kind: str, inputs: list[Path], overwrite: bool = False
) -> None:
    """Refuse, before anything slow, an ``output=`` that would lose data or cannot be written.

    ``inputs``: the source's files. Never the source itself (also through a symlink or a hard link,
    or a folder sink into the source's folder); an existing output only with ``overwrite=true``
    (rtseg-export never overwrites either); only somewhere a regular file can be: a symlink to
    ``/dev/full`` or a FIFO would crash or hang the encoder after the model has loaded.
    """
    given = Path(output).expanduser()
    target = given.resolve()
    # what a SIGKILLed run left half-written under a hidden name (issue 36)
    for stale in remove_stale_temporaries(target if kind == "folder" else target.parent):
        log.info("removed %s: a temporary file of a run that was killed", stale)
    if kind == "file" and given.suffix.lower() not in VIDEO_EXTS and not target.is_dir():
        raise SinkError(
            f"output={output}: expected a video file name ({', '.join(VIDEO_EXTS)}), not "
            f"{given.suffix or 'a name without an extension'}"
        )
    for src in inputs:
        same = target == src.resolve() or (
            target.exists() and src.exists() and os.path.samefile(target, src)
        )
        if same or (kind == "folder" and target == src.resolve().parent):
            what = "the source itself" if same else f"the folder of the source's {src.name}"
            raise SinkError(
                f"output={output} is {what}: writing there would destroy the input; choose "
                "another output="
            )
    if not (given.exists() or given.is_symlink()):
        return
    if kind == "file" and target.exists() and not target.is_file():
        what = "a folder" if target.is_dir() else f"{target}, not a regular file"
        raise SinkError(f"output={output} is {what}: expected a path for an .mp4 file")
    if kind == "folder" and target.exists() and not target.is_dir():
        raise SinkError(f"output={output} is a file: sink=folder expects a folder")
    if overwrite:
        return
    if kind == "file" and target.exists():
        raise SinkError(
            f"output={output} already exists: pass overwrite=true to replace it (only once the "
            "new video is complete), or choose another output="
        )
    if kind == "folder" and target.is_dir() and any(target.iterdir()):
        raise SinkError(
            f"output={output} already holds files: pass overwrite=true to write into it (frames "
            "with the same names are replaced), or choose another output="
        )


class Sink:
    path: Path | None = None
    frames = 0
    failed = False  # its output could not be written (then it is not among the run's outputs)
    note = ""  # what became of the output when the run did not end normally (said in the summary)

    def write(self, index: int, frame: np.ndarray, labels: np.ndarray) -> None:
        raise NotImplementedError

    def close(self, complete: bool = True) -> None:
        """``complete``: the run ended normally (the source's end or max_frames), not by a signal,
        a lost source or a failure."""


class NullSink(Sink):
    def write(self, index, frame, labels) -> None:
        self.frames += 1


VIDEO_EXTS = (".mp4", ".m4v", ".mov", ".mkv", ".avi")


class VideoFileSink(Sink):
    """An mp4 at the source's resolution and frame rate; opened at the first frame, when its size is known.

    ``codec=h264`` (browser-playable, via PyAV) falls back to ``mp4v`` when no H.264 encoder exists.
    The video is written to a temporary name beside ``path`` and published when it is finalised
    (``rtseg.utils.paths.publish``): ``path`` only ever holds a whole video, a name another run took
    meanwhile is never replaced (this run's video is kept under a free name, said in one line), and
    with ``overwrite=true`` an existing video is replaced only by a complete one: a run stopped by
    Ctrl-C or a failure leaves it untouched and keeps its partial video beside it. A writer failure
    (disk full) removes the partial file. A symlink is followed (the video goes where it points).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | None = 30.0,
        codec: str = "h264",
        preset: str = "ultrafast",
        crf: int = 23,
        overwrite: bool = False,
    ):
        if codec not in ("h264", "mp4v"):
            raise SinkError(f"video.codec={codec} is not one of h264, mp4v")
        self.path = Path(path)
        self.fps = float(fps or 30.0)
        self.codec, self.h264 = codec, {"preset": preset, "crf": crf}
        self.overwrite = bool(overwrite)
        self.writer = None
        self.size: tuple[int, int] | None = None
        self.tmp: Path | None = None  # the video being written, published by close()
        self.encoder_threads: dict | None = None  # the encoder's threads (realtime.json)

    def write(self, index, frame, labels) -> None:
        h, w = frame.shape[:2]
        if self.writer is None:
            target = self.path.expanduser().resolve()
            if target.exists() and not target.is_file():
                raise SinkError(f"cannot write video {self.path}: {target} is not a regular file")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                self.tmp = temporary_name(target)
                self.writer = open_video_writer(self.tmp, self.fps, (w, h), self.codec, **self.h264)
                self.encoder_threads = self.writer.threads
            except Exception as e:  # PyAV and OpenCV raise their own types
                self._discard()
                self.failed = True
                raise SinkError(f"cannot write video {self.path} ({w}x{h}): {e}") from e
            self.size = (w, h)
        elif (w, h) != self.size:  # an image folder with mixed sizes: keep the first size
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        try:
            self.writer.write(frame)
        except Exception as e:  # av.error.OSError [Errno 28] on a full disk, and the like
            self._fail(e)
        self.frames += 1

    def close(self, complete: bool = True) -> None:
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        try:
            writer.release()
        except Exception as e:  # the encoder's last frames and the index did not fit
            self._fail(e)
        self._publish(complete)

    def _publish(self, complete: bool) -> None:
        """The finished temporary video onto ``path`` (see the class docstring for when it is not)."""
        target = self.path.expanduser().resolve()
        frames = f"{self.frames} frame{'s' * (self.frames != 1)}"
        if not complete and target.exists():  # overwrite=true, stopped early: keep the old video
            kept = keep_under_free_name(
                self.tmp, target.with_name(f"{target.stem}.partial{target.suffix}")
            )
            self.path, self.tmp = kept, None
            self.note = (
                f"{target} left as it was (overwrite=true replaces it only with a complete video); "
                f"the {frames} written are in {kept}"
            )
            return
        try:
            publish(self.tmp, target, overwrite=self.overwrite and complete)
        except OutputExists:
            kept = keep_under_free_name(self.tmp, target)
            self.path, self.tmp = kept, None
            self.failed = True
            raise SinkError(
                f"output={target} was created by another run while this one was writing: nothing "
                f"replaced; this run's video ({frames}) is kept as {kept}"
            ) from None
        self.tmp = None
        if not complete:
            self.note = f"{target} holds the {frames} written before the run stopped"

    def _fail(self, e: BaseException) -> None:
        """Drop the partial file and stop with one line saying what happened and what was kept."""
        if self.writer is not None:
            try:
                self.writer.release()
            except Exception:  # noqa: BLE001 - it is failing already; the file is discarded
                pass
            self.writer = None
        self._discard()
        self.failed = True
        why = getattr(e, "strerror", None) or (str(e).splitlines() or [type(e).__name__])[0]
        kept = " (the file already there is untouched)" if self.path.exists() else ""
        raise SinkError(
            f"writing video {self.path} failed after {self.frames} frames: {why}; the partial "
            f"video was removed{kept}"
        ) from e

    def _discard(self) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


class FolderSink(Sink):
    """One image per frame, named by the frame's index in the source (each written atomically;
    a frame that cannot be written stops the run in one line instead of being skipped silently)."""

    def __init__(self, path: str | Path, ext: str = "jpg"):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.ext = ext.lstrip(".")

    def write(self, index, frame, labels) -> None:
        write_image(self.path / f"{index:06d}.{self.ext}", frame)
        self.frames += 1


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode by extension and write atomically; a full disk is a ``SinkError``, not a lost frame."""
    ok, data = cv2.imencode(path.suffix, image)
    try:
        if not ok:
            raise OSError(f"OpenCV cannot encode {path.suffix}")
        write_atomic(path, data.tobytes(), durable=False)
    except OSError as e:
        raise SinkError(f"cannot write {path}: {e.strerror or e}") from e


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

    def close(self, complete: bool = True) -> None:
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
            write_image(self.path / f"{index:06d}.png", labels)
        else:
            buf = io.BytesIO()
            np.savez_compressed(buf, mask=labels)
            try:
                write_atomic(self.path / f"{index:06d}.npz", buf.getvalue(), durable=False)
            except OSError as e:
                raise SinkError(f"cannot write {self.path / f'{index:06d}.npz'}: {e}") from e
        self.frames += 1
