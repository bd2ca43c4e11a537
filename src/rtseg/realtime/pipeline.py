"""The realtime pipeline: capture -> preprocess -> inference -> overlay -> sinks, one thread per stage.

The inference thread's time is reported as two stages: ``inference`` (the backend's call) and
``postprocess`` (logits -> uint8 class maps, ``rtseg.infer.frames.maps_from_logits``), so that
preprocess + postprocess is the frame processing the benchmark's e2e figure adds to the model.

Stages are joined by bounded queues, so memory never grows with the stream. OpenCV releases the
GIL while decoding, resizing, blending and encoding, and torch/ONNX Runtime/OpenVINO while
inferring, so the threads really overlap even on two cores.

- ``drop="none"`` (files): every queue blocks when full, every frame is processed exactly once and
  the sink stage writes them in capture order (a reorder buffer undoes out-of-order workers).
- ``drop="latest"`` (live sources): every queue evicts its oldest frame when full (counted as
  dropped), so the output never lags the camera by more than a few frames.
- Dynamic batching: an inference worker takes every frame waiting (up to ``max_batch``) in one call,
  so when inference falls behind it runs several frames at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rtseg.errors import RtsegError, SourceError
from rtseg.infer.frames import Preprocess
from rtseg.realtime.frame_queue import FrameQueue
from rtseg.realtime.model import Infer
from rtseg.realtime.overlay import Overlay
from rtseg.realtime.sinks import Sink
from rtseg.realtime.sources import Source
from rtseg.timing import latency_summary

log = logging.getLogger("rtseg.realtime")

STAGES = ("capture", "preprocess", "inference", "postprocess", "overlay", "sink", "end_to_end")


@dataclass
class Item:
    seq: int  # order of capture in this run (gaps where a live source's frames were dropped)
    index: int  # frame number in the source
    frame: np.ndarray  # BGR, source resolution
    t_capture: float
    x: np.ndarray | None = None
    labels: np.ndarray | None = None
    cue: np.ndarray | None = None  # what the temporal filter needs of the frame (small gray)
    out: np.ndarray | None = None
    batch: int = 1
    ms: dict = field(default_factory=dict)


@dataclass
class PipelineConfig:
    drop: str = "none"  # none | latest
    max_batch: int = 4
    workers: int = 1
    queue_size: int = 8
    stats_window: int = 10_000  # per-stage latency samples kept (bounded memory on endless streams)


class Pipeline:
    """Runs a source through the stages until it ends or ``stop()`` is called; ``run()`` returns the stats."""

    def __init__(
        self,
        source: Source,
        preprocess: Preprocess,
        make_infer: Callable[[], Infer],
        overlay: Overlay,
        sinks: list[Sink],
        config: PipelineConfig,
        hud_label: str = "",
        *,
        temporal=None,
        record: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
    ):
        """``temporal``: a ``rtseg.infer.temporal.TemporalFilter`` (its state is sequential: one
        worker). ``record(index, frame, labels)``: called for every frame written, in order, after
        its timing is taken (the benchmark's temporal consistency and stream mIoU)."""
        if config.drop not in ("none", "latest"):
            raise ValueError(f"drop must be none or latest, got {config.drop!r}")
        if temporal is not None and config.workers > 1:
            raise ValueError("a temporal filter keeps one state across frames: it needs workers=1")
        self.temporal, self.record = temporal, record
        self.source, self.preprocess, self.overlay, self.sinks, self.cfg = (
            source,
            preprocess,
            overlay,
            sinks,
            config,
        )
        self.infers = [make_infer() for _ in range(max(1, config.workers))]
        self.hud_label = hud_label
        live = config.drop == "latest"
        n = max(1, config.workers)
        # live: tiny dropping queues (never lag); files: blocking queues of queue_size
        self.q_pre = FrameQueue(1 if live else config.queue_size, drop=live)
        self.q_inf = FrameQueue(
            config.max_batch if live else max(config.queue_size, config.max_batch), drop=live
        )
        self.q_post = FrameQueue(2 if live else config.queue_size, drop=live, producers=n)
        self.q_sink = FrameQueue(2 if live else config.queue_size, drop=live)
        self.times = {s: deque(maxlen=config.stats_window) for s in STAGES}
        self.batches = deque(maxlen=config.stats_window)
        self.captured = self.written = self.late = 0
        self.errors: list[BaseException] = []
        self.source_error: SourceError | None = None
        self.frame_size: list[int] | None = None  # [H, W] of the first frame
        self._done_times: deque = deque(maxlen=30)
        self._lock = threading.Lock()
        self.t_start = self.t_end = None

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Stop reading; frames already in flight are finished and written (safe from a signal handler)."""
        self.source.stop()

    def _fail(self, e: BaseException) -> None:
        self.errors.append(e)
        self.source.stop()
        for q in (self.q_pre, self.q_inf, self.q_post, self.q_sink):
            q.abort()

    def _thread(
        self, name: str, fn: Callable[[], None], closes: list[FrameQueue]
    ) -> threading.Thread:
        def body():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - re-raised in the main thread by run()
                log.debug("stage %s failed", name, exc_info=True)
                self._fail(e)
            finally:
                for q in closes:
                    q.close()

        return threading.Thread(target=body, name=f"rtseg-{name}", daemon=True)

    # ------------------------------------------------------------------ stages

    def _capture(self) -> None:
        it = iter(self.source)
        seq = 0
        while True:
            t0 = time.perf_counter()
            try:
                frame = next(it, None)
            except (
                SourceError
            ) as e:  # a live stream gone for good: finish what is in flight, then report
                self.source_error = e
                return
            if frame is None:
                return
            item = Item(seq, frame.index, frame.image, frame.t_capture)
            if self.frame_size is None:
                self.frame_size = list(frame.image.shape[:2])
            item.ms["capture"] = (time.perf_counter() - t0) * 1e3
            seq += 1
            self.captured += 1
            self.q_pre.put(item)

    def _preprocess(self) -> None:
        while batch := self.q_pre.get_batch(1):
            item = batch[0]
            t0 = time.perf_counter()
            item.x = self.preprocess(item.frame)
            if self.temporal is not None:
                item.cue = self.temporal.cue(item.frame)
            item.ms["preprocess"] = (time.perf_counter() - t0) * 1e3
            self.q_inf.put(item)

    def _inference(self, infer: Infer) -> None:
        while batch := self.q_inf.get_batch(self.cfg.max_batch):
            t0 = time.perf_counter()
            # the temporal filter as postprocess: frames in capture order (one worker)
            post = self.temporal and self.temporal.post([it.cue for it in batch])
            labels, post_ms = infer.timed([it.x for it in batch], post)
            ms = (time.perf_counter() - t0) * 1e3
            self.batches.append(len(batch))
            for it, lab in zip(batch, labels, strict=True):
                it.labels, it.x, it.batch = lab, None, len(batch)
                it.ms["inference"] = ms - post_ms  # the backend's call
                it.ms["postprocess"] = post_ms  # logits -> uint8 class maps
                self.q_post.put(it)

    def _overlay(self) -> None:
        while batch := self.q_post.get_batch(1):
            item = batch[0]
            t0 = time.perf_counter()
            hud = None
            if self.overlay.hud:
                now = time.perf_counter()
                fps = self.recent_fps
                hud = [f"{fps:5.1f} fps  {(now - item.t_capture) * 1e3:4.0f} ms", self.hud_label]
            item.out = self.overlay.draw(
                item.frame, item.labels, [h for h in hud if h] if hud else None
            )
            item.ms["overlay"] = (time.perf_counter() - t0) * 1e3
            self.q_sink.put(item)

    def _sink(self) -> None:
        ordered = self.cfg.drop == "none"
        pending: dict[int, Item] = {}
        next_seq = 0
        last_seq = -1
        while batch := self.q_sink.get_batch(1):
            item = batch[0]
            if ordered:
                pending[item.seq] = item
                while next_seq in pending:
                    self._write(pending.pop(next_seq))
                    next_seq += 1
            elif item.seq < last_seq:  # overtaken by a newer frame from another worker: stale
                self.late += 1
            else:
                last_seq = item.seq
                self._write(item)
        for seq in sorted(pending):  # only after an abort: write what is complete
            self._write(pending[seq])

    def _write(self, item: Item) -> None:
        t0 = time.perf_counter()
        for sink in self.sinks:
            sink.write(item.index, item.out, item.labels)
        now = time.perf_counter()
        item.ms["sink"] = (now - t0) * 1e3
        item.ms["end_to_end"] = (now - item.t_capture) * 1e3
        for k, v in item.ms.items():
            self.times[k].append(v)
        self._done_times.append(now)
        self.written += 1
        self.t_end = now
        if self.record is not None:
            self.record(item.index, item.frame, item.labels)

    # ------------------------------------------------------------------ run

    def run(self, on_tick: Callable[[], None] | None = None) -> dict:
        """Run to the end; ``on_tick`` is called from this (main) thread about every 0.1 s (progress)."""
        threads = [
            self._thread("capture", self._capture, [self.q_pre]),
            self._thread("preprocess", self._preprocess, [self.q_inf]),
            *[
                self._thread(f"inference{i}", lambda inf=inf: self._inference(inf), [self.q_post])
                for i, inf in enumerate(self.infers)
            ],
            self._thread("overlay", self._overlay, [self.q_sink]),
            self._thread("sink", self._sink, []),
        ]
        self.t_start = time.perf_counter()
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():  # short joins: signal handlers run in this (main) thread
                    t.join(0.1)
                    if on_tick is not None:
                        on_tick()
        finally:
            # a run stopped by a signal, a lost source or a failure did not see the whole source:
            # a sink does not let its partial output replace a whole one
            complete = not (self.source.stopped or self.errors or self.source_error)
            for sink in self.sinks:
                try:
                    sink.close(complete=complete)
                except RtsegError as e:  # e.g. a full disk while finalising: one line, like a write
                    self.errors.append(e)
                except Exception:  # noqa: BLE001 - closing the others matters more
                    log.exception("closing %s failed", type(sink).__name__)
            self.source.close()
        if self.errors:
            raise self.errors[0]
        return self.stats()

    @property
    def dropped(self) -> int:
        return (
            self.q_pre.dropped
            + self.q_inf.dropped
            + self.q_post.dropped
            + self.q_sink.dropped
            + self.late
        )

    @property
    def recent_fps(self) -> float:
        """Output rate over the last 30 frames written (what the HUD shows)."""
        done = list(self._done_times)
        return (
            (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else 0.0
        )

    def live_stats(self) -> dict:
        """Cheap counters for watchers while running (progress, the HTTP page): no percentiles."""
        recent = list(itertools.islice(reversed(self.times["end_to_end"]), 30))
        return {
            "frames_captured": self.captured,
            "frames_written": self.written,
            "frames_dropped": self.dropped,
            "frames_corrupt": self.source.skipped,
            "reconnects": self.source.reconnects,
            "fps": self.recent_fps,
            "latency_ms": float(np.median(recent)) if recent else None,
        }

    def stats(self) -> dict:
        wall = (self.t_end or time.perf_counter()) - (self.t_start or time.perf_counter())
        dropped = self.dropped
        return {
            "frames_captured": self.captured,
            "frames_written": self.written,
            "frames_dropped": dropped,
            "frames_corrupt": self.source.skipped,
            "reconnects": self.source.reconnects,
            "wall_s": wall,
            "fps": self.written / wall if wall > 0 else 0.0,
            "mean_batch": float(np.mean(self.batches)) if self.batches else 0.0,
            "latency_ms": {s: latency_summary(self.times[s]) for s in STAGES},
        }
