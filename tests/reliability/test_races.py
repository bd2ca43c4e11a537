"""Nothing lost under races and interrupts: concurrent realtime runs to one output= (exactly one
publishes it, the others say in one line where their video went), Ctrl-C during overwrite=true (the
old video stays whole), and a source that ends early says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from rtseg.errors import SinkError
from rtseg.realtime.cli import realtime

from ..realtime.helpers import video_info
from ..support import read_lines, wait_for
from .conftest import write_video

CLI = [sys.executable, "-c", "from rtseg.realtime.cli import main; main()"]


def _start(tmp_path, ckpt, i, *args, merged=False):
    env = {**os.environ, "RTSEG_LOG_DIR": str(tmp_path / "logs"), "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.Popen(
        [*CLI, f"checkpoint={ckpt}", "backend=eager", "threads=1",
         f"hydra.run.dir={tmp_path / f'run{i}'}", *args],
        env=env, stdout=subprocess.PIPE, text=True,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.timeout(240)
def test_concurrent_runs_to_one_output_one_publishes_the_others_refuse(tmp_path, tiny_ckpt):
    """All three pass the start check (the name is free); the one that finishes first publishes,
    the later ones exit 2 in one line naming where their finished video is kept."""
    src = write_video(tmp_path / "in.mp4", frames=40)
    out = tmp_path / "race.mp4"
    procs = [
        _start(
            tmp_path,
            tiny_ckpt,
            i,
            f"source={src}",
            f"output={out}",
            f"max_frames={n}",
            "progress.enabled=false",
        )  # fmt: skip
        for i, n in enumerate((40, 30, 20))
    ]
    results = [(p.wait(timeout=200), p.stdout.read(), p.stderr.read()) for p in procs]
    winners = [r for r in results if r[0] == 0]
    assert len(winners) == 1, results
    count, *_, frames = video_info(out)
    won = json.loads((tmp_path / f"run{results.index(winners[0])}" / "realtime.json").read_text())
    assert len(frames) == won["pipeline"]["frames_written"]  # the published file is the winner's
    for rc, _, err in (r for r in results if r[0] != 0):
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: output="), err
        # refused at the start (the winner was done already) or at publishing (kept elsewhere)
        assert "already exists" in lines[0] or "kept as" in lines[0]
        if "kept as" in lines[0]:
            kept = lines[0].split("kept as ")[1].split(";")[0].strip()
            assert os.path.isfile(kept) and kept != str(out)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_a_name_taken_while_writing_is_never_replaced(realtime_cfg, tmp_path, monkeypatch):
    """The deterministic form of the race: the output appears while the run writes."""
    from rtseg.realtime import sinks

    src = write_video(tmp_path / "in.mp4", frames=6)
    out = tmp_path / "out.mp4"
    real_write = sinks.VideoFileSink.write

    def write(self, index, frame, labels):
        real_write(self, index, frame, labels)
        if index == 2:
            out.write_bytes(b"another run's video")

    monkeypatch.setattr(sinks.VideoFileSink, "write", write)
    with pytest.raises(SinkError) as err:
        realtime(realtime_cfg(f"source={src}", f"output={out}"))
    line = str(err.value)
    assert "\n" not in line and "created by another run while this one was writing" in line
    assert out.read_bytes() == b"another run's video"
    kept = tmp_path / "out-2.mp4"
    assert f"kept as {kept}" in line and len(video_info(kept)[3]) == 6


@pytest.mark.timeout(180)
def test_ctrl_c_during_overwrite_leaves_the_old_video_whole(tmp_path, tiny_ckpt):
    out = tmp_path / "ow.mp4"
    old = write_video(out, frames=9)
    before = out.read_bytes()
    proc = _start(
        tmp_path, tiny_ckpt, 0, "source=synthetic", "synthetic.live=true",
        "synthetic.frames=100000", "synthetic.size=[48,64]", f"output={out}", "overwrite=true",
        "progress.log_every_s=0.2", merged=True,
    )  # fmt: skip
    lines = read_lines(proc)
    wait_for(lines, proc, "progress:")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130, "".join(lines)
    assert old.read_bytes() == before  # the complete old video, not the partial new one
    partial = tmp_path / "ow.partial.mp4"
    assert len(video_info(partial)[3]) > 0
    said = "".join(lines)
    assert "left as it was" in said and str(partial) in said
    report = json.loads((tmp_path / "run0" / "realtime.json").read_text())
    assert report["interrupted"] and report["outputs"] == [str(partial)]


def test_overwrite_replaces_only_with_a_complete_video(realtime_cfg, tmp_path):
    src = write_video(tmp_path / "in.mp4", frames=5)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    info = realtime(realtime_cfg(f"source={src}", f"output={out}", "overwrite=true"))
    assert len(video_info(out)[3]) == 5 and info["outputs"] == [str(out)]


def test_a_truncated_source_says_it_ended_early(realtime_cfg, tmp_path, caplog):
    import numpy as np

    from rtseg.realtime.video import open_video_writer

    src = tmp_path / "in.mp4"  # index first (faststart), as cameras and encoders write them
    writer = open_video_writer(src, 25.0, (128, 96), "h264")
    rng = np.random.default_rng(0)
    for _ in range(60):
        writer.write(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    writer.release()
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 3])
    caplog.set_level("WARNING", logger="rtseg")
    info = realtime(realtime_cfg(f"source={src}", "sink=none"))
    assert info["ended_early"] and "ended at frame" in info["ended_early"]
    assert info["pipeline"]["frames_written"] < 60 and "ended at frame" in caplog.text


def test_an_output_that_is_not_a_video_name_is_refused_before_the_model_loads(tmp_path):
    from .conftest import run_cli

    src = write_video(tmp_path / "in.mp4", frames=3)
    proc = run_cli(
        "rtseg.realtime.cli", f"source={src}", f"output={tmp_path / 'out.txt'}",
        "checkpoint=/nonexistent.ckpt", f"hydra.run.dir={tmp_path / 'run'}",
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: output={tmp_path / 'out.txt'}: expected a video file name (.mp4, .m4v, .mov, "
        ".mkv, .avi), not .txt"
    ]
    assert not (tmp_path / "out.txt").exists()
