"""Browser-playable output: H.264 (yuv420p) through PyAV, mp4v fallback with one warning; sizes kept."""

from __future__ import annotations

import logging

import av
import numpy as np
import pytest

from rtseg.realtime import video
from rtseg.realtime.sinks import SinkError, VideoFileSink

from .helpers import video_info


def write_frames(path, n, size=(48, 64), **kw):
    sink = VideoFileSink(path, 12.5, **kw)
    rng = np.random.default_rng(0)
    for i in range(n):
        sink.write(i, rng.integers(0, 255, (*size, 3), dtype=np.uint8), None)
    sink.close()
    return sink


@pytest.mark.skipif(video.h264_encoder() != "libx264", reason="PyAV without libx264")
@pytest.mark.parametrize("size, pix_fmt", [((48, 64), "yuv420p"), ((47, 63), "yuv444p")])
def test_h264_mp4_keeps_every_frame_the_size_and_the_source_fps(tmp_path, size, pix_fmt):
    """Even sizes are yuv420p (every browser); 4:2:0 cannot hold an odd size, which stays exact in 4:4:4."""
    out = tmp_path / "out.mp4"
    write_frames(out, 7, size=size)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == pix_fmt
        assert float(stream.average_rate) == pytest.approx(12.5)
        decoded = list(container.decode(stream))
    assert len(decoded) == 7 and (decoded[0].height, decoded[0].width) == size
    count, w, h, frames = video_info(out)  # OpenCV reads it too
    assert (count, len(frames), h, w) == (7, 7, *size)


def test_without_h264_falls_back_to_mp4v_with_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(video, "h264_encoder", lambda: None)
    monkeypatch.setattr(video, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="rtseg.realtime"):
        write_frames(tmp_path / "a.mp4", 3)
        write_frames(tmp_path / "b.mp4", 3)
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "mp4v" in caplog.records[0].message and len(caplog.records) == 1
    with av.open(str(tmp_path / "a.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    assert video_info(tmp_path / "b.mp4")[0] == 3


def test_unknown_codec_is_one_clear_error(tmp_path):
    with pytest.raises(SinkError, match="video.codec=vp9"):
        VideoFileSink(tmp_path / "x.mp4", 25, codec="vp9")
