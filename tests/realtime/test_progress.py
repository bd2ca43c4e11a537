"""Progress: ETA only when the frame count is known; plain log lines when stderr is not a tty."""

from __future__ import annotations

import logging

from rtseg.realtime.progress import Progress


def stats(written=50, fps=25.0, dropped=0):
    return lambda: {"frames_written": written, "fps": fps, "frames_dropped": dropped}


def test_finite_source_shows_eta_live_source_does_not():
    assert Progress(stats(), total=100, tty=False).line(stats()()) == (
        "50/100 frames, 25.0 fps, ETA 2 s"
    )
    live = Progress(stats(dropped=3), total=None, tty=False)
    assert live.line(live.stats()) == "50 frames, 25.0 fps, 3 dropped"


def test_not_a_tty_logs_a_line_per_interval(caplog):
    p = Progress(stats(), total=100, log_every_s=0.0001, tty=False)
    assert p.bar is None
    with caplog.at_level(logging.INFO, logger="rtseg.realtime"):
        p.update()
    assert caplog.messages == ["progress: 50/100 frames, 25.0 fps, ETA 2 s"]
    p = Progress(stats(), total=100, log_every_s=3600, tty=False)
    caplog.clear()
    p.update()
    assert caplog.messages == []


def test_tty_draws_a_rich_bar():
    p = Progress(stats(), total=100, tty=True)
    assert p.bar is not None
    p.update()
    assert p.bar.tasks[0].completed == 50
    p.close()
    assert p.bar is None
