"""Source specs: URLs with query strings through Hydra, RTSEG_SOURCE, /dev/videoN as a camera."""

from __future__ import annotations

import cv2
import pytest
from hydra.errors import HydraException

from rtseg.errors import SourceError
from rtseg.realtime import open_source as sources
from rtseg.realtime.open_source import synthetic_options

URL = "rtsp://user:pw@cam.local:554/live/ch1?transport=tcp&latency=0"


def test_url_with_query_string_in_hydra_quotes(realtime_cfg):
    assert realtime_cfg(f"source='{URL}'").source == URL
    with pytest.raises(HydraException):  # unquoted, '=' in the value breaks Hydra's grammar
        realtime_cfg(f"source={URL}")


def test_url_from_the_environment(realtime_cfg, monkeypatch):
    monkeypatch.setenv("RTSEG_SOURCE", URL)
    assert realtime_cfg().source == URL
    assert realtime_cfg("source=synthetic").source == "synthetic"  # an override still wins
    monkeypatch.delenv("RTSEG_SOURCE")
    assert realtime_cfg().source == "synthetic"


def test_dev_video_is_a_camera_index(monkeypatch):
    opened = []

    class FakeVideoSource:
        def __init__(self, spec, live, max_frames, *args, **kw):
            opened.append(spec)

    monkeypatch.setattr(sources, "VideoSource", FakeVideoSource)
    sources.open_source("/dev/video3")
    sources.open_source("2")
    sources.open_source(URL)
    assert opened == [3, 2, URL]


def test_missing_camera_names_its_index():
    with pytest.raises(SourceError, match="camera 9"):
        sources.open_source("/dev/video9")


def test_synthetic_is_finite_for_files_endless_and_live_to_watch(realtime_cfg):
    clip = synthetic_options(realtime_cfg("sink=file"))
    assert clip["frames"] == 150 and clip["live"] is False
    watched = synthetic_options(realtime_cfg("sink=http"))
    assert watched["frames"] is None and watched["live"] is True
    assert synthetic_options(realtime_cfg("sink=http", "synthetic.frames=5"))["frames"] == 5


def test_the_leak_guard_sees_an_open_capture_and_its_release(indexed_video):
    """tests/conftest.py fails a test that leaves FFmpeg's threads alive: they must be visible."""
    import time

    from ..support import video_threads

    before = set(video_threads())
    cap = cv2.VideoCapture(str(indexed_video))
    assert cap.read()[0]
    opened = [n for i, n in video_threads().items() if i not in before]
    cap.release()
    deadline = time.monotonic() + 3
    while [i for i in video_threads() if i not in before] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(n.startswith("av:") for n in opened), opened  # FFmpeg's decoder threads, named
    assert not [i for i in video_threads() if i not in before]


def test_an_abandoned_or_closed_video_source_releases_its_capture(indexed_video):
    """The owner thread releases the capture when the iteration ends early (max_frames, break)
    or the source is closed before it is read: nothing is left for the process's life."""
    from rtseg.realtime.video_source import OWNER_THREAD, VideoSource

    from ..support import video_threads

    before = set(video_threads())
    source = VideoSource(str(indexed_video), max_frames=3)
    assert len(list(source)) == 3  # abandoned after 3 of 30 frames
    unread = VideoSource(str(indexed_video))
    unread.close()
    source._owner.join(3)
    unread._owner.join(3)
    assert not source._owner.is_alive() and not unread._owner.is_alive()
    assert not [n for i, n in video_threads().items() if i not in before and n == OWNER_THREAD]
