"""Nothing lost: no output replaces the source or an existing file unasked; a writer failure (disk
full) ends in one line saying what was kept, with realtime.json written for the frames done."""

from __future__ import annotations

import errno
import json
import os

import pytest

from rtseg.errors import SinkError
from rtseg.realtime import video
from rtseg.realtime.cli import realtime

from ..realtime.helpers import video_info
from .conftest import write_video


def test_output_equal_to_the_source_is_refused_and_the_source_kept(realtime_cfg, tmp_path):
    src = write_video(tmp_path / "in.mp4", frames=10)
    before = src.read_bytes()
    for output in (src, tmp_path / "." / "in.mp4"):
        with pytest.raises(SinkError, match="is the source itself"):
            realtime(realtime_cfg(f"source={src}", f"output={output}", "overwrite=true"))
    link = tmp_path / "link.mp4"
    os.symlink(src, link)  # the same file under another name
    hard = tmp_path / "hard.mp4"
    os.link(src, hard)
    for output in (link, hard):
        with pytest.raises(SinkError, match="is the source itself"):
            realtime(realtime_cfg(f"source={src}", f"output={output}", "overwrite=true"))
    assert src.read_bytes() == before and len(video_info(src)[3]) == 10
    assert not (tmp_path / "run" / "realtime.json").exists()  # refused before any work


def test_folder_output_into_the_source_folder_is_refused(realtime_cfg, tmp_path):
    import cv2
    import numpy as np

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:06d}.jpg"), np.full((32, 48, 3), 40 * i, np.uint8))
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    with pytest.raises(SinkError, match="destroy the input"):
        realtime(
            realtime_cfg(f"source={frames}", "sink=folder", f"output={frames}", "overwrite=true")
        )
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before


def test_an_existing_output_is_kept_unless_overwrite(realtime_cfg, tmp_path):
    src = write_video(tmp_path / "in.mp4", frames=6)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(SinkError, match="already exists: pass overwrite=true"):
        realtime(realtime_cfg(f"source={src}", f"output={out}"))
    assert out.read_bytes() == b"precious"
    realtime(realtime_cfg(f"source={src}", f"output={out}", "overwrite=true"))
    assert len(video_info(out)[3]) == 6
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_an_output_linked_to_dev_full_is_refused_before_encoding(realtime_cfg, tmp_path):
    src = write_video(tmp_path / "in.mp4", frames=4)
    out = tmp_path / "out.mp4"
    os.symlink("/dev/full", out)
    with pytest.raises(SinkError, match="not a regular file"):
        realtime(realtime_cfg(f"source={src}", f"output={out}", "overwrite=true"))


@pytest.mark.parametrize("where", ["write", "finalise"])
def test_disk_full_ends_in_one_line_and_keeps_the_report(
    realtime_cfg, tmp_path, monkeypatch, where
):
    """PyAV raises av.error.OSError [Errno 28] when the disk fills: mid-stream or in the last flush."""
    src = write_video(tmp_path / "in.mp4", frames=12)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the previous video")
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if where == "write":
        real_write = video.AvWriter.write
        calls = []

        def write(self, frame):
            calls.append(1)
            if len(calls) > 5:
                raise full
            real_write(self, frame)

        monkeypatch.setattr(video.AvWriter, "write", write)
        monkeypatch.setattr(video.Mp4vWriter, "write", write)
    else:

        def release(self):
            raise full

        monkeypatch.setattr(video.AvWriter, "release", release)
        monkeypatch.setattr(video.Mp4vWriter, "release", release)
    with pytest.raises(SinkError) as err:
        realtime(realtime_cfg(f"source={src}", f"output={out}", "overwrite=true"))
    line = str(err.value)
    assert "\n" not in line and "No space left on device" in line
    assert "partial video was removed" in line and "untouched" in line
    assert "realtime.json records the" in line
    assert out.read_bytes() == b"the previous video"  # the old file survives a failed write
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    report = json.loads((tmp_path / "run" / "realtime.json").read_text())
    assert not report["interrupted"]  # a failure, not a Ctrl-C
    assert "No space left" in report["sink_error"] and "No space left" in report["ended_early"]
    assert str(out) not in report["outputs"]
    done = report["pipeline"]["frames_written"]
    assert done == (5 if where == "write" else 12)
    assert f"the {done} frames done" in line
