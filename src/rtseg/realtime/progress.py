"""Progress of a realtime run: a rich bar on a terminal, periodic log lines otherwise.

Finite sources (files, image folders) know their frame count, so they get a bar with an ETA; live
sources (cameras, streams, endless synthetic) show frames and fps only. When stderr is not a
terminal (CI, ``nohup``, a log file) a redrawn bar would fill the log with control codes, so one
plain log line is written every ``log_every_s`` seconds instead.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

log = logging.getLogger("rtseg.realtime")


class Progress:
    """Call ``update()`` often (the pipeline's main loop does, every 0.1 s) and ``close()`` at the end."""

    def __init__(
        self,
        stats: Callable[[], dict],
        total: int | None,
        log_every_s: float = 10.0,
        tty: bool | None = None,
    ):
        self.stats, self.total, self.log_every_s = stats, total, float(log_every_s)
        self.t0 = time.perf_counter()
        self._last_log = self.t0
        self.bar = None
        if sys.stderr.isatty() if tty is None else tty:
            self.bar = self._make_bar()

    def _make_bar(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        finite = self.total is not None
        columns = [
            SpinnerColumn() if not finite else BarColumn(),
            MofNCompleteColumn() if finite else TextColumn("{task.completed} frames"),
            TextColumn("{task.fields[fps]:5.1f} fps  {task.fields[extra]}"),
            TimeElapsedColumn(),
            *([TextColumn("ETA"), TimeRemainingColumn()] if finite else []),
        ]
        bar = RichProgress(*columns, console=Console(stderr=True), transient=False)
        self.task = bar.add_task("realtime", total=self.total, fps=0.0, extra="")
        bar.start()
        return bar

    def line(self, s: dict) -> str:
        """One human line: frames (of total), fps, dropped, ETA when the source is finite."""
        done, fps = s["frames_written"], s["fps"]
        text = f"{done} frames" if self.total is None else f"{done}/{self.total} frames"
        text += f", {fps:.1f} fps"
        if s["frames_dropped"]:
            text += f", {s['frames_dropped']} dropped"
        if self.total is not None and fps > 0:
            text += f", ETA {max(self.total - done, 0) / fps:.0f} s"
        return text

    def update(self) -> None:
        if self.bar is not None:
            s = self.stats()
            extra = f"{s['frames_dropped']} dropped" if s["frames_dropped"] else ""
            self.bar.update(self.task, completed=s["frames_written"], fps=s["fps"], extra=extra)
            return
        now = time.perf_counter()
        if self.log_every_s > 0 and now - self._last_log >= self.log_every_s:
            self._last_log = now
            log.info("progress: %s", self.line(self.stats()))

    def close(self) -> None:
        if self.bar is not None:
            self.update()
            self.bar.stop()
            self.bar = None
