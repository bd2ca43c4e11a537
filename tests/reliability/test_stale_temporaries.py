"""A SIGKILLed realtime run left its hidden temporary output (a half video) forever (issue 36): the
next run's output check removes the temporaries of processes that are gone, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from rtseg.realtime.sinks import check_output
from rtseg.utils.paths import STALE_AFTER_S, temporary_name


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temporary(target, pid: int, age_s: float):
    name = temporary_name(target).name.replace(f".{os.getpid()}-", f".{pid}-")
    path = target.parent / name
    path.write_bytes(b"half a video")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_the_next_run_removes_a_killed_runs_temporary_and_only_that(tmp_path):
    out = tmp_path / "out.mp4"
    dead = _dead_pid()
    killed = _temporary(out, dead, STALE_AFTER_S + 5)
    other_name = _temporary(tmp_path / "clip.mp4", dead, STALE_AFTER_S + 5)
    live = _temporary(out, os.getpid(), STALE_AFTER_S + 5)  # a run still writing
    young = _temporary(out, dead, 1)  # maybe another machine's writer on a shared folder
    mine = tmp_path / ".notes.txt"  # a user's hidden file, not one of ours
    mine.write_text("keep")

    check_output(out, "file", [])
    assert not killed.exists() and not other_name.exists()
    assert live.exists() and young.exists() and mine.exists()


def test_a_folder_sink_cleans_its_folder(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    stale = _temporary(frames / "000001.png", _dead_pid(), STALE_AFTER_S + 5)
    check_output(frames, "folder", [], overwrite=True)
    assert not stale.exists()
