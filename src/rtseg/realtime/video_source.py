"""A video file, a camera or a stream URL as a frame source, read with OpenCV (FFmpeg).

Faults are handled here so the pipeline never sees them: a source that cannot be opened raises a
one-line ``SourceError``; a live stream that drops is reopened with back-off; a file that ends
simply ends, also when it is played live (``live=true``: then it is paced at its own frame rate
times ``rate``, as a camera would deliver it).

OpenCV's open and read block in C (a stalled stream for FFmpeg's whole timeout) and a blocked call
cannot be interrupted, so ``VideoSource`` opens and reads in a daemon thread and waits on it in short
slices: ``stop()`` (Ctrl-C, SIGTERM) ends the iteration at once, whatever OpenCV is doing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rtseg.errors import SourceError
from rtseg.realtime.sources import Source
from rtseg.utils.redact import redact

log = logging.getLogger("rtseg.realtime")


_END = object()  # the reader thread's "no more frames"


@dataclass
class Reconnect:
    """How a live stream that drops is reopened (conf/realtime.yaml ``reconnect``): attempts with
    exponential back-off, and FFmpeg's open/read timeouts for URLs."""

    reconnect_attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    # consecutive undecodable frames tolerated before the stream counts as dropped
    max_corrupt_run: int = 25


class VideoSource(Source):
    """A video file, a camera index, or an RTSP/HTTP URL, read with OpenCV (FFmpeg).

    Opening and reading run in daemon threads (see the module docstring); a URL also gets FFmpeg's
    open/read timeouts, so a stream that stalls counts as dropped and is reopened with back-off.
    A file played live is paced at its frame rate times ``rate`` (None: as fast as it decodes) and
    ends at its end: only cameras and URLs reconnect.
    """

    def __init__(
        self,
        spec: str | int,
        live: bool | None = None,
        max_frames: int | None = None,
        reconnect: Reconnect | None = None,
        stop_event: threading.Event | None = None,
        rate: float | None = 1.0,
    ):
        super().__init__(max_frames, stop_event)
        self.spec = spec
        # what logs, errors and reports show: never a URL's credentials
        self.name = f"camera {spec}" if isinstance(spec, int) else redact(spec)
        self.live = (isinstance(spec, int) or "://" in str(spec)) if live is None else live
        # a file ends at its end even when played live; only cameras and URLs are reconnected
        self.is_file = isinstance(spec, str) and "://" not in spec
        if rate is not None and not float(rate) > 0:
            raise SourceError(
                f"rate={rate}: expected a speed factor > 0 (1.0 = the file's own rate)"
            )
        self.rate = None if rate is None else float(rate)
        self.reconnect = reconnect or Reconnect()
        r = self.reconnect
        self.reconnect_attempts, self.backoff_s, self.max_backoff_s = (
            int(r.reconnect_attempts),
            float(r.backoff_s),
            float(r.max_backoff_s),
        )
        self.open_timeout_s, self.read_timeout_s = float(r.open_timeout_s), float(r.read_timeout_s)
        self.max_corrupt_run = int(r.max_corrupt_run)
        self._reader: threading.Thread | None = None
        self._halt = threading.Event()  # close(): this source's reader only, not the shared stop
        self.cap = self._open()
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or None
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 and (self.is_file or not self.live) else None
        if self.paced and not self.fps:
            log.warning("%s: no frame rate in the file: played live unpaced", self.name)
        self.size = (
            int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        )

    def _capture(self) -> cv2.VideoCapture:
        if isinstance(self.spec, str) and "://" in self.spec:
            timeouts = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(self.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(self.read_timeout_s * 1000),
            ]
            return cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, timeouts)
        return cv2.VideoCapture(self.spec)

    def _open(self) -> cv2.VideoCapture:
        """Open in a daemon thread, waiting in slices so a stop is honoured while FFmpeg connects."""
        opened: list = []
        opener = threading.Thread(
            target=lambda: opened.append(self._capture()), name="rtseg-open", daemon=True
        )
        opener.start()
        while opener.is_alive():
            if self._stop.wait(0.05):
                raise SourceError(f"stopped while opening source {self.name}")
        cap = opened[0] if opened else None
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            if (
                isinstance(self.spec, str)
                and "://" not in self.spec
                and not Path(self.spec).exists()
            ):
                raise SourceError(f"cannot open source {self.spec}: no such file")
            raise SourceError(
                f"cannot open source {self.name}: OpenCV/FFmpeg could not open it as a video, camera or stream"
            )
        return cap

    @property
    def _halted(self) -> bool:
        return self.stopped or self._halt.is_set()

    @property
    def paced(self) -> bool:
        """A file played live: delivered at its frame rate (times ``rate``), like a camera."""
        return self.live and self.is_file and self.rate is not None

    def frames(self) -> Iterator[np.ndarray | None]:
        """Frames from the reader thread; returns within 50 ms of ``stop()`` even if a read hangs."""
        items: queue.Queue = queue.Queue(maxsize=2)
        self._reader = threading.Thread(
            target=self._read_into, args=(items,), name="rtseg-read", daemon=True
        )
        self._reader.start()
        interval = 1.0 / (self.fps * self.rate) if self.paced and self.fps else 0.0
        t0, n = None, 0
        while not self.stopped:
            try:
                item = items.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            if interval:  # frame n is due at t0 + n * interval (late frames are not caught up)
                t0 = time.perf_counter() if t0 is None else t0
                wait = t0 + n * interval - time.perf_counter()
                if wait > 0 and self._stop.wait(wait):
                    return
                n += 1
            yield item

    def _read_into(self, items: queue.Queue) -> None:
        def put(item) -> bool:
            while not self._halted:
                try:
                    items.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for image in self._read():
                if not put(image):
                    return
            put(_END)
        except BaseException as e:  # noqa: BLE001 - handed to the consuming thread, raised there
            put(e)

    def _read(self) -> Iterator[np.ndarray | None]:
        corrupt_run = 0
        while not self._halted:
            ok, image = self.cap.read()
            if ok:
                corrupt_run = 0
                yield image
                continue
            if self._halted:
                return
            if self.live and not self.is_file:
                if not self._reconnect():
                    raise SourceError(
                        f"lost source {self.name}: still down after {self.reconnect_attempts} reconnect attempts"
                    )
                continue
            # a file: a failed read before the known end is a corrupt frame, otherwise the end
            pos = int(self.cap.get(cv2.CAP_PROP_POS_FRAMES))
            if (
                self.frame_count is not None
                and pos < self.frame_count - 1
                and corrupt_run < self.max_corrupt_run
            ):
                corrupt_run += 1
                # step past it; two failures in a row at the same spot end the file
                if not self.cap.grab():
                    corrupt_run = self.max_corrupt_run
                yield None
                continue
            return

    def _reconnect(self) -> bool:
        self.cap.release()
        delay = self.backoff_s
        for attempt in range(1, self.reconnect_attempts + 1):
            log.warning(
                "%s dropped: reconnecting in %.1f s (attempt %d/%d)",
                self.name,
                delay,
                attempt,
                self.reconnect_attempts,
            )
            if self._stop.wait(delay) or self._halt.is_set():
                return True  # stopping anyway: the iteration ends at the next check
            try:
                self.cap = self._open()
            except SourceError:
                delay = min(delay * 2, self.max_backoff_s)
                continue
            self.reconnects += 1
            log.info("%s reconnected", self.name)
            return True
        return False

    def reopen(self) -> VideoSource:
        return VideoSource(self.spec, self.live, self.max_frames, self.reconnect, rate=self.rate)

    def close(self) -> None:
        """Release the capture, unless a read is still stuck in it (then the daemon thread keeps it)."""
        self._halt.set()
        if self._reader is not None:
            self._reader.join(0.3)
            if self._reader.is_alive():
                log.debug("%s: a read is still blocked; leaving the capture open", self.name)
                return
        self.cap.release()
