"""A video file played live is paced at its own frame rate (times rate=) and ends at its end: no
reconnect loop, no 194 fps read of a 25 fps clip."""

from __future__ import annotations

import time

import pytest

from rtseg.errors import SourceError
from rtseg.realtime.cli import realtime
from rtseg.realtime.open_source import open_source

from .conftest import write_video


@pytest.mark.parametrize("rate", [1.0, 2.0])
def test_a_paced_file_delivers_frames_at_its_rate(tmp_path, rate):
    clip = write_video(tmp_path / "clip.mp4", frames=25, fps=25.0)
    source = open_source(str(clip), live=True, rate=rate)
    assert source.live and source.paced and source.fps == pytest.approx(25.0)
    t0 = time.perf_counter()
    stamps = [frame.t_capture for frame in source]
    took = time.perf_counter() - t0
    source.close()
    assert len(stamps) == 25 and source.reconnects == 0  # the end of the file is its end
    expected = 24 / (25.0 * rate)  # first to last frame
    assert stamps[-1] - stamps[0] == pytest.approx(expected, rel=0.10)
    assert took < expected + 2.0


def test_unpaced_and_file_reads_stay_fast(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", frames=25, fps=5.0)  # 5 s if it were paced
    for source in (open_source(str(clip)), open_source(str(clip), live=True, rate=None)):
        t0 = time.perf_counter()
        assert sum(1 for _ in source) == 25
        assert time.perf_counter() - t0 < 2.5
        source.close()


def test_a_bad_rate_is_one_line(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", frames=2)
    with pytest.raises(SourceError, match="rate=0"):
        open_source(str(clip), live=True, rate=0)


def test_realtime_on_a_live_file_ends_by_itself(realtime_cfg, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", frames=20, fps=20.0)
    t0 = time.perf_counter()
    info = realtime(
        realtime_cfg(f"source={clip}", "live=true", "sink=none", "calibration.frames=2")
    )
    took = time.perf_counter() - t0
    stats = info["pipeline"]
    assert info["drop"] == "latest" and not info["interrupted"]
    assert stats["frames_captured"] == 20 and stats["reconnects"] == 0
    assert stats["wall_s"] == pytest.approx(19 / 20.0, abs=0.5)  # paced: about 1 s, not 0.1 s
    assert took < 30


def test_a_live_source_does_not_wait_for_auto_to_measure(realtime_cfg, tmp_path):
    """Measuring takes minutes on a small CPU: a live source starts on eager at once and says so;
    once a run on the file (live=false) measured, live runs use that choice."""
    pytest.importorskip("onnxruntime")
    clip = write_video(tmp_path / "clip.mp4", frames=10, fps=20.0)
    auto = ["backend=auto", "auto.candidates=[onnxruntime]", "auto.seconds=0.1"]
    small = ["sink=none", "calibration.frames=2", "calibration.stride=1"]
    info = realtime(realtime_cfg(f"source={clip}", "live=true", *small, *auto))
    assert info["backend"] == "eager" and "does not wait" in info["backend_note"]
    assert not (tmp_path / "logs" / "bench" / "auto.json").exists()
    assert realtime(realtime_cfg(f"source={clip}", *small, *auto))["backend"] == "onnxruntime"
    info = realtime(realtime_cfg(f"source={clip}", "live=true", *small, *auto))
    assert info["backend"] == "onnxruntime" and "cached" in info["backend_note"]
