"""Source specs: URLs with query strings through Hydra, RTSEG_SOURCE, /dev/videoN as a camera."""

from __future__ import annotations

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
