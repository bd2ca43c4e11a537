"""A video file, a camera or a stream URL as a frame source, read with OpenCV (FFmpeg).

Faults are handled here so the pipeline never sees them: a source that cannot be opened raises a
one-line ``SourceError``; a live stream that drops is reopened with back-off; a file that ends
simply ends, also when it is played live (``live=true``: then it is paced at its own frame rate
times ``rate``, as a camera would deliver it).

**One owner thread per capture.** OpenCV's bundled FFmpeg is not safe to share: a
``cv2.VideoCapture`` opened in one thread, read in another and released from a third can corrupt
the heap (opencv/opencv#7275, #9006), and a capture that is never released keeps its decoder
threads (``av:mpeg4:df0``...) alive for the life of the process. So one daemon thread per source,
the owner, opens the capture, reads it, reopens it after a drop and releases it, always in its own
``finally``; no other thread ever touches the handle. The consuming thread only waits on a bounded
queue in short slices, so ``stop()`` (Ctrl-C, SIGTERM) ends the iteration at once even while OpenCV
is blocked in C (a stalled stream for FFmpeg's whole timeout): the owner then releases the capture
as soon as that call returns, never while it is inside it.
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


_END = object()  # the owner thread's "no more frames"

# the owner thread's name: tests/conftest.py fails a test that leaves one alive
OWNER_THREAD = "rtseg-capture"


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

    The capture lives in one owner thread (see the module docstring); a URL also gets FFmpeg's
    open/read timeouts, so a stream that stalls counts as dropped and is reopened with back-off.
    A file played live is paced at its frame rate times ``rate`` (None: as fast as it decodes) and
    ends at its end: only cameras and URLs reconnect. A source is iterated once: when the iteration
    ends (also early, by ``max_frames`` or a ``break``) the owner releases the capture.
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
        self._halt = threading.Event()  # close() / the end of the iteration: this source only
        self._go = threading.Event()  # frames() started: the owner starts reading
        self._opened = threading.Event()  # the first open finished (or failed)
        self._open_error: SourceError | None = None
        self._info: dict = {}
        self._items: queue.Queue = queue.Queue(maxsize=2)
        self._owner = threading.Thread(target=self._own, name=OWNER_THREAD, daemon=True)
        self._owner.start()
        self._wait_opened()
        self.fps = self._info["fps"] or None
        count = self._info["frame_count"]
        self.frame_count = count if count > 0 and (self.is_file or not self.live) else None
        if self.paced and not self.fps:
            log.warning("%s: no frame rate in the file: played live unpaced", self.name)
        self.size = self._info["size"]
        self.decode_threads = self._info.get("threads") or None  # realtime.json's thread budget

    # ------------------------------------------------------------------ the consuming side

    def _wait_opened(self) -> None:
        """Wait for the owner's first open in slices, so a stop is honoured while FFmpeg connects."""
        while not self._opened.wait(0.05):
            if self.stopped:
                self._halt.set()  # the owner releases what it opens, once FFmpeg returns
                raise SourceError(f"stopped while opening source {self.name}")
        if self._open_error is not None:
            raise self._open_error

    @property
    def _halted(self) -> bool:
        return self.stopped or self._halt.is_set()

    @property
    def paced(self) -> bool:
        """A file played live: delivered at its frame rate (times ``rate``), like a camera."""
        return self.live and self.is_file and self.rate is not None

    def frames(self) -> Iterator[np.ndarray | None]:
        """Frames from the owner thread; returns within 50 ms of ``stop()`` even if a read hangs."""
        if self._go.is_set():
            raise SourceError(f"{self.name} is iterated once: reopen() gives a fresh source")
        self._go.set()
        interval = 1.0 / (self.fps * self.rate) if self.paced and self.fps else 0.0
        t0, n = None, 0
        try:
            while not self.stopped:
                try:
                    item = self._items.get(timeout=0.05)
                except queue.Empty:
                    if not self._owner.is_alive() and self._items.empty():
                        return  # the owner ended without a word (cannot happen; never hang)
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
        finally:  # ended, stopped, or abandoned (max_frames, break): the owner may release
            self._halt.set()

    def reopen(self) -> VideoSource:
        return VideoSource(self.spec, self.live, self.max_frames, self.reconnect, rate=self.rate)

    def close(self, timeout: float = 1.0) -> None:
        """Ask the owner to release the capture and wait for it up to ``timeout`` seconds. A read
        still blocked in FFmpeg (a stalled stream) is never freed under it: the owner releases the
        capture when that read returns, and its thread ends then."""
        self._halt.set()
        self._owner.join(timeout)
        if self._owner.is_alive():
            log.debug(
                "%s: a read is still blocked; its owner releases the capture after it", self.name
            )

    # ------------------------------------------------------------------ the owner thread

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

    def _open_error_for(self) -> SourceError:
        if isinstance(self.spec, str) and "://" not in self.spec and not Path(self.spec).exists():
            return SourceError(f"cannot open source {self.spec}: no such file")
        return SourceError(
            f"cannot open source {self.name}: OpenCV/FFmpeg could not open it as a video, camera or stream"
        )

    def _own(self) -> None:
        """The owner: open, report, read on demand, reconnect, and release in ``finally``."""
        self._cap: cv2.VideoCapture | None = None
        try:
            try:
                self._cap = self._capture()
                if not self._cap.isOpened():
                    self._open_error = self._open_error_for()
                    return
                cap = self._cap
                self._info = {
                    "fps": cap.get(cv2.CAP_PROP_FPS),
                    "frame_count": int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
                    "size": (
                        int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                    ),
                    # FFmpeg's decoding threads as OpenCV set them (0: not reported)
                    "threads": int(cap.get(cv2.CAP_PROP_N_THREADS) or 0),
                }
            except Exception as e:  # noqa: BLE001 - cv2.error and the like: one line, raised by __init__
                self._open_error = SourceError(f"cannot open source {self.name}: {e}")
                return
            finally:
                self._opened.set()
            while not self._go.wait(0.05):  # read only once someone iterates (no stale frames)
                if self._halted:
                    return
            try:
                for image in self._read():
                    if not self._put(image):
                        return
                self._put(_END)
            except BaseException as e:  # noqa: BLE001 - handed to the consuming thread, raised there
                self._put(e)
        finally:
            self._release()

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def _put(self, item) -> bool:
        while not self._halted:
            try:
                self._items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> Iterator[np.ndarray | None]:
        corrupt_run = 0
        while not self._halted:
            ok, image = self._cap.read()
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
            pos = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES))
            count = self._info["frame_count"]
            if count > 0 and pos < count - 1 and corrupt_run < self.max_corrupt_run:
                corrupt_run += 1
                # step past it; two failures in a row at the same spot end the file
                if not self._cap.grab():
                    corrupt_run = self.max_corrupt_run
                yield None
                continue
            if count > 0 and pos < count - 1:  # said in the summary and realtime.json
                self.ended_early = (
                    f"the file ended at frame {pos} of the {count} its header gives "
                    "(truncated or damaged)"
                )
            return

    def _pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the source is stopped or closed."""
        deadline = time.monotonic() + seconds
        while not self._halted:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._halt.wait(min(left, 0.05))
        return True

    def _reconnect(self) -> bool:
        """Release the dropped capture and open a new one, with back-off (in the owner thread)."""
        self._release()
        delay = self.backoff_s
        for attempt in range(1, self.reconnect_attempts + 1):
            log.warning(
                "%s dropped: reconnecting in %.1f s (attempt %d/%d)",
                self.name,
                delay,
                attempt,
                self.reconnect_attempts,
            )
            if self._pause(delay):
                return True  # stopping anyway: the iteration ends at the next check
            self._cap = self._capture()
            if self._cap.isOpened():
                self.reconnects += 1
                log.info("%s reconnected", self.name)
                return True
            self._release()
            delay = min(delay * 2, self.max_backoff_s)
        return False
